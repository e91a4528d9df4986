using NormSharp.Nn;

namespace NormSharp.Distributed;

/// <summary>
/// Batch normalization over a batch split across the processes of a <see cref="ProcessGroup"/> (PyTorch's
/// <c>nn.SyncBatchNorm</c>): in training mode every process normalizes its part with the mean and biased variance of
/// the whole batch, and the running statistics move toward the whole batch's mean and unbiased variance, so they stay
/// identical on every process; the result equals <see cref="BatchNorm"/> on the whole batch in one process. Per
/// channel, each process's count, mean and M₂ are all-gathered in one call and merged in float64 by Chan's formula;
/// the backward pass sums Σdy and Σdy·x̂ over the processes in one call. Processes may hold different numbers of
/// samples, zero included (it must still call the layer). Takes (N, C, *) inputs of any rank ≥ 2 (1d, 2d and 3d);
/// same parameters and buffers as BatchNorm (<c>weight</c>, <c>bias</c>, <c>running_mean</c>, <c>running_var</c>,
/// <c>num_batches_tracked</c>), so checkpoints are interchangeable. In evaluation mode, alone in its group, or
/// frozen, it is plain BatchNorm.
/// </summary>
public sealed class SyncBatchNorm : BatchNorm
{
    private readonly int _channelAxis = 1;
    private readonly bool _unbiasedRunningVariance = true;
    private readonly BatchStatisticsExchange _exchange;

    /// <summary>Creates the layer with PyTorch's defaults; <paramref name="processGroup"/> defaults to
    /// <see cref="ProcessGroup.World"/>.</summary>
    public SyncBatchNorm(int numFeatures, double eps = 1e-5, double? momentum = 0.1, bool affine = true, bool trackRunningStats = true,
        ProcessGroup? processGroup = null)
        : base(numFeatures, eps, momentum, affine, affine, trackRunningStats)
    {
        ProcessGroup = processGroup ?? ProcessGroup.World;
        _exchange = new BatchStatisticsExchange(ProcessGroup.AllGather, ProcessGroup.AllReduceSum);
    }

    /// <summary>Takes over <paramref name="source"/>'s tensors themselves (not copies), so an optimizer built on
    /// them keeps working, and its conventions (channel axis, which variance the running variance follows).</summary>
    private SyncBatchNorm(BatchNorm source, ProcessGroup processGroup)
        : base(source.NumFeatures, source.Eps, source.Momentum, source.Weight is not null, source.Bias is not null, source.TrackRunningStats)
    {
        ProcessGroup = processGroup;
        _exchange = new BatchStatisticsExchange(ProcessGroup.AllGather, ProcessGroup.AllReduceSum);
        _channelAxis = source is KerasBatchNormalization keras ? keras.Axis : 1;
        _unbiasedRunningVariance = source.UnbiasedRunningVariance;
        foreach (var (name, parameter) in new[] { ("weight", source.Weight), ("bias", source.Bias) })
            if (parameter is not null)
            {
                bool trainable = parameter.RequiresGrad;
                RegisterParameter(name, parameter).RequiresGrad = trainable;
            }
        if (source.TrackRunningStats)
        {
            RegisterBuffer("running_mean", source.RunningMean!);
            RegisterBuffer("running_var", source.RunningVar!);
            RegisterBuffer("num_batches_tracked", source.NumBatchesTracked!);
        }
        Train(source.IsTraining);
    }

    /// <summary>The processes whose parts make up the batch.</summary>
    public ProcessGroup ProcessGroup { get; }

    /// <summary>
    /// Replaces every <see cref="BatchNorm"/> in <paramref name="module"/>'s tree by a <see cref="SyncBatchNorm"/>
    /// holding the same parameter and buffer tensors (PyTorch's <c>convert_sync_batchnorm</c>); Keras layers keep
    /// their channel axis and biased moving variance. Frozen layers normalize with their running statistics anyway
    /// and stay as they are, as do layers <paramref name="where"/> rejects. Returns the converted module: the same
    /// object unless <paramref name="module"/> itself is a BatchNorm.
    /// </summary>
    public static Module ConvertSyncBatchNorm(Module module, ProcessGroup? processGroup = null, Func<BatchNorm, bool>? where = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        ProcessGroup group = processGroup ?? ProcessGroup.World;
        if (module is BatchNorm { IsFrozen: false } batchNorm and not SyncBatchNorm && (where?.Invoke(batchNorm) ?? true))
            return new SyncBatchNorm(batchNorm, group);
        foreach (var (name, child) in module.NamedChildren().ToList())
        {
            Module converted = ConvertSyncBatchNorm(child, group, where);
            if (!ReferenceEquals(converted, child)) module.ReplaceChild(name, converted);
        }
        return module;
    }

    /// <summary>Converts only the Keras layers created with <c>synchronized: true</c> (Keras's
    /// <c>BatchNormalization(synchronized=True)</c>); see <see cref="ConvertSyncBatchNorm"/>.</summary>
    public static Module ConvertSynchronizedKerasLayers(Module module, ProcessGroup? processGroup = null) =>
        ConvertSyncBatchNorm(module, processGroup, bn => bn is KerasBatchNormalization { Synchronized: true });

    /// <inheritdoc/>
    protected override void CheckInput(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank < 2 || _channelAxis >= input.Rank || _channelAxis < -input.Rank)
            throw new ArgumentException($"{Describe()}: expected an input of shape (N, C, *) with the channels on axis {_channelAxis}, got shape {ShapeUtil.Format(input.Dims)}.");
    }

    internal override int ChannelAxis(Tensor input) => _channelAxis < 0 ? _channelAxis + input.Rank : _channelAxis;

    internal override bool UnbiasedRunningVariance => _unbiasedRunningVariance;

    private protected override Tensor Normalize(Tensor input, int axis, bool batchStatistics, double runningFactor) =>
        batchStatistics && IsTraining && ProcessGroup.Size > 1
            ? Functional.SyncBatchNorm(Describe(), input, axis, RunningMean, RunningVar, Weight, Bias, runningFactor, Eps, UnbiasedRunningVariance, _exchange)
            : base.Normalize(input, axis, batchStatistics, runningFactor);
}
