namespace NormSharp.Nn;

/// <summary>
/// Batch normalization (Ioffe &amp; Szegedy 2015, Alg. 1), PyTorch's <c>_BatchNorm</c>: statistics per channel over the
/// batch and all spatial positions. In training mode the layer normalizes with the batch mean and the biased batch
/// variance and moves the running statistics toward the batch mean and the unbiased batch variance
/// (running ← (1 − momentum)·running + momentum·batch; momentum null = cumulative average); in evaluation mode it
/// normalizes with the running statistics. Without tracked running statistics it uses batch statistics in both
/// modes. A frozen layer (<see cref="Freeze"/>) behaves as in evaluation mode whatever the module mode.
/// The rank-specific subclasses only check the input's rank.
/// Two variants for small or non-i.i.d. batches change only the training-mode statistics, so evaluation, folding and
/// export treat them as BatchNorm: Batch Renormalization (<see cref="Renorm"/>) and Ghost Batch Normalization
/// (<see cref="VirtualBatchSize"/>).
/// </summary>
public abstract class BatchNorm : NormBase
{
    private protected BatchNorm(int numFeatures, double eps, double? momentum, bool scale, bool center, bool trackRunningStats,
        BatchRenormClipping? renorm = null, int? virtualBatchSize = null)
        : base(numFeatures, eps, momentum, scale, center, trackRunningStats)
    {
        if (renorm is not null && !trackRunningStats)
            throw new ArgumentException($"{GetType().Name}: Batch Renormalization corrects toward the running statistics, so it needs trackRunningStats: true.", nameof(renorm));
        if (virtualBatchSize is < 2)
            throw new ArgumentOutOfRangeException(nameof(virtualBatchSize), $"{GetType().Name}: the virtual batch size must be at least 2, got {virtualBatchSize}.");
        Renorm = renorm?.Checked(GetType().Name);
        VirtualBatchSize = virtualBatchSize;
    }

    /// <summary>Batch Renormalization's clipping schedule (Ioffe 2017), or null for plain batch statistics: in
    /// training, the batch-normalized values are corrected toward the running statistics by r and d (see
    /// <see cref="BatchRenormClipping"/>), so training and evaluation compute the same function up to those clips.</summary>
    public BatchRenormClipping? Renorm { get; }

    /// <summary>Ghost Batch Normalization's virtual batch size (Hoffer, Hubara &amp; Soudry 2017, §4), or null: in
    /// training, a batch of N samples is split into ⌊N/size⌋ virtual batches (at least one) whose sizes differ by at most one, each
    /// normalized by its own statistics and each updating the running statistics (and the batch count) once.</summary>
    public int? VirtualBatchSize { get; }

    /// <summary>Set by <see cref="BatchNormTraining.RecomputeBatchNormStatistics"/> while it re-estimates the running
    /// statistics: whole batches then feed them, not virtual ones, since inference normalizes with the population's
    /// statistics (Hoffer et al. 2017, §4).</summary>
    internal bool EstimatingPopulationStatistics { get; set; }

    /// <summary>True after <see cref="Freeze"/>: the running statistics normalize and stay unchanged in training
    /// mode too.</summary>
    public bool IsFrozen { get; private set; }

    /// <summary>
    /// Freezes the layer for fine-tuning (Keras's <c>trainable = False</c> for BatchNormalization, detectron2's
    /// FrozenBatchNorm2d): it normalizes with its running statistics and does not update them, even while the rest of
    /// the model trains. With <paramref name="freezeParameters"/>, γ and β also stop receiving gradients.
    /// </summary>
    public void Freeze(bool freezeParameters = true)
    {
        if (!TrackRunningStats)
            throw new InvalidOperationException($"{Describe()}: a layer without running statistics (trackRunningStats: false) has nothing to freeze on.");
        IsFrozen = true;
        if (freezeParameters)
            foreach (Tensor p in Parameters()) p.RequiresGrad = false;
    }

    /// <summary>Undoes <see cref="Freeze"/>: batch statistics in training mode again, and γ, β trainable.</summary>
    public void Unfreeze()
    {
        IsFrozen = false;
        foreach (Tensor p in Parameters()) p.RequiresGrad = true;
    }

