using System.Numerics;

namespace NormSharp.Kernels;

// The column path: every group is one strided column of an (N, C) matrix (BatchNorm1d on (N, C), or channels-last
// data with the channel axis last). A group's elements are not contiguous, so the kernels vectorize across
// channels instead: each row adds into per-column float64 sums. Columns are processed in strips of fixed width, so a
// strip's rows stay in cache between the statistics and the normalization and every column's sums are added in row
// order whatever the thread count.
internal static partial class NormalizationKernels
{
    /// <summary>Columns per strip: 256 float64 sums (2 KiB) per statistic stay in L1 while the rows stream by.</summary>
    private const int ColumnStrip = 256;

    private static void ColumnsForward<T>(ReadOnlyMemory<T> input, Memory<T> output, NormalizationLayout layout, bool centered, double eps,
        ReadOnlyMemory<T> weight, ReadOnlyMemory<T> bias, GroupStatistics statistics, bool fromBatch)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int rows = layout.Outer, columns = layout.Groups;
        bool streaming = Streams<T>(input.Length);
        Parallelism.For(StripCount(columns), (first, end) =>
        {
            Span<T> center = stackalloc T[ColumnStrip], scale = stackalloc T[ColumnStrip], shift = stackalloc T[ColumnStrip];
            ReadOnlySpan<T> x = input.Span, w = weight.Span, b = bias.Span;
            Span<T> y = output.Span;
            for (int strip = first; strip < end; strip++)
            {
                int j0 = strip * ColumnStrip, width = Math.Min(ColumnStrip, columns - j0);
                Span<double> mean = statistics.Mean.Span.Slice(j0, width), invStd = statistics.InvStd.Span.Slice(j0, width);
                if (fromBatch)
                {
                    Span<double> variance = statistics.Variance.Span.Slice(j0, width);
                    ColumnMeanAndVariance(x, rows, columns, j0, centered, mean, variance);
                    for (int j = 0; j < width; j++) invStd[j] = 1 / Math.Sqrt(variance[j] + eps);
                }
                for (int j = 0; j < width; j++)
                    (center[j], scale[j], shift[j]) = ForwardCoefficients<T>(mean[j], invStd[j], Gamma(w, j0 + j), Beta(b, j0 + j));
                for (int n = 0; n < rows; n++)
                    NormalizationSimd.ShiftScale(x.Slice(n * columns + j0, width), y.Slice(n * columns + j0, width),
                        new PerElement<T>(center[..width]), new PerElement<T>(scale[..width]), new PerElement<T>(shift[..width]), streaming);
            }
        }, (long)rows * ColumnStrip);
    }

    /// <summary>Two-pass mean and biased variance of the columns [j0, j0 + width) of a (rows, columns) matrix.</summary>
    private static void ColumnMeanAndVariance<T>(ReadOnlySpan<T> x, int rows, int columns, int j0, bool centered, Span<double> mean, Span<double> variance)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int width = mean.Length;
        mean.Clear();
        variance.Clear();
        if (centered)
        {
            for (int n = 0; n < rows; n++)
                NormalizationSimd.AccumulateColumns<T, ValueTerm, Uniform<double>>(x.Slice(n * columns + j0, width), new Uniform<double>(0), mean);
            for (int j = 0; j < width; j++) mean[j] /= rows;
        }
        for (int n = 0; n < rows; n++)
            NormalizationSimd.AccumulateColumns<T, SquaredDeviationTerm, PerElement<double>>(x.Slice(n * columns + j0, width), new PerElement<double>(mean), variance);
        for (int j = 0; j < width; j++) variance[j] /= rows;
    }

    private static void ColumnsBackward<T>(ReadOnlyMemory<T> input, ReadOnlyMemory<T> gradOutput, Memory<T> gradInput, NormalizationLayout layout,
        bool centered, bool statisticsFromBatch, ReadOnlyMemory<T> weight, GroupStatistics statistics, double[] unitSums)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int rows = layout.Outer, columns = layout.Groups;
        bool streaming = Streams<T>(input.Length);
        Parallelism.For(StripCount(columns), (first, end) =>
        {
            Span<T> center = stackalloc T[ColumnStrip], a = stackalloc T[ColumnStrip], k = stackalloc T[ColumnStrip], l = stackalloc T[ColumnStrip];
            ReadOnlySpan<T> x = input.Span, dy = gradOutput.Span, w = weight.Span;
            Span<T> dx = gradInput.Span;
            for (int strip = first; strip < end; strip++)
            {
                int j0 = strip * ColumnStrip, width = Math.Min(ColumnStrip, columns - j0);
                ReadOnlySpan<double> mean = statistics.Mean.Span.Slice(j0, width), invStd = statistics.InvStd.Span.Slice(j0, width);
                Span<double> sumDy = unitSums.AsSpan(j0, width), sumDyXhat = unitSums.AsSpan(columns + j0, width);
                sumDy.Clear();
                sumDyXhat.Clear();
                for (int n = 0; n < rows; n++)
                    NormalizationSimd.AccumulateColumnPairs(dy.Slice(n * columns + j0, width), x.Slice(n * columns + j0, width), new PerElement<double>(mean), sumDy, sumDyXhat);
                for (int j = 0; j < width; j++) sumDyXhat[j] *= invStd[j];
                if (dx.IsEmpty) continue;
                for (int j = 0; j < width; j++)
                {
                    double gamma = Gamma(w, j0 + j);
                    var (meanDy, meanDyXhat) = GradientMeans(centered, statisticsFromBatch, gamma * sumDy[j], gamma * sumDyXhat[j], rows);
                    (center[j], a[j], k[j], l[j]) = GradientCoefficients<T>(mean[j], invStd[j], gamma, meanDy, meanDyXhat);
                }
                for (int n = 0; n < rows; n++)
                {
                    int start = n * columns + j0;
                    NormalizationSimd.CombineGradient(dy.Slice(start, width), x.Slice(start, width), dx.Slice(start, width),
                        new PerElement<T>(a[..width]), new PerElement<T>(center[..width]), new PerElement<T>(k[..width]), new PerElement<T>(l[..width]), streaming);
                }
            }
        }, 2L * rows * ColumnStrip);
    }

    private static int StripCount(int columns) => (columns + ColumnStrip - 1) / ColumnStrip;
}
