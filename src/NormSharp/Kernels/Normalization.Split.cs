using System.Numerics;
using System.Runtime.CompilerServices;

namespace NormSharp.Kernels;

// BatchNorm's training forward and backward split at their reductions, for a caller that combines the reductions of
// several processes before using them (SyncBatchNorm): the forward's per-channel mean and variance come out before any
// output is written (the output then comes from ForwardWithStatistics with the combined statistics), and the
// backward's dx is written from per-channel sums Σdy and Σdy·x̂ given over the whole batch (the local sums come from
// Backward with no gradInput). The arithmetic is the group and column paths' own.
internal static partial class NormalizationKernels
{
    /// <summary>Per-channel mean and biased variance of a BatchNorm layout (Groups = channels, one segment) into
    /// <paramref name="statistics"/>' Mean and Variance, as the group path takes them; nothing is written to
    /// InvStd.</summary>
    public static void ChannelMoments<T>(ReadOnlyMemory<T> input, NormalizationLayout layout, GroupStatistics statistics)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (layout.ChannelsAreContiguous)
        {
            Parallelism.For(StripCount(layout.Groups), [MethodImpl(MethodImplOptions.AggressiveOptimization)] (first, end) =>
            {
                for (int strip = first; strip < end; strip++)
                {
                    int j0 = strip * ColumnStrip, width = Math.Min(ColumnStrip, layout.Groups - j0);
                    ColumnMeanAndVariance(input.Span[j0..], layout.Outer, layout.Groups, centered: true,
                        statistics.Mean.Span.Slice(j0, width), statistics.Variance.Span.Slice(j0, width));
                }
            }, 2L * layout.Outer * ColumnStrip);
            return;
        }
        Parallelism.For(layout.Groups, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (first, end) =>
        {
            for (int g = first; g < end; g++)
                (statistics.Mean.Span[g], statistics.Variance.Span[g]) = MeanAndVariance(input.Span, layout.GroupRuns(g), centered: true);
        }, layout.GroupSize);
    }

    /// <summary>dx = (γ/σ)·(dy − mean(dy) − x̂·mean(dy·x̂)) per channel (Ioffe &amp; Szegedy 2015, section 3) with the
    /// two means taken from sums over the whole batch of <paramref name="count"/> values per channel
    /// (<paramref name="sumDy"/> = Σdy, <paramref name="sumDyXhat"/> = Σdy·x̂), of which <paramref name="input"/> is
    /// a part; <paramref name="statistics"/> are the whole batch's.</summary>
    public static void BackwardFromChannelSums<T>(ReadOnlyMemory<T> input, ReadOnlyMemory<T> gradOutput, Memory<T> gradInput, NormalizationLayout layout,
        ReadOnlyMemory<T> weight, GroupStatistics statistics, ReadOnlySpan<double> sumDy, ReadOnlySpan<double> sumDyXhat, double count)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int channels = layout.Groups;
        // Per channel: centre, a, k and l of dx = dy·a + (x − c)·k + l, side by side.
        T[] coefficients = BufferPool<T>.Shared.Rent(4 * channels);
        ReadOnlySpan<T> w = weight.Span;
        for (int c = 0; c < channels; c++)
        {
            double gamma = Gamma(w, c);
            var (meanDy, meanDyXhat) = GradientMeans(centered: true, statisticsFromBatch: true, gamma * sumDy[c], gamma * sumDyXhat[c], count);
            (coefficients[c], coefficients[channels + c], coefficients[2 * channels + c], coefficients[3 * channels + c]) =
                GradientCoefficients<T>(statistics.Mean.Span[c], statistics.InvStd.Span[c], gamma, meanDy, meanDyXhat);
        }
        if (layout.ChannelsAreContiguous) WriteColumnGradient(input, gradOutput, gradInput, layout.Outer, channels, coefficients);
        else
        {
            int length = layout.Run;
            bool streaming = Streams<T>(input.Length);
            Parallelism.For(layout.Outer * channels, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (first, end) =>
            {
                for (int r = first; r < end; r++)
                {
                    int c = r % channels, start = r * length;
                    NormalizationSimd.GradientRun(gradOutput.Span.Slice(start, length), input.Span.Slice(start, length), gradInput.Span.Slice(start, length),
                        coefficients[channels + c], coefficients[c], coefficients[2 * channels + c], coefficients[3 * channels + c], streaming);
                }
            }, 2L * length);
        }
        BufferPool<T>.Shared.Return(coefficients);
    }
}