    /// <summary>Normalizes <paramref name="input"/> (N, C, *) per channel; see the class summary for which
    /// statistics each mode uses.</summary>
    public override Tensor Forward(Tensor input)
    {
        CheckInput(input);
        int axis = ChannelAxis(input);
        CheckChannels(input, axis);
        bool batchStatistics = (IsTraining && !IsFrozen) || !TrackRunningStats;
        int samples = input.Dims[0], ghosts = batchStatistics && !EstimatingPopulationStatistics && VirtualBatchSize is int size ? samples / size : 1;
        if (ghosts <= 1) return NormalizeAndTrack(input, axis, batchStatistics);
        var parts = new Tensor[ghosts];
        for (int g = 0, start = 0; g < ghosts; g++)
        {
            int length = samples / ghosts + (g < samples % ghosts ? 1 : 0);
            parts[g] = NormalizeAndTrack(input.Narrow(0, start, length), axis, batchStatistics: true);
            start += length;
        }
        return Tensor.Concat(parts);
    }

    /// <summary>One normalization with batch or running statistics, updating the running statistics and the batch
    /// count when the batch's are used and tracked.</summary>
    private Tensor NormalizeAndTrack(Tensor input, int axis, bool batchStatistics)
    {
        bool updateRunning = batchStatistics && TrackRunningStats;
        // PyTorch's exponential_average_factor: the momentum, or 1/n for the n-th batch when momentum is null.
        double factor = updateRunning ? Momentum ?? 1.0 / (NumBatchesTracked!.Item() + 1) : 0;
        Tensor y = updateRunning && Renorm is not null
            ? Functional.BatchRenorm(Describe(), input, axis, RunningMean!, RunningVar!, Weight, Bias, Renorm.At(NumBatchesTracked!.Item()), factor, Eps, UnbiasedRunningVariance)
            : Normalize(input, axis, batchStatistics, factor);
        if (updateRunning) NumBatchesTracked!.CopyFrom(new[] { (float)(NumBatchesTracked.Item() + 1) });
        return y;
    }

    /// <summary>Normalizes with the batch's statistics (moving the running ones by <paramref name="runningFactor"/>)
    /// or with the running ones. SyncBatchNorm overrides it to take the statistics of the batch over all processes.</summary>
    private protected virtual Tensor Normalize(Tensor input, int axis, bool batchStatistics, double runningFactor) =>
        Functional.BatchNorm(Describe(), input, axis, RunningMean, RunningVar, Weight, Bias, batchStatistics, runningFactor, Eps, UnbiasedRunningVariance);

    /// <summary>Throws an <see cref="ArgumentException"/> naming the layer when the input's rank does not fit.</summary>
    protected abstract void CheckInput(Tensor input);

    /// <summary>The axis holding the channels (1 for NCHW).</summary>
    internal virtual int ChannelAxis(Tensor input) => 1;

    /// <summary>Whether the running variance follows the unbiased batch variance n/(n−1)·σ² (PyTorch) or σ² (Keras).</summary>
    internal virtual bool UnbiasedRunningVariance => true;
}

/// <summary>Batch normalization of (N, C) or (N, C, L) inputs (PyTorch's <c>nn.BatchNorm1d</c>); see
/// <see cref="BatchNorm"/>.</summary>
public sealed class BatchNorm1d(int numFeatures, double eps = 1e-5, double? momentum = 0.1, bool affine = true, bool trackRunningStats = true)
    : BatchNorm(numFeatures, eps, momentum, affine, affine, trackRunningStats)
{
    /// <inheritdoc/>
    protected override void CheckInput(Tensor input) => CheckRank(input, 2, 3);
}

/// <summary>Batch normalization of (N, C, H, W) inputs (PyTorch's <c>nn.BatchNorm2d</c>); see
/// <see cref="BatchNorm"/>.</summary>
public sealed class BatchNorm2d(int numFeatures, double eps = 1e-5, double? momentum = 0.1, bool affine = true, bool trackRunningStats = true)
    : BatchNorm(numFeatures, eps, momentum, affine, affine, trackRunningStats)
{
    /// <inheritdoc/>
    protected override void CheckInput(Tensor input) => CheckRank(input, 4);
}

/// <summary>Batch normalization of (N, C, D, H, W) inputs (PyTorch's <c>nn.BatchNorm3d</c>); see
/// <see cref="BatchNorm"/>.</summary>
public sealed class BatchNorm3d(int numFeatures, double eps = 1e-5, double? momentum = 0.1, bool affine = true, bool trackRunningStats = true)
    : BatchNorm(numFeatures, eps, momentum, affine, affine, trackRunningStats)
{
    /// <inheritdoc/>
    protected override void CheckInput(Tensor input) => CheckRank(input, 5);
}
