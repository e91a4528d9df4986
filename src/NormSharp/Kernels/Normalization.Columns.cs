using System.Numerics;

namespace NormSharp.Kernels;

// The column path: every group is one strided column of an (N, C) matrix (BatchNorm1d on (N, C), or channels-last
// data with the channel axis last). A group's elements are not contiguous, so the kernels vectorize across
// channels instead: a vector holds 16 (or 8) neighbouring channels of one row and the sums walk down the rows in
// registers, in the element type for a few rows and then in float64. The statistics are gathered per strip of
// columns (each column's sums are added in row order whatever the thread count); once every column's coefficients
// are known, the element-wise pass runs over whole rows, one call per row.
internal static partial class NormalizationKernels
{
    /// <summary>Columns per strip of the statistics: the unit of parallel work.</summary>
    private const int ColumnStrip = 256;

    private static void ColumnsForward<T>(ReadOnlyMemory<T> input, Memory<T> output, NormalizationLayout layout, bool centered, double eps,
        ReadOnlyMemory<T> weight, ReadOnlyMemory<T> bias, GroupStatistics statistics, bool fromBatch)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int rows = layout.Outer, columns = layout.Groups;
        // Per column: centre, scale and shift of y = (x − c)·scale + shift, side by side.
        T[] coefficients = BufferPool<T>.Shared.Rent(3 * columns);
        Parallelism.For(StripCount(columns), (first, end) =>
        {
            ReadOnlySpan<T> x = input.Span, w = weight.Span, b = bias.Span;
            for (int strip = first; strip < end; strip++)
            {
                int j0 = strip * ColumnStrip, width = Math.Min(ColumnStrip, columns - j0);
                Span<double> mean = statistics.Mean.Span.Slice(j0, width), invStd = statistics.InvStd.Span.Slice(j0, width);
                Span<T> center = coefficients.AsSpan(j0, width), scale = coefficients.AsSpan(columns + j0, width), shift = coefficients.AsSpan(2 * columns + j0, width);
                if (fromBatch)
                {
                    Span<double> variance = statistics.Variance.Span.Slice(j0, width);
                    ColumnMeanAndVariance(x[j0..], rows, columns, centered, mean, variance);
                    for (int j = 0; j < width; j++) invStd[j] = 1 / Math.Sqrt(variance[j] + eps);
                }
                for (int j = 0; j < width; j++)
                    (center[j], scale[j], shift[j]) = ForwardCoefficients<T>(mean[j], invStd[j], Gamma(w, j0 + j), Beta(b, j0 + j));
            }
        }, fromBatch ? 2L * rows * ColumnStrip : ColumnStrip);
        bool streaming = Streams<T>(input.Length);
        // Within the cache, blocks of rows share each column's coefficient loads; an output streamed past the cache
        // is bound by memory, not by those loads.
        if (!streaming)
            Parallelism.For(rows, (first, end) => NormalizationSimd.ShiftScaleRows(input.Span[(first * columns)..(end * columns)], output.Span[(first * columns)..(end * columns)],
                columns, coefficients.AsSpan(0, columns), coefficients.AsSpan(columns, columns), coefficients.AsSpan(2 * columns, columns)), columns);
        else
            Parallelism.For(rows, (first, end) =>
            {
                ReadOnlySpan<T> x = input.Span;
                Span<T> y = output.Span;
                var center = new PerElement<T>(coefficients.AsSpan(0, columns));
                var scale = new PerElement<T>(coefficients.AsSpan(columns, columns));
                var shift = new PerElement<T>(coefficients.AsSpan(2 * columns, columns));
                for (int n = first; n < end; n++)
                    NormalizationSimd.Write(y.Slice(n * columns, columns), new ShiftScale<T, PerElement<T>>(x.Slice(n * columns, columns), center, scale, shift), streaming: true);
            }, columns);
        BufferPool<T>.Shared.Return(coefficients);
    }

    /// <summary>Mean and biased variance of the columns of a strip (<paramref name="strip"/> starts at its first
    /// column; rows are <paramref name="stride"/> apart); not centred: mean 0 and the mean square.</summary>
    private static void ColumnMeanAndVariance<T>(ReadOnlySpan<T> strip, int rows, int stride, bool centered, Span<double> mean, Span<double> variance)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (centered) NormalizationSimd.ColumnMeanAndM2(strip, rows, stride, mean, variance);
        else
        {
            mean.Clear();
            variance.Clear();
            NormalizationSimd.ColumnCenteredSums(strip, new Uniform<T>(T.Zero), strip, new Uniform<T>(T.Zero), rows, stride, mean, variance);
            mean.Clear();
        }
        for (int j = 0; j < variance.Length; j++) variance[j] = Math.Max(variance[j] / rows, 0);
    }

    private static void ColumnsBackward<T>(ReadOnlyMemory<T> input, ReadOnlyMemory<T> gradOutput, Memory<T> gradInput, NormalizationLayout layout,
        bool centered, bool statisticsFromBatch, ReadOnlyMemory<T> weight, GroupStatistics statistics, double[] unitSums)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int rows = layout.Outer, columns = layout.Groups;
        // Per column: centre, a, k and l of dx = dy·a + (x − c)·k + l, side by side.
        T[] coefficients = BufferPool<T>.Shared.Rent(4 * columns);
        Parallelism.For(StripCount(columns), (first, end) =>
        {
            ReadOnlySpan<T> x = input.Span, dy = gradOutput.Span, w = weight.Span;
            for (int strip = first; strip < end; strip++)
            {
                int j0 = strip * ColumnStrip, width = Math.Min(ColumnStrip, columns - j0);
                ReadOnlySpan<double> mean = statistics.Mean.Span.Slice(j0, width), invStd = statistics.InvStd.Span.Slice(j0, width);
                Span<double> sumDy = unitSums.AsSpan(j0, width), sumDyXhat = unitSums.AsSpan(columns + j0, width);
                Span<T> center = coefficients.AsSpan(j0, width);
                sumDy.Clear();
                sumDyXhat.Clear();
                for (int j = 0; j < width; j++) center[j] = T.CreateTruncating(mean[j]);
                // Σ dy·(x − μ) = Σ dy·(x − c) − (μ − c)·Σ dy, with c = μ rounded to T.
                NormalizationSimd.ColumnCenteredSums(dy[j0..], new Uniform<T>(T.Zero), x[j0..], new PerElement<T>(center), rows, columns, sumDy, sumDyXhat);
                for (int j = 0; j < width; j++)
                {
                    sumDyXhat[j] = (sumDyXhat[j] - (mean[j] - double.CreateTruncating(center[j])) * sumDy[j]) * invStd[j];
                    double gamma = Gamma(w, j0 + j);
                    var (meanDy, meanDyXhat) = GradientMeans(centered, statisticsFromBatch, gamma * sumDy[j], gamma * sumDyXhat[j], rows);
                    (center[j], coefficients[columns + j0 + j], coefficients[2 * columns + j0 + j], coefficients[3 * columns + j0 + j]) =
                        GradientCoefficients<T>(mean[j], invStd[j], gamma, meanDy, meanDyXhat);
                }
            }
        }, 2L * rows * ColumnStrip);
        if (!gradInput.IsEmpty) WriteColumnGradient(input, gradOutput, gradInput, rows, columns, coefficients);
        BufferPool<T>.Shared.Return(coefficients);
    }

    /// <summary>dx = dy·a + (x − c)·k + l over <paramref name="rows"/> rows of <paramref name="columns"/> channels-last
    /// values, with each column's c, a, k and l side by side in <paramref name="coefficients"/> (c first, each
    /// <paramref name="columns"/> long): four rows per load of the coefficients through the cache, or a row at a time
    /// past it when the output is larger than the cache.</summary>
    private static void WriteColumnGradient<T>(ReadOnlyMemory<T> input, ReadOnlyMemory<T> gradOutput, Memory<T> gradInput, int rows, int columns,
        T[] coefficients)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!Streams<T>(input.Length))
            Parallelism.For(rows, (first, end) => NormalizationSimd.GradientRows(gradOutput.Span[(first * columns)..(end * columns)], input.Span[(first * columns)..(end * columns)],
                gradInput.Span[(first * columns)..(end * columns)], columns, coefficients.AsSpan(columns, columns), coefficients.AsSpan(0, columns),
                coefficients.AsSpan(2 * columns, columns), coefficients.AsSpan(3 * columns, columns)), 2L * columns);
        else
            Parallelism.For(rows, (first, end) =>
            {
                ReadOnlySpan<T> x = input.Span, dy = gradOutput.Span;
                Span<T> dx = gradInput.Span;
                var center = new PerElement<T>(coefficients.AsSpan(0, columns));
                var a = new PerElement<T>(coefficients.AsSpan(columns, columns));
                var k = new PerElement<T>(coefficients.AsSpan(2 * columns, columns));
                var l = new PerElement<T>(coefficients.AsSpan(3 * columns, columns));
                for (int n = first; n < end; n++)
                {
                    int start = n * columns;
                    NormalizationSimd.Write(dx.Slice(start, columns), new GradientFromSums<T, PerElement<T>>(dy.Slice(start, columns), x.Slice(start, columns), a, center, k, l), streaming: true);
                }
            }, 2L * columns);
    }

    private static int StripCount(int columns) => (columns + ColumnStrip - 1) / ColumnStrip;
}
