using System.Numerics;

namespace NormSharp.Kernels;

// The column path: every group is one strided column of an (N, C) matrix (BatchNorm1d on (N, C), or channels-last
// data with the channel axis last). A group's elements are not contiguous, so the kernels vectorize across
// channels instead: a vector holds 16 (or 8) neighbouring channels of one row and the sums walk down the rows in
// registers, in the element type for a few rows and then in float64. Columns are processed in strips of fixed width,
// so a strip's rows stay in cache between the statistics and the normalization and every column's sums are added in
// row order whatever the thread count.
internal static partial class NormalizationKernels
{
    /// <summary>Columns per strip: a strip of 256 columns of a few hundred rows stays in L2 between its passes.</summary>
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
                    ColumnMeanAndVariance(x[j0..], rows, columns, centered, mean, variance, center[..width]);
                    for (int j = 0; j < width; j++) invStd[j] = 1 / Math.Sqrt(variance[j] + eps);
                }
                for (int j = 0; j < width; j++)
                    (center[j], scale[j], shift[j]) = ForwardCoefficients<T>(mean[j], invStd[j], Gamma(w, j0 + j), Beta(b, j0 + j));
                for (int n = 0; n < rows; n++)
                    NormalizationSimd.Write(y.Slice(n * columns + j0, width),
                        new ShiftScale<T, PerElement<T>>(x.Slice(n * columns + j0, width), new(center[..width]), new(scale[..width]), new(shift[..width])), streaming);
            }
        }, (long)rows * ColumnStrip);
    }

    /// <summary>Mean and biased variance of the columns of a strip (<paramref name="strip"/> starts at its first
    /// column; rows are <paramref name="stride"/> apart) by the group path's corrected two-pass algorithm, column by
    /// column: the column sums give the mean, rounded to T as the centre c, then Σ(x − c) and Σ(x − c)² give mean
    /// c + S₁/n and variance S₂/n − (S₁/n)². Not centred: mean 0 and the mean square. <paramref name="center"/> is
    /// scratch.</summary>
    private static void ColumnMeanAndVariance<T>(ReadOnlySpan<T> strip, int rows, int stride, bool centered, Span<double> mean, Span<double> variance, Span<T> center)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int width = mean.Length;
        mean.Clear();
        variance.Clear();
        center.Clear();
        if (centered)
        {
            NormalizationSimd.ColumnCenteredSums(strip, new Uniform<T>(T.Zero), strip, new Uniform<T>(T.Zero), rows, stride, mean, default);
            for (int j = 0; j < width; j++) center[j] = T.CreateTruncating(mean[j] / rows);
            mean.Clear();
        }
        // mean and variance hold S₁ and S₂ until the last loop.
        NormalizationSimd.ColumnCenteredSums(strip, new PerElement<T>(center), strip, new PerElement<T>(center), rows, stride, mean, variance);
        for (int j = 0; j < width; j++)
        {
            double shift = centered ? mean[j] / rows : 0;
            mean[j] = double.CreateTruncating(center[j]) + shift;
            variance[j] = Math.Max(variance[j] / rows - shift * shift, 0);
        }
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
                for (int j = 0; j < width; j++) center[j] = T.CreateTruncating(mean[j]);
                // Σ dy·(x − μ) = Σ dy·(x − c) − (μ − c)·Σ dy, with c = μ rounded to T.
                NormalizationSimd.ColumnCenteredSums(dy[j0..], new Uniform<T>(T.Zero), x[j0..], new PerElement<T>(center[..width]), rows, columns, sumDy, sumDyXhat);
                for (int j = 0; j < width; j++) sumDyXhat[j] = (sumDyXhat[j] - (mean[j] - double.CreateTruncating(center[j])) * sumDy[j]) * invStd[j];
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
                    NormalizationSimd.Write(dx.Slice(start, width), new GradientFromSums<T, PerElement<T>>(dy.Slice(start, width), x.Slice(start, width),
                        new(a[..width]), new(center[..width]), new(k[..width]), new(l[..width])), streaming);
                }
            }
        }, 2L * rows * ColumnStrip);
    }

    private static int StripCount(int columns) => (columns + ColumnStrip - 1) / ColumnStrip;
}
