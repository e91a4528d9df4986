using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace NormSharp.Kernels;

/// <summary>
/// The CPU kernels of the normalization family, organized like PyTorch's batch_norm_kernel.cpp: one path per memory
/// layout, and per path three phases — statistics, normalization, backward. The group path (this file) walks
/// each group's contiguous runs: it computes the group's statistics in one pass (Σ(x − c) and Σ(x − c)² about a
/// pilot c, in float64; a second pass only when the pilot was far from the mean) and normalizes right after, so the
/// second read of a group comes from cache. The batch path
/// (<c>Normalization.Batch.cs</c>) serves BatchNorm's training forward on (N, C, S), whose groups are far-apart runs,
/// in memory order; the column path (<c>Normalization.Columns.cs</c>) serves groups that are strided columns; the
/// row path (<c>Normalization.Rows.cs</c>) serves LayerNorm/RMSNorm's per-element γ and β. Work is parallel over
/// groups (or pieces, column strips, rows, fixed row blocks) and each result is computed by one thread in a fixed
/// order, so outputs are identical for every thread count.
/// </summary>
internal static partial class NormalizationKernels
{
    /// <summary>Training forward: each group's statistics from the input, then y = x̂·γ + β. Writes the statistics
    /// (for running averages and for the backward pass).</summary>
    public static void ForwardTraining<T>(ReadOnlyMemory<T> input, Memory<T> output, NormalizationPlan plan, double eps,
        ReadOnlyMemory<T> weight, ReadOnlyMemory<T> bias, GroupStatistics statistics)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        NormalizationLayout layout = plan.Layout;
        if (layout.ChannelsAreContiguous)
        {
            ColumnsForward(input, output, layout, plan.Centered, eps, weight, bias, statistics, fromBatch: true);
            return;
        }
        if (layout.Outer > 1 && layout.Run >= MemoryOrderRun && plan.Centered && !plan.ElementwiseAffine)
        {
            BatchForward(input, output, plan, eps, weight, bias, statistics);
            return;
        }
        bool streaming = Streams<T>(input.Length);
        Parallelism.For(layout.Groups, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (first, end) =>
        {
            // Memory.Span checks the memory's owner each time: taken once per chunk, not once per group.
            ReadOnlySpan<T> x = input.Span, w = weight.Span, b = bias.Span;
            Span<T> y = output.Span;
            Span<double> mean = statistics.Mean.Span, variance = statistics.Variance.Span, invStd = statistics.InvStd.Span;
            for (int g = first; g < end; g++)
            {
                (mean[g], variance[g]) = MeanAndVariance(x, layout.GroupRuns(g), plan.Centered);
                invStd[g] = 1 / Math.Sqrt(variance[g] + eps);
                if (plan.ElementwiseAffine) NormalizeRow(x, y, layout, g, mean[g], invStd[g], w, b, streaming);
                else NormalizeGroup(x, y, layout, g, mean[g], invStd[g], w, b, streaming);
            }
        }, layout.GroupSize);
    }

    /// <summary>Forward with given statistics (evaluation mode, frozen BatchNorm): one subtract and one multiply-add
    /// per element with per-channel coefficients precomputed from the running mean and variance. Not for an
    /// elementwise affine (LayerNorm and RMSNorm have no evaluation-mode statistics).</summary>
    public static void ForwardWithStatistics<T>(ReadOnlyMemory<T> input, Memory<T> output, NormalizationPlan plan,
        ReadOnlyMemory<T> weight, ReadOnlyMemory<T> bias, GroupStatistics statistics)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        NormalizationLayout layout = plan.Layout;
        if (layout.ChannelsAreContiguous)
        {
            ColumnsForward(input, output, layout, plan.Centered, eps: 0, weight, bias, statistics, fromBatch: false);
            return;
        }
        // No statistics to gather, so nothing to keep in cache: go through memory in order, run after run, instead of
        // group by group. Each unit's coefficients are worked out once, not once per run: a 14×14 run is a dozen
        // vectors, about what working them out costs. Through the cache a thread's runs take one call; past it, one
        // call per run, each storing its whole cache lines past the cache.
        int length = layout.SegmentLength, units = layout.Units, runs = layout.Outer * units;
        // Per unit (group, segment): centre, scale and shift of y = (x − c)·scale + shift, side by side.
        T[] coefficients = BufferPool<T>.Shared.Rent(3 * units);
        ReadOnlySpan<T> w = weight.Span, b = bias.Span;
        for (int u = 0; u < units; u++)
        {
            int g = u / layout.Segments, channel = layout.Channel(g, u % layout.Segments);
            (coefficients[u], coefficients[units + u], coefficients[2 * units + u]) =
                ForwardCoefficients<T>(statistics.Mean.Span[g], statistics.InvStd.Span[g], Gamma(w, channel), Beta(b, channel));
        }
        bool streaming = Streams<T>(input.Length);
        Parallelism.For(runs, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (first, end) =>
        {
            ReadOnlySpan<T> x = input.Span;
            Span<T> y = output.Span;
            if (!streaming)
            {
                NormalizationSimd.ShiftScaleRuns(x[(first * length)..(end * length)], y[(first * length)..(end * length)], length, first % units, coefficients, units);
                return;
            }
            for (int r = first, u = first % units; r < end; r++, u = u + 1 == units ? 0 : u + 1)
                NormalizationSimd.ShiftScaleRun(x.Slice(r * length, length), y.Slice(r * length, length), coefficients[u], coefficients[units + u],
                    coefficients[2 * units + u], streaming: true);
        }, length);
        BufferPool<T>.Shared.Return(coefficients);
    }

    /// <summary>
    /// Backward pass in two passes per group: first the reductions Σdy and Σdy·x̂ per (group, segment), then
    /// dx = (γ/σ)·(dy − mean(dy) − x̂·mean(dy·x̂)) (Ioffe &amp; Szegedy 2015, section 3; with per-channel γ inside a
    /// group, dy is read as γ·dy in both means). When the statistics were given rather than computed from the batch,
    /// they do not depend on x and dx = (γ/σ)·dy. Also dγ = Σ dy·x̂ and dβ = Σ dy per channel (float64); an empty
    /// <paramref name="gradInput"/> or gradient span skips that output.
    /// </summary>
    public static void Backward<T>(ReadOnlyMemory<T> input, ReadOnlyMemory<T> gradOutput, Memory<T> gradInput, NormalizationPlan plan,
        bool statisticsFromBatch, ReadOnlyMemory<T> weight, GroupStatistics statistics, Span<double> gradWeight, Span<double> gradBias)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (plan.ElementwiseAffine)
        {
            RowsBackward(input, gradOutput, gradInput, plan, statisticsFromBatch, weight, statistics, gradWeight, gradBias);
            return;
        }
        NormalizationLayout layout = plan.Layout;
        int units = layout.Units;
        // unitSums[u] = Σ dy and unitSums[units + u] = Σ dy·x̂ over unit u = (group, segment).
        double[] unitSums = BufferPool<double>.Shared.Rent(2 * units);
        if (layout.ChannelsAreContiguous)
            ColumnsBackward(input, gradOutput, gradInput, layout, plan.Centered, statisticsFromBatch, weight, statistics, unitSums);
        else if (layout.Outer > 1 && layout.Run >= MemoryOrderRun && plan.Centered && statisticsFromBatch)
            BatchBackward(input, gradOutput, gradInput, layout, weight, statistics, unitSums);
        else
            GroupsBackward(input, gradOutput, gradInput, plan, statisticsFromBatch, weight, statistics, unitSums);
        ReduceUnitsToChannels(layout, unitSums, gradWeight, gradBias);
        BufferPool<double>.Shared.Return(unitSums);
    }

    private static void GroupsBackward<T>(ReadOnlyMemory<T> input, ReadOnlyMemory<T> gradOutput, Memory<T> gradInput, NormalizationPlan plan,
        bool statisticsFromBatch, ReadOnlyMemory<T> weight, GroupStatistics statistics, double[] unitSums)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        NormalizationLayout layout = plan.Layout;
        if (layout.Outer == 1)
        {
            ContiguousGroupsBackward(input, gradOutput, gradInput, plan, statisticsFromBatch, weight, statistics, unitSums);
            return;
        }
        int units = layout.Units, length = layout.SegmentLength;
        bool streaming = Streams<T>(input.Length);
        Parallelism.For(layout.Groups, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (first, end) =>
        {
            ReadOnlySpan<T> x = input.Span, dy = gradOutput.Span, w = weight.Span;
            ReadOnlySpan<double> means = statistics.Mean.Span, invStds = statistics.InvStd.Span;
            Span<T> dx = gradInput.Span;
            for (int g = first; g < end; g++)
            {
                double mean = means[g], invStd = invStds[g];
                int firstChannel = layout.Channel(g, 0);
                // Σ γ·dy and Σ γ·dy·x̂ over the group: the two means of the closed form, times the group size.
                double weightedDy = 0, weightedDyXhat = 0;
                for (int s = 0; s < layout.Segments; s++)
                {
                    // Σ dy·(x − μ) = Σ dy·(x − c) − (μ − c)·Σ dy, with c = μ rounded to T.
                    T center = T.CreateTruncating(mean);
                    var (sumDy, sumDyCentered) = NormalizationSimd.CenteredSums(dy, T.Zero, x, center, layout.SegmentRuns(g, s));
                    int u = g * layout.Segments + s;
                    double gamma = Gamma(w, firstChannel + s);
                    unitSums[u] = sumDy;
                    unitSums[units + u] = (sumDyCentered - (mean - double.CreateTruncating(center)) * sumDy) * invStd;
                    weightedDy += gamma * sumDy;
                    weightedDyXhat += gamma * unitSums[units + u];
                }
                if (dx.IsEmpty) continue;
                var (meanDy, meanDyXhat) = GradientMeans(plan.Centered, statisticsFromBatch, weightedDy, weightedDyXhat, layout.GroupSize);
                // Backwards: the runs the sums read last are still in L2 and are read again first.
                for (int s = layout.Segments - 1; s >= 0; s--)
                {
                    var (center, a, k, l) = GradientCoefficients<T>(mean, invStd, Gamma(w, firstChannel + s), meanDy, meanDyXhat);
                    for (int o = layout.Outer - 1; o >= 0; o--)
                    {
                        int start = layout.RunStart(o, g) + s * length;
                        NormalizationSimd.Write(dx.Slice(start, length),
                            new GradientFromSums<T, Uniform<T>>(dy.Slice(start, length), x.Slice(start, length), new(a), new(center), new(k), new(l)), streaming);
                    }
                }
            }
        }, 2L * layout.GroupSize);
    }

    /// <summary>Segments whose dx coefficients <see cref="ContiguousGroupsBackward"/> keeps on the stack.</summary>
    private const int MaxStackSegments = 128;

    /// <summary>
    /// <see cref="GroupsBackward"/> where each group is one contiguous run (GroupNorm, InstanceNorm): the sums of all
    /// of a group's channels in one call, then its dx in one more, from L1. With a 14×14 image a channel is two
    /// dozen 256-bit vectors, and one call per channel for each pass cost about as much as the arithmetic.
    /// </summary>
    private static void ContiguousGroupsBackward<T>(ReadOnlyMemory<T> input, ReadOnlyMemory<T> gradOutput, Memory<T> gradInput, NormalizationPlan plan,
        bool statisticsFromBatch, ReadOnlyMemory<T> weight, GroupStatistics statistics, double[] unitSums)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        NormalizationLayout layout = plan.Layout;
        int units = layout.Units, segments = layout.Segments, length = layout.SegmentLength, run = layout.Run;
        Parallelism.For(layout.Groups, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (first, end) =>
        {
            ReadOnlySpan<T> x = input.Span, dy = gradOutput.Span, w = weight.Span;
            ReadOnlySpan<double> means = statistics.Mean.Span, invStds = statistics.InvStd.Span;
            Span<T> dx = gradInput.Span;
            T[]? rented = segments > MaxStackSegments ? BufferPool<T>.Shared.Rent(segments) : null;
            Span<T> a = (rented is null ? stackalloc T[MaxStackSegments] : rented.AsSpan())[..segments];
            for (int g = first; g < end; g++)
            {
                double mean = means[g], invStd = invStds[g];
                int firstChannel = layout.Channel(g, 0);
                ReadOnlySpan<T> groupX = x.Slice(g * run, run), groupDy = dy.Slice(g * run, run);
                Span<double> sumDy = unitSums.AsSpan(g * segments, segments), sumDyXhat = unitSums.AsSpan(units + g * segments, segments);
                // Σ dy·(x − μ) = Σ dy·(x − c) − (μ − c)·Σ dy, with c = μ rounded to T.
                T center = T.CreateTruncating(mean);
                NormalizationSimd.SegmentGradientSums(groupDy, groupX, center, length, sumDy, sumDyXhat);
                // Σ γ·dy and Σ γ·dy·x̂ over the group: the two means of the closed form, times the group size.
                double weightedDy = 0, weightedDyXhat = 0;
                for (int s = 0; s < segments; s++)
                {
                    sumDyXhat[s] = (sumDyXhat[s] - (mean - double.CreateTruncating(center)) * sumDy[s]) * invStd;
                    double gamma = Gamma(w, firstChannel + s);
                    weightedDy += gamma * sumDy[s];
                    weightedDyXhat += gamma * sumDyXhat[s];
                }
                if (dx.IsEmpty) continue;
                var (meanDy, meanDyXhat) = GradientMeans(plan.Centered, statisticsFromBatch, weightedDy, weightedDyXhat, layout.GroupSize);
                // Only a = γ/σ depends on the channel.
                var (_, _, k, l) = GradientCoefficients<T>(mean, invStd, 1, meanDy, meanDyXhat);
                for (int s = 0; s < segments; s++) a[s] = T.CreateTruncating(Gamma(w, firstChannel + s) * invStd);
                NormalizationSimd.SegmentGradient(groupDy, groupX, dx.Slice(g * run, run), length, a, center, k, l);
            }
            if (rented is not null) BufferPool<T>.Shared.Return(rented);
        }, 2L * layout.GroupSize);
    }

    /// <summary>Mean and biased variance of the elements of <paramref name="runs"/> (a group, or a piece of a run),
    /// in one pass when it can: S₁ = Σ(x − c) and S₂ = Σ(x − c)² about a pilot c near the mean (the shifted-data
    /// algorithm, Chan, Golub &amp; LeVeque 1983, section 3), giving mean c + S₁/n and variance S₂/n − (S₁/n)². The
    /// subtraction loses about (S₁/n)²/variance of the variance's digits, so when the pilot lies more than one
    /// standard deviation from the mean ((S₁/n)² &gt; S₂/(2n)) the sums are taken again about c = the mean found, the
    /// second pass of the corrected two-pass algorithm: either way the result stays exact when the mean is many times
    /// the spread, unlike Σx² − (Σx)²/n, and a constant group gives exactly 0. Not centred (RMSNorm): mean 0 and the
    /// mean square.</summary>
    private static (double Mean, double Variance) MeanAndVariance<T>(ReadOnlySpan<T> x, Runs runs, bool centered)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        double count = (double)runs.Count * runs.Length;
        T center = centered ? Pilot(x, runs) : T.Zero;
        var (sum, squares) = NormalizationSimd.CenteredSums(x, center, x, center, runs);
        if (!centered) return (0, squares / count);
        double shift = sum / count;
        if (shift * shift > squares / count / 2)
        {
            center = T.CreateTruncating(double.CreateTruncating(center) + shift);
            (sum, squares) = NormalizationSimd.CenteredSums(x, center, x, center, runs);
            shift = sum / count;
        }
        return (double.CreateTruncating(center) + shift, Math.Max(squares / count - shift * shift, 0));
    }

    /// <summary>Elements of a group's first run that <see cref="Pilot"/> averages.</summary>
    private const int PilotLength = 16;

    /// <summary>A first guess at a group's mean: the mean of the first <see cref="PilotLength"/> elements of its first
    /// run, summed in float64 and rounded to <typeparamref name="T"/>; exactly x₀ when they are equal (sixteen equal
    /// values sum exactly in float64).</summary>
    private static T Pilot<T>(ReadOnlySpan<T> x, Runs runs) where T : unmanaged, IFloatingPointIeee754<T>
    {
        ReadOnlySpan<T> sample = x.Slice(runs.First, Math.Min(runs.Length, PilotLength));
        return T.CreateTruncating(NormalizationSimd.WideSum(sample) / sample.Length);
    }

    /// <summary>Writes group <paramref name="group"/>'s output with its per-channel γ and β.</summary>
    private static void NormalizeGroup<T>(ReadOnlySpan<T> x, Span<T> y, NormalizationLayout layout, int group, double mean, double invStd,
        ReadOnlySpan<T> weight, ReadOnlySpan<T> bias, bool streaming)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        // A group's segments are consecutive channels: the first one's index (a division) is worked out once.
        int length = layout.SegmentLength, firstChannel = layout.Channel(group, 0);
        if (layout.Outer == 1 && !streaming && layout.Segments <= MaxStackSegments)
        {
            // One contiguous run (GroupNorm, InstanceNorm): all of its channels in one call.
            Span<T> scales = stackalloc T[layout.Segments], shifts = stackalloc T[layout.Segments];
            T center = default;
            for (int s = 0; s < layout.Segments; s++)
                (center, scales[s], shifts[s]) = ForwardCoefficients<T>(mean, invStd, Gamma(weight, firstChannel + s), Beta(bias, firstChannel + s));
            int start = layout.RunStart(0, group);
            NormalizationSimd.SegmentShiftScale(x.Slice(start, layout.Run), y.Slice(start, layout.Run), length, center, scales, shifts);
            return;
        }
        for (int s = 0; s < layout.Segments; s++)
        {
            int channel = firstChannel + s;
            var (center, scale, shift) = ForwardCoefficients<T>(mean, invStd, Gamma(weight, channel), Beta(bias, channel));
            if (!streaming)
            {
                // The segment's runs at every outer index (BatchNorm's N runs of a channel) in one call.
                int start = layout.RunStart(0, group) + s * length;
                NormalizationSimd.ShiftScaleStridedRuns(x[start..], y[start..], layout.Outer, length, layout.Groups * layout.Run, center, scale, shift);
                continue;
            }
            for (int a = 0; a < layout.Outer; a++)
            {
                int start = layout.RunStart(a, group) + s * length;
                NormalizationSimd.Write(y.Slice(start, length), new ShiftScale<T, Uniform<T>>(x.Slice(start, length), new(center), new(scale), new(shift)), streaming);
            }
        }
    }

    /// <summary>y = (x − μ)·γ/σ + β written as (x − c)·scale + shift, with c = μ rounded to <typeparamref name="T"/>
    /// (so x − c is exact for x near μ) and shift absorbing what the rounding of μ lost.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (T Center, T Scale, T Shift) ForwardCoefficients<T>(double mean, double invStd, double gamma, double beta)
        where T : IFloatingPointIeee754<T>
    {
        T center = T.CreateTruncating(mean);
        double scale = gamma * invStd;
        return (center, T.CreateTruncating(scale), T.CreateTruncating(beta - (mean - double.CreateTruncating(center)) * scale));
    }

    /// <summary>mean(γ·dy) and mean(γ·dy·x̂) over a group of <paramref name="count"/> elements; both vanish when the
    /// statistics are constants, and the first when the mean is not subtracted (RMSNorm).</summary>
    private static (double MeanDy, double MeanDyXhat) GradientMeans(bool centered, bool statisticsFromBatch, double sumDy, double sumDyXhat, double count) =>
        statisticsFromBatch ? (centered ? sumDy / count : 0, sumDyXhat / count) : (0, 0);

    /// <summary>dx = (γ/σ)·dy − (1/σ)·mean(γ·dy) − (x̂/σ)·mean(γ·dy·x̂) as dy·a + (x − c)·k + l with c = μ rounded to
    /// <typeparamref name="T"/>, since x̂ = ((x − c) + (c − μ))/σ.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (T Center, T A, T K, T L) GradientCoefficients<T>(double mean, double invStd, double gamma, double meanDy, double meanDyXhat)
        where T : IFloatingPointIeee754<T>
    {
        T center = T.CreateTruncating(mean);
        double k = -invStd * invStd * meanDyXhat;
        double l = -invStd * meanDy - k * (mean - double.CreateTruncating(center));
        return (center, T.CreateTruncating(gamma * invStd), T.CreateTruncating(k), T.CreateTruncating(l));
    }

    /// <summary>dβ[c] = Σ dy and dγ[c] = Σ dy·x̂ over every unit of channel c, added in unit order (deterministic).</summary>
    private static void ReduceUnitsToChannels(NormalizationLayout layout, double[] unitSums, Span<double> gradWeight, Span<double> gradBias)
    {
        gradWeight.Clear();
        gradBias.Clear();
        int units = layout.Units;
        for (int g = 0, u = 0; g < layout.Groups; g++)
            for (int s = 0, channel = layout.Channel(g, 0); s < layout.Segments; s++, u++, channel++)
            {
                if (!gradBias.IsEmpty) gradBias[channel] += unitSums[u];
                if (!gradWeight.IsEmpty) gradWeight[channel] += unitSums[units + u];
            }
    }

    /// <summary>Outputs larger than this many bytes are written past the cache: they would not stay there anyway. The
    /// size of a large last-level cache (an EPYC's 32 MiB per core complex): there a 25 MiB LayerNorm output written
    /// through the cache measured 20–25 % faster than streamed, and a 51 MiB BatchNorm output 15–25 % slower.</summary>
    private const long StreamingBytes = 32 << 20;

    private static unsafe bool Streams<T>(int length) where T : unmanaged => (long)length * sizeof(T) > StreamingBytes;

    /// <summary>Whether a pass whose tensors hold <paramref name="elements"/> elements in all reads them with 256-bit
    /// vectors on a machine with 512-bit ones: when they are larger than the cache (<see cref="StreamingBytes"/>), so
    /// that it reads memory. The batch path's reductions read one tensor; the row path's backward reads two and writes a
    /// third. Measured before tensor storage started on a cache line (<see cref="Storage.Start"/>), when every
    /// 512-bit load of a run straddled two lines and such loads read memory 20–25 % slower than 256-bit ones on an
    /// AMD EPYC (Zen 5; a float32 sum of 256 MiB on one thread: 23–24 GB/s against 27–29 GB/s; aligned 512-bit loads
    /// 31–37): BatchNorm2d 64x64x56x56's statistics pass alone ran 25 % faster, its training forward 7 points of the
    /// copy bandwidth nearer to it, and its backward 5–8 points (one and two threads, alternating rounds under load).
    /// Re-measured with aligned planes (every 512-bit load within one line), the 256-bit loads still win: the
    /// statistics pass read 29.8 against 23.9 GB/s on one thread and 57 against 50 on two, the whole training forward
    /// 1–23 % faster (AMD EPYC Zen 5, alternating rounds under load). From the cache the wider loads are
    /// faster and are kept. The row path's backward past the cache (LayerNorm 8192x768, 75 MiB in all) with 256-bit
    /// vectors one row at a time instead of 512-bit pairs of rows: 0.83× the time on one thread (pairs at 256 bits
    /// measured 25 % slower than single rows); with its dx pass out of line as well, 0.81× on one thread, 0.90× on two,
    /// and 0.85× for 4096x1024 (AMD EPYC Zen 5, two builds alternating in one process on the same buffers). From the
    /// cache 256-bit vectors took 1.3–1.5× as long (1024x768, 256x768), and the row path stays wide there. The choice depends on the sizes alone, so results stay identical
    /// for a given width and thread count.</summary>
    private static unsafe bool ReadsNarrow<T>(long elements) where T : unmanaged =>
        Vector512.IsHardwareAccelerated && elements * sizeof(T) > StreamingBytes;

    private static double Gamma<T>(ReadOnlySpan<T> weight, int channel) where T : IFloatingPointIeee754<T> =>
        weight.IsEmpty ? 1 : double.CreateTruncating(weight[channel]);

    private static double Beta<T>(ReadOnlySpan<T> bias, int channel) where T : IFloatingPointIeee754<T> =>
        bias.IsEmpty ? 0 : double.CreateTruncating(bias[channel]);
}
