using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace NormSharp.Kernels;

// The column path: every group is one strided column of an (N, C) matrix (BatchNorm1d on (N, C), or channels-last
// data with the channel axis last). A group's elements are not contiguous, so the kernels vectorize across
// channels instead: a vector holds 16 (or 8) neighbouring channels of one row and the sums walk down the rows in
// registers, in the element type for a few rows and then in float64. The statistics are gathered per strip of
// columns (each column's sums are added in row order whatever the thread count); once every column's coefficients
// are known, the element-wise pass runs over whole rows, one call per row. On one thread, where a strip's rows fit the
// core's L2 cache (BatchNorm1d 256x1024), each strip's statistics and its element-wise pass run together instead, so
// the second visit reads the strip from L2 (see FusesStrips for what was measured, and why not on more threads).
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
        bool streaming = Streams<T>(input.Length);
        if (fromBatch && !streaming && FusesStrips<T>(rows, tensors: 2))
        {
            // Each strip's statistics and then its output, while the strip of x is still in the core's cache.
            for (int group = 0; group < StripGroups(columns); group++)
            {
                var (j0, j1) = StripGroup(columns, group);
                for (int strip = j0; strip < j1; strip += ColumnStrip)
                    ForwardStripCoefficients(input.Span, weight.Span, bias.Span, statistics, coefficients, rows, columns, centered, eps, fromBatch, strip);
                WriteStrip(output.Span[j0..], rows, columns, j1 - j0, new ShiftScaleColumns<T>(input.Span[j0..], coefficients.AsSpan(j0, j1 - j0),
                    coefficients.AsSpan(columns + j0, j1 - j0), coefficients.AsSpan(2 * columns + j0, j1 - j0)));
            }
            BufferPool<T>.Shared.Return(coefficients);
            return;
        }
        Parallelism.For(StripCount(columns), [MethodImpl(MethodImplOptions.AggressiveOptimization)] (first, end) =>
        {
            for (int strip = first; strip < end; strip++)
                ForwardStripCoefficients(input.Span, weight.Span, bias.Span, statistics, coefficients, rows, columns, centered, eps, fromBatch, strip * ColumnStrip);
        }, fromBatch ? 2L * rows * ColumnStrip : ColumnStrip);
        // Within the cache, blocks of rows share each column's coefficient loads; an output streamed past the cache
        // is bound by memory, not by those loads.
        if (!streaming)
            Parallelism.For(rows, (first, end) => NormalizationSimd.ShiftScaleRows(input.Span[(first * columns)..(end * columns)], output.Span[(first * columns)..(end * columns)],
                columns, coefficients.AsSpan(0, columns), coefficients.AsSpan(columns, columns), coefficients.AsSpan(2 * columns, columns)), columns);
        else
            Parallelism.For(rows, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (first, end) =>
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

    /// <summary>The statistics (when <paramref name="fromBatch"/>) and the forward coefficients of the strip of
    /// columns from <paramref name="j0"/>: centre, scale and shift at [j0 ..], [columns + j0 ..] and [2·columns + j0 ..].</summary>
    private static void ForwardStripCoefficients<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> b, GroupStatistics statistics, T[] coefficients,
        int rows, int columns, bool centered, double eps, bool fromBatch, int j0)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int width = Math.Min(ColumnStrip, columns - j0);
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
        if (!gradInput.IsEmpty && !Streams<T>(input.Length) && FusesStrips<T>(rows, tensors: 3))
        {
            // Each strip's sums and then its dx, while the strips of x and dy are still in the core's cache: the
            // second visit reads them from there instead of from the shared cache or memory.
            for (int group = 0; group < StripGroups(columns); group++)
            {
                var (j0, j1) = StripGroup(columns, group);
                for (int strip = j0; strip < j1; strip += ColumnStrip)
                    GradientStripCoefficients(input.Span, gradOutput.Span, weight.Span, statistics, unitSums, coefficients, rows, columns, centered, statisticsFromBatch, strip);
                int width = j1 - j0;
                WriteStrip(gradInput.Span[j0..], rows, columns, width, new GradientColumns<T>(gradOutput.Span[j0..], input.Span[j0..],
                    coefficients.AsSpan(columns + j0, width), coefficients.AsSpan(j0, width), coefficients.AsSpan(2 * columns + j0, width), coefficients.AsSpan(3 * columns + j0, width)));
            }
            BufferPool<T>.Shared.Return(coefficients);
            return;
        }
        Parallelism.For(StripCount(columns), [MethodImpl(MethodImplOptions.AggressiveOptimization)] (first, end) =>
        {
            for (int strip = first; strip < end; strip++)
                GradientStripCoefficients(input.Span, gradOutput.Span, weight.Span, statistics, unitSums, coefficients, rows, columns, centered, statisticsFromBatch, strip * ColumnStrip);
        }, 2L * rows * ColumnStrip);
        if (!gradInput.IsEmpty) WriteColumnGradient(input, gradOutput, gradInput, rows, columns, coefficients);
        BufferPool<T>.Shared.Return(coefficients);
    }

    /// <summary>Σdy and Σdy·x̂ (into <paramref name="unitSums"/>, at [j0 ..] and [columns + j0 ..]) and the gradient
    /// coefficients (centre, a, k and l at [j0 ..], [columns + j0 ..], [2·columns + j0 ..] and [3·columns + j0 ..]) of
    /// the strip of columns from <paramref name="j0"/>.</summary>
    private static void GradientStripCoefficients<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> dy, ReadOnlySpan<T> w, GroupStatistics statistics, double[] unitSums,
        T[] coefficients, int rows, int columns, bool centered, bool statisticsFromBatch, int j0)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int width = Math.Min(ColumnStrip, columns - j0);
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
            Parallelism.For(rows, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (first, end) =>
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

    /// <summary>Bytes of a strip's rows, in all the tensors its two visits touch, up to which the visits are fused
    /// (768 KiB, of a 1 MiB per-core L2).</summary>
    private const long FusedStripBytes = 768 << 10;

    /// <summary>Whether each strip's statistics (or sums) and its element-wise pass run together, while the strip is in
    /// the core's cache: on one thread, when <paramref name="tensors"/> tensors' worth of one strip fit there. Either
    /// way the results are the same. BatchNorm1d 256x1024, one thread, fused against the two visits over whole rows
    /// (time ratio, separate processes taken in turn, idle AMD EPYC Zen 5): forward 1.03 / 1.19 / 1.01 at 512 / 256 /
    /// 128 bits, backward 1.08 / 1.45 / 1.11 faster fused. Not on more threads: the threads' strips split every row,
    /// and the fused forward's element-wise pass took longer on two threads than on one (0.033 against 0.024 ms at 512
    /// bits, while its statistics went from 0.033 to 0.019 ms); the two visits took 0.79 / 0.69 / 0.54 of the fused
    /// forward's time on two threads and 0.99 / 0.90 / 0.70 of the fused backward's.</summary>
    private static unsafe bool FusesStrips<T>(int rows, int tensors) where T : unmanaged =>
        Parallelism.ThreadCount == 1 && (long)rows * ColumnStrip * sizeof(T) * tensors <= FusedStripBytes;

    /// <summary>Groups of whole strips of the fused passes: the strips, with a last partial strip joined to the one
    /// before it, so that no group is narrower than a vector unless all columns are.</summary>
    private static int StripGroups(int columns) => Math.Max(1, columns / ColumnStrip);

    /// <summary>Columns [Start, End) of strip group <paramref name="group"/>.</summary>
    private static (int Start, int End) StripGroup(int columns, int group) =>
        (group * ColumnStrip, group == StripGroups(columns) - 1 ? columns : (group + 1) * ColumnStrip);

    /// <summary>Writes out[n·stride + j] = op(n·stride + j, j) for the <paramref name="rows"/> rows of a strip of
    /// <paramref name="width"/> columns of a (rows, stride) matrix (<paramref name="output"/> and the op's spans start
    /// at the strip's first column) with <see cref="NormalizationSimd.WriteRows{T, TOp, TVector}"/>
    /// at the machine's width, so the results are those of writing whole rows.</summary>
    private static void WriteStrip<T, TOp>(Span<T> output, int rows, int stride, int width, TOp op)
        where T : unmanaged, IFloatingPointIeee754<T> where TOp : IColumnwise<T>, allows ref struct
    {
        if (Vector512.IsHardwareAccelerated) NormalizationSimd.WriteRows<T, TOp, Simd512<T>>(output, rows, stride, width, op);
        else if (Vector256.IsHardwareAccelerated) NormalizationSimd.WriteRows<T, TOp, Simd256<T>>(output, rows, stride, width, op);
        else NormalizationSimd.WriteRows<T, TOp, Simd128<T>>(output, rows, stride, width, op);
    }
}
