using NormSharp.Autograd;
using NormSharp.Kernels;

namespace NormSharp.Nn;

/// <summary>How a batch split across processes exchanges its reductions (implemented over MPI by
/// NormSharp.Distributed). Every process calls each member in the same order.</summary>
/// <param name="AllGather">Returns the concatenation, in process order, of every process's array (all the same
/// length).</param>
/// <param name="SumInPlace">Replaces the array by its element-wise sum over the processes.</param>
internal sealed record BatchStatisticsExchange(Func<double[], double[]> AllGather, Action<double[]> SumInPlace);

public static partial class Functional
{
    /// <summary>
    /// Training-mode batch normalization of one process's part of a batch, with the statistics of the whole batch
    /// (PyTorch's SyncBatchNorm). Forward: each process's per-channel (count, mean, M₂) are all-gathered in one call
    /// and merged in process order by Chan's pairwise formula in float64, so every process gets the same mean and
    /// biased variance, and the running statistics move toward the whole batch's (unbiased when
    /// <paramref name="unbiasedRunningVariance"/>). Backward: the per-channel Σdy and Σdy·x̂ are summed over the
    /// processes in one call and dx uses their whole-batch means; dγ and dβ are this process's part (the
    /// data-parallel gradient sum adds the parts). A process may hold any number of samples, zero included.
    /// </summary>
    internal static Tensor SyncBatchNorm(string who, Tensor input, int channelAxis, Tensor? runningMean, Tensor? runningVar, Tensor? weight, Tensor? bias,
        double momentum, double eps, bool unbiasedRunningVariance, BatchStatisticsExchange exchange)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank < 2)
            throw new ArgumentException($"{who}: expected an input with a batch and a channel axis (N, C, *), got shape {ShapeUtil.Format(input.Dims)}.");
        int channels = input.Dims[channelAxis];
        CheckPerChannel(who, channels, weight, bias);
        CheckRunningStatistics(who, channels, runningMean, runningVar, required: false);
        CheckSameType(who, input, weight, bias);
        NormalizationLayout layout = NormalizationLayout.ChannelAxis(input.Dims, channelAxis);
        var plan = new NormalizationPlan(layout, Centered: true, ElementwiseAffine: false);
        Tensor x = input.Contiguous();
        Tensor statistics = Tensor.Allocate(DType.Float64, new[] { 3, channels }, clear: false);
        GroupStatistics stats = Split(statistics);

        // This process's part: [count, mean per channel, M₂ per channel].
        double[] part = new double[1 + 2 * channels];
        part[0] = layout.GroupSize;
        if (x.Length > 0)
        {
            if (x.DType == DType.Float32) NormalizationKernels.ChannelMoments<float>(x.AsArraySegment<float>(), layout, stats);
            else NormalizationKernels.ChannelMoments<double>(x.AsArraySegment<double>(), layout, stats);
            for (int c = 0; c < channels; c++)
                (part[1 + c], part[1 + channels + c]) = (stats.Mean.Span[c], stats.Variance.Span[c] * layout.GroupSize);
        }
        double[] parts = exchange.AllGather(part);
        double total = 0;
        for (int c = 0; c < channels; c++)
        {
            double count = 0, mean = 0, m2 = 0;
            for (int p = 0; p < parts.Length; p += part.Length)
                if (parts[p] > 0) NormalizationKernels.Merge(ref count, ref mean, ref m2, parts[p], parts[p + 1 + c], parts[p + 1 + channels + c]);
            stats.Mean.Span[c] = mean;
            stats.Variance.Span[c] = count > 0 ? Math.Max(m2 / count, 0) : 0;
            stats.InvStd.Span[c] = 1 / Math.Sqrt(stats.Variance.Span[c] + eps);
            total = count;
        }
        if (total <= 1)
            throw new ArgumentException($"{who}: Expected more than 1 value per channel when training, got input size {ShapeUtil.Format(input.Dims)} here and {total} values per channel over all {parts.Length / part.Length} processes.");

        Tensor y = Tensor.Allocate(input.DType, input.Dims, clear: false);
        if (x.Length > 0)
        {
            if (x.DType == DType.Float32)
                NormalizationKernels.ForwardWithStatistics(x.AsArraySegment<float>(), y.AsArraySegment<float>(), plan, MemoryOf<float>(weight), MemoryOf<float>(bias), stats);
            else
                NormalizationKernels.ForwardWithStatistics(x.AsArraySegment<double>(), y.AsArraySegment<double>(), plan, MemoryOf<double>(weight), MemoryOf<double>(bias), stats);
        }
        if (runningMean is not null)
        {
            // The groups here are the channels, so the running update sees the whole batch's statistics with the
            // whole batch's count for the n/(n − 1) correction.
            var wholeBatch = new NormalizationLayout(1, channels, 1, (int)total, channels);
            UpdateRunningStatistics(runningMean, runningVar!, statistics, wholeBatch, momentum, unbiasedRunningVariance);
        }
        RecordSyncBatchNorm(who, input, x, y, layout, weight, bias, statistics, total, exchange);
        return y;
    }

    private static void RecordSyncBatchNorm(string who, Tensor input, Tensor x, Tensor y, NormalizationLayout layout, Tensor? weight, Tensor? bias,
        Tensor statistics, double total, BatchStatisticsExchange exchange)
    {
        var inputs = new List<Tensor> { input };
        if (weight is not null) inputs.Add(weight);
        if (bias is not null) inputs.Add(bias);
        AutogradEngine.Record(y, who, inputs.ToArray(), dy =>
        {
            Tensor g = dy.Contiguous();
            int channels = layout.Groups;
            // sums[..C] = Σdy (dβ), sums[C..] = Σdy·x̂ (dγ), over this process's part.
            var sums = new double[2 * channels];
            var plan = new NormalizationPlan(layout, Centered: true, ElementwiseAffine: false);
            GroupStatistics stats = Split(statistics);
            if (x.Length > 0)
            {
                if (x.DType == DType.Float32)
                    NormalizationKernels.Backward(x.AsArraySegment<float>(), g.AsArraySegment<float>(), default, plan, statisticsFromBatch: true,
                        MemoryOf<float>(weight), stats, sums.AsSpan(channels), sums.AsSpan(0, channels));
                else
                    NormalizationKernels.Backward(x.AsArraySegment<double>(), g.AsArraySegment<double>(), default, plan, statisticsFromBatch: true,
                        MemoryOf<double>(weight), stats, sums.AsSpan(channels), sums.AsSpan(0, channels));
            }
            var grads = new List<Tensor?>();
            if (input.RequiresGrad)
            {
                double[] wholeBatch = (double[])sums.Clone();
                exchange.SumInPlace(wholeBatch);
                Tensor dx = Tensor.Allocate(input.DType, input.Dims, clear: false);
                if (x.Length > 0)
                {
                    if (x.DType == DType.Float32)
                        NormalizationKernels.BackwardFromChannelSums(x.AsArraySegment<float>(), g.AsArraySegment<float>(), dx.AsArraySegment<float>(), layout,
                            MemoryOf<float>(weight), stats, wholeBatch.AsSpan(0, channels), wholeBatch.AsSpan(channels), total);
                    else
                        NormalizationKernels.BackwardFromChannelSums(x.AsArraySegment<double>(), g.AsArraySegment<double>(), dx.AsArraySegment<double>(), layout,
                            MemoryOf<double>(weight), stats, wholeBatch.AsSpan(0, channels), wholeBatch.AsSpan(channels), total);
                }
                grads.Add(dx);
            }
            else grads.Add(null);
            if (weight is not null) grads.Add(weight.RequiresGrad ? FromDoubles(sums.AsSpan(channels), weight) : null);
            if (bias is not null) grads.Add(bias.RequiresGrad ? FromDoubles(sums.AsSpan(0, channels), bias) : null);
            return grads.ToArray();
        });
    }
}
