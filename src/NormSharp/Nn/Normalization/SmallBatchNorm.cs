namespace NormSharp.Nn;

/// <summary>
/// Batch Renormalization (Ioffe 2017) of (N, C) or (N, C, L) inputs, in PyTorch's conventions (momentum 0.1 as the
/// weight of the batch, unbiased running variance, eps 1e-5): training normalizes with the batch statistics and then
/// corrects toward the running ones by r and d, clipped by <paramref name="clipping"/> (default: the paper's schedule);
/// evaluation is <see cref="BatchNorm1d"/>'s. For small or non-i.i.d. batches, where plain BatchNorm's training and
/// inference disagree. See <see cref="BatchNorm.Renorm"/>.
/// </summary>
public sealed class BatchRenorm1d(int numFeatures, double eps = 1e-5, double? momentum = 0.1, bool affine = true, BatchRenormClipping? clipping = null)
    : BatchNorm(numFeatures, eps, momentum, affine, affine, trackRunningStats: true, clipping ?? new BatchRenormClipping())
{
    /// <inheritdoc/>
    protected override void CheckInput(Tensor input) => CheckRank(input, 2, 3);
}

/// <summary>Batch Renormalization (Ioffe 2017) of (N, C, H, W) inputs, in PyTorch's conventions; see
/// <see cref="BatchRenorm1d"/> and <see cref="BatchNorm.Renorm"/>.</summary>
public sealed class BatchRenorm2d(int numFeatures, double eps = 1e-5, double? momentum = 0.1, bool affine = true, BatchRenormClipping? clipping = null)
    : BatchNorm(numFeatures, eps, momentum, affine, affine, trackRunningStats: true, clipping ?? new BatchRenormClipping())
{
    /// <inheritdoc/>
    protected override void CheckInput(Tensor input) => CheckRank(input, 4);
}

/// <summary>
/// Ghost Batch Normalization (Hoffer, Hubara &amp; Soudry 2017) of (N, C) or (N, C, L) inputs, in PyTorch's
/// conventions: in training each virtual batch of <paramref name="virtualBatchSize"/> samples is normalized by its own
/// statistics (large-batch training with the regularizing noise of small batches); evaluation is
/// <see cref="BatchNorm1d"/>'s. See <see cref="BatchNorm.VirtualBatchSize"/>.
/// </summary>
public sealed class GhostBatchNorm1d(int numFeatures, int virtualBatchSize, double eps = 1e-5, double? momentum = 0.1, bool affine = true)
    : BatchNorm(numFeatures, eps, momentum, affine, affine, trackRunningStats: true, virtualBatchSize: virtualBatchSize)
{
    /// <inheritdoc/>
    protected override void CheckInput(Tensor input) => CheckRank(input, 2, 3);
}

/// <summary>Ghost Batch Normalization (Hoffer, Hubara &amp; Soudry 2017) of (N, C, H, W) inputs, in PyTorch's
/// conventions; see <see cref="GhostBatchNorm1d"/> and <see cref="BatchNorm.VirtualBatchSize"/>.</summary>
public sealed class GhostBatchNorm2d(int numFeatures, int virtualBatchSize, double eps = 1e-5, double? momentum = 0.1, bool affine = true)
    : BatchNorm(numFeatures, eps, momentum, affine, affine, trackRunningStats: true, virtualBatchSize: virtualBatchSize)
{
    /// <inheritdoc/>
    protected override void CheckInput(Tensor input) => CheckRank(input, 4);
}
