namespace NormSharp.Nn;

/// <summary>
/// Keras's <c>BatchNormalization</c> layer with Keras's conventions, running on the same kernels as
/// <see cref="BatchNorm"/>. Its <c>momentum</c> (default 0.99) is the decay of the moving averages,
/// moving ← momentum·moving + (1 − momentum)·batch, which is PyTorch's momentum 1 − 0.99 = 0.01 (the inherited
/// <see cref="NormBase.Momentum"/> holds that PyTorch value); <c>epsilon</c> defaults to 1e-3; <c>center</c> and
/// <c>scale</c> switch β and γ separately; <c>axis</c> is the channel axis (1 for NCHW images, −1 for (N, features)
/// or channels-last data). As in Keras 3, the moving variance follows the biased batch variance, where PyTorch uses
/// the unbiased one. Keras's <c>trainable = False</c> corresponds to <see cref="BatchNorm.Freeze"/>.
/// As in tf.keras 2, <c>renorm</c> turns on Batch Renormalization (Ioffe 2017) with <c>renormClipping</c>'s limits
/// (null: unclipped r and d, tf.keras's default; <see cref="BatchRenormClipping"/> has the paper's schedule; the moving
/// averages double as the renormalization statistics, where tf.keras keeps a second pair with its own momentum), and
/// <c>virtualBatchSize</c> turns on Ghost Batch Normalization (Hoffer et al. 2017). With <c>synchronized</c> (Keras's
/// <c>synchronized=True</c>) data-parallel training (NormSharp.Distributed) replaces the layer by a SyncBatchNorm with
/// the same conventions, which normalizes with the statistics of the whole batch across processes; in a single process
/// the flag changes nothing.
/// </summary>
public sealed class KerasBatchNormalization : BatchNorm
{
    /// <summary>Creates the layer for <paramref name="features"/> channels on axis <paramref name="axis"/>.</summary>
    public KerasBatchNormalization(int features, int axis = 1, double momentum = 0.99, double epsilon = 1e-3, bool center = true, bool scale = true,
        bool renorm = false, BatchRenormClipping? renormClipping = null, int? virtualBatchSize = null, bool synchronized = false)
        : base(features, epsilon, CheckedDecay(momentum), scale, center, trackRunningStats: true,
            renorm ? renormClipping ?? BatchRenormClipping.Unclipped : null, virtualBatchSize)
    {
        Axis = axis;
        Synchronized = synchronized;
    }

    /// <summary>Keras's <c>synchronized</c>: whether data-parallel training takes this layer's batch statistics over
    /// all processes (see the class summary).</summary>
    public bool Synchronized { get; }

    /// <summary>The channel axis as given (negative counts from the end).</summary>
    public int Axis { get; }

    /// <summary>Keras's momentum: the decay of the moving averages, 1 − <see cref="NormBase.Momentum"/>.</summary>
    public double KerasMomentum => 1 - Momentum.GetValueOrDefault();

    /// <summary>Keras's γ (<see cref="NormBase.Weight"/>), or null when created with scale: false.</summary>
    public Tensor? Gamma => Weight;

    /// <summary>Keras's β (<see cref="NormBase.Bias"/>), or null when created with center: false.</summary>
    public Tensor? Beta => Bias;

    /// <summary>Keras's moving_mean (<see cref="NormBase.RunningMean"/>).</summary>
    public Tensor MovingMean => RunningMean!;

    /// <summary>Keras's moving_variance (<see cref="NormBase.RunningVar"/>): the decayed average of biased batch
    /// variances.</summary>
    public Tensor MovingVariance => RunningVar!;

    /// <inheritdoc/>
    protected override void CheckInput(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank < 2 || Axis >= input.Rank || Axis < -input.Rank || ChannelAxis(input) == 0)
            throw new ArgumentException($"{Describe()}: expected an input with a batch axis first and the channel axis {Axis}, got shape {ShapeUtil.Format(input.Dims)}.");
    }

    internal override int ChannelAxis(Tensor input) => Axis < 0 ? Axis + input.Rank : Axis;

    internal override bool UnbiasedRunningVariance => false;

    /// <inheritdoc/>
    protected override string ExtraRepresentation =>
        $"{NumFeatures}, axis={Axis}, momentum={PythonRepr.Float(KerasMomentum)}, epsilon={PythonRepr.Float(Eps)}, center={PythonRepr.Bool(Bias is not null)}, scale={PythonRepr.Bool(Weight is not null)}";

    private static double CheckedDecay(double momentum) => momentum is >= 0 and <= 1 ? 1 - momentum
        : throw new ArgumentOutOfRangeException(nameof(momentum), $"KerasBatchNormalization: momentum (the decay) must lie in [0, 1], got {momentum}.");
}
