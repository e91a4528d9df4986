namespace NormSharp.Nn;

/// <summary>
/// The base of the normalization layers that keep per-feature state (PyTorch's <c>_NormBase</c>): the affine
/// parameters <c>weight</c> (γ, initialized to ones) and <c>bias</c> (β, zeros), and, when running statistics are
/// tracked, the buffers <c>running_mean</c> (zeros), <c>running_var</c> (ones) and <c>num_batches_tracked</c> (0).
/// <see cref="BatchNorm"/> and <see cref="InstanceNorm"/> derive from it and differ only in which axes their
/// statistics cover.
/// </summary>
public abstract class NormBase : Module
{
    private protected NormBase(int numFeatures, double eps, double? momentum, bool scale, bool center, bool trackRunningStats)
    {
        if (numFeatures <= 0)
            throw new ArgumentOutOfRangeException(nameof(numFeatures), $"{GetType().Name}: numFeatures must be positive, got {numFeatures}.");
        if (!(eps >= 0) || double.IsInfinity(eps))
            throw new ArgumentOutOfRangeException(nameof(eps), $"{GetType().Name}: eps must be a finite number ≥ 0, got {eps}.");
        NumFeatures = numFeatures;
        Eps = eps;
        Momentum = momentum;
        TrackRunningStats = trackRunningStats;
        foreach (var (name, present) in new[] { ("weight", scale), ("bias", center) })
            if (present) RegisterParameter(name, Tensor.Allocate(DType.Float32, new[] { numFeatures }, scoped: false));
            else RegisterAbsentParameter(name);
        if (trackRunningStats)
        {
            RegisterBuffer("running_mean", Tensor.Allocate(DType.Float32, new[] { numFeatures }, scoped: false));
            RegisterBuffer("running_var", Tensor.Allocate(DType.Float32, new[] { numFeatures }, scoped: false));
            RegisterBuffer("num_batches_tracked", Tensor.Allocate(DType.Float32, Array.Empty<int>(), scoped: false));
        }
        ResetParameters();
    }

    /// <summary>The number of channels (C of an (N, C, *) input).</summary>
    public int NumFeatures { get; }

    /// <summary>ε, added to the variance before the square root.</summary>
    public double Eps { get; }

    /// <summary>The weight of the current batch in the running averages, PyTorch's convention:
    /// running ← (1 − momentum)·running + momentum·batch. Null selects the cumulative (equal-weight) average over all
    /// batches seen, momentum = 1/num_batches_tracked. Keras's momentum is 1 minus this.</summary>
    public double? Momentum
    {
        get => _momentum;
        set
        {
            if (value is double m && !(m >= 0 && m <= 1))
                throw new ArgumentOutOfRangeException(nameof(value), $"{GetType().Name}: momentum must lie in [0, 1] or be null (cumulative average), got {m}.");
            _momentum = value;
        }
    }

    private double? _momentum;

    /// <summary>Whether the layer has learnable γ and β.</summary>
    public bool Affine => Weight is not null || Bias is not null;

    /// <summary>Whether the layer keeps running mean and variance for evaluation mode.</summary>
    public bool TrackRunningStats { get; }

    /// <summary>γ, shape (C), or null without affine parameters.</summary>
    public Tensor? Weight => GetParameter("weight");

    /// <summary>β, shape (C), or null without affine parameters.</summary>
    public Tensor? Bias => GetParameter("bias");

    /// <summary>The running mean, shape (C), or null when running statistics are not tracked.</summary>
    public Tensor? RunningMean => TrackRunningStats ? GetBuffer("running_mean") : null;

    /// <summary>The running variance, shape (C), or null when running statistics are not tracked. BatchNorm moves it
    /// toward the unbiased batch variance (Keras: the biased one).</summary>
    public Tensor? RunningVar => TrackRunningStats ? GetBuffer("running_var") : null;

    /// <summary>How many training batches have updated the running statistics, a scalar tensor (float; exact up to
    /// 2²⁴ batches), or null when running statistics are not tracked.</summary>
    public Tensor? NumBatchesTracked => TrackRunningStats ? GetBuffer("num_batches_tracked") : null;

    /// <summary>Sets the running mean to 0, the running variance to 1 and the batch count to 0.</summary>
    public void ResetRunningStats()
    {
        if (!TrackRunningStats) return;
        Init.Constant(RunningMean!, 0);
        Init.Constant(RunningVar!, 1);
        Init.Constant(NumBatchesTracked!, 0);
    }

    /// <summary>Resets the running statistics, γ to 1 and β to 0.</summary>
    public void ResetParameters()
    {
        ResetRunningStats();
        if (Weight is not null) Init.Constant(Weight, 1);
        if (Bias is not null) Init.Constant(Bias, 0);
    }

    /// <inheritdoc/>
    protected override string ExtraRepresentation =>
        $"{NumFeatures}, eps={PythonRepr.Float(Eps)}, momentum={PythonRepr.Float(Momentum)}, affine={PythonRepr.Bool(Affine)}, track_running_stats={PythonRepr.Bool(TrackRunningStats)}";

    /// <summary>Throws unless the channel axis of <paramref name="input"/> has <see cref="NumFeatures"/> entries.</summary>
    private protected void CheckChannels(Tensor input, int axis)
    {
        if (input.Dims[axis] != NumFeatures)
            throw new ArgumentException($"{Describe()}: expected {NumFeatures} channels on axis {axis}, got input shape {ShapeUtil.Format(input.Dims)}.");
    }
}
