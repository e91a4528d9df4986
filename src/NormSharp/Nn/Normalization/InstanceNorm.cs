namespace NormSharp.Nn;

/// <summary>
/// Instance normalization (Ulyanov, Vedaldi &amp; Lempitsky 2016), PyTorch's <c>_InstanceNorm</c>: each (sample,
/// channel) is normalized over its spatial positions with its own mean and biased variance. γ, β
/// (<c>affine</c>) and running statistics (<c>trackRunningStats</c>) are off by default; when tracked, the running
/// statistics follow the batch average of the per-instance mean and unbiased variance (momentum null means no
/// update, as in PyTorch) and evaluation mode normalizes with them. Unbatched inputs (without N) are accepted.
/// </summary>
public abstract class InstanceNorm : NormBase
{
    private protected InstanceNorm(int numFeatures, double eps, double? momentum, bool affine, bool trackRunningStats)
        : base(numFeatures, eps, momentum, affine, affine, trackRunningStats)
    {
    }

    /// <summary>The rank of a batched input, (N, C, *).</summary>
    private protected abstract int BatchedRank { get; }

    /// <summary>Normalizes each (sample, channel) of <paramref name="input"/>; see the class summary.</summary>
    public override Tensor Forward(Tensor input)
    {
        CheckRank(input, BatchedRank - 1, BatchedRank);
        bool unbatched = input.Rank == BatchedRank - 1;
        Tensor x = unbatched ? input.Unsqueeze(0) : input;
        // Like PyTorch, the channel count only matters where per-channel state exists.
        if (Affine || TrackRunningStats) CheckChannels(x, 1);
        bool inputStatistics = IsTraining || !TrackRunningStats;
        Tensor y = Functional.InstanceNorm(Describe(), x, RunningMean, RunningVar, Weight, Bias, inputStatistics, Momentum ?? 0, Eps);
        return unbatched ? y.Reshape(input.Shape) : y;
    }
}

/// <summary>Instance normalization of (N, C, L) or unbatched (C, L) inputs (PyTorch's <c>nn.InstanceNorm1d</c>); see
/// <see cref="InstanceNorm"/>.</summary>
public sealed class InstanceNorm1d(int numFeatures, double eps = 1e-5, double? momentum = 0.1, bool affine = false, bool trackRunningStats = false)
    : InstanceNorm(numFeatures, eps, momentum, affine, trackRunningStats)
{
    private protected override int BatchedRank => 3;
}

/// <summary>Instance normalization of (N, C, H, W) or unbatched (C, H, W) inputs (PyTorch's
/// <c>nn.InstanceNorm2d</c>); see <see cref="InstanceNorm"/>.</summary>
public sealed class InstanceNorm2d(int numFeatures, double eps = 1e-5, double? momentum = 0.1, bool affine = false, bool trackRunningStats = false)
    : InstanceNorm(numFeatures, eps, momentum, affine, trackRunningStats)
{
    private protected override int BatchedRank => 4;
}

/// <summary>Instance normalization of (N, C, D, H, W) or unbatched (C, D, H, W) inputs (PyTorch's
/// <c>nn.InstanceNorm3d</c>); see <see cref="InstanceNorm"/>.</summary>
public sealed class InstanceNorm3d(int numFeatures, double eps = 1e-5, double? momentum = 0.1, bool affine = false, bool trackRunningStats = false)
    : InstanceNorm(numFeatures, eps, momentum, affine, trackRunningStats)
{
    private protected override int BatchedRank => 5;
}
