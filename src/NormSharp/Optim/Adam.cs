using System.Numerics;
using NormSharp.Kernels;

namespace NormSharp.Optim;

/// <summary>
/// Adam (Kingma &amp; Ba 2015) exactly as <c>torch.optim.Adam</c>: first and second moment estimates m and v with
/// bias correction, and the update p = p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + ε), so ε is added after the
/// bias-corrected square root. Weight decay λ is an L2 penalty added to the gradient (see <see cref="AdamW"/> for the
/// decoupled form); <c>amsgrad</c> uses the running maximum of v (Reddi et al. 2018).
/// </summary>
public class Adam : Optimizer
{
    private readonly bool _decoupled;

    /// <summary>Creates the optimizer over one group of parameters.</summary>
    public Adam(IEnumerable<Tensor> parameters, double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8, double weightDecay = 0, bool amsGrad = false)
        : this(OneGroup(parameters), learningRate, beta1, beta2, epsilon, weightDecay, amsGrad, decoupled: false)
    {
    }

    /// <summary>Creates the optimizer over parameter groups; a group's own learning rate or weight decay overrides these.</summary>
    public Adam(IEnumerable<ParameterGroup> groups, double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8, double weightDecay = 0, bool amsGrad = false)
        : this(groups, learningRate, beta1, beta2, epsilon, weightDecay, amsGrad, decoupled: false)
    {
    }

    private protected Adam(IEnumerable<ParameterGroup> groups, double learningRate, double beta1, double beta2, double epsilon, double weightDecay, bool amsGrad, bool decoupled)
        : base(groups, learningRate, weightDecay, amsGrad ? new[] { "exp_avg", "exp_avg_sq", "max_exp_avg_sq" } : new[] { "exp_avg", "exp_avg_sq" }, countsSteps: true)
    {
        Beta1 = CheckBelowOne(Name, "beta1", beta1);
        Beta2 = CheckBelowOne(Name, "beta2", beta2);
        Epsilon = CheckNonNegative(Name, "epsilon", epsilon);
        AmsGrad = amsGrad;
        _decoupled = decoupled;
    }

    private protected static IEnumerable<ParameterGroup> OneGroup(IEnumerable<Tensor> parameters) =>
        new[] { new ParameterGroup(parameters ?? throw new ArgumentNullException(nameof(parameters))) };

    /// <summary>The decay rate β1 of the first-moment estimate.</summary>
    public double Beta1 { get; }

    /// <summary>The decay rate β2 of the second-moment estimate.</summary>
    public double Beta2 { get; }

    /// <summary>The ε added to the denominator for numerical stability.</summary>
    public double Epsilon { get; }

    /// <summary>Whether the AMSGrad variant is used.</summary>
    public bool AmsGrad { get; }

    private protected override void Update<T>(int index, ParameterGroup group, Tensor parameter, Tensor gradient)
    {
        Tensor expAvg = State(index, 0) ?? CreateState(index, 0);
        Tensor expAvgSq = State(index, 1) ?? CreateState(index, 1);
        Tensor? maxExpAvgSq = AmsGrad ? State(index, 2) ?? CreateState(index, 2) : null;
        // Scalars in double, as PyTorch computes them in Python before the tensor kernel.
        double step = StepCount(index), lr = group.LearningRate;
        double biasCorrection1 = 1 - Math.Pow(Beta1, step), biasCorrection2 = 1 - Math.Pow(Beta2, step);
        var scalars = new AdamScalars<T>(
            StepSize: T.CreateChecked(lr / biasCorrection1),
            BiasCorrection2Sqrt: T.CreateChecked(Math.Sqrt(biasCorrection2)),
            Beta1Weight: T.CreateChecked(1 - Beta1),
            Beta2: T.CreateChecked(Beta2),
            Epsilon: T.CreateChecked(Epsilon),
            WeightDecay: T.CreateChecked(group.WeightDecay),
            DecoupledDecayFactor: T.CreateChecked(1 - lr * group.WeightDecay),
            Decoupled: _decoupled,
            AmsGrad: AmsGrad);
        Apply<T, OptimizerKernels.AdamRule<T>>(new(scalars), parameter, gradient, expAvg, expAvgSq, maxExpAvgSq);
    }
}

/// <summary>
/// Adam with decoupled weight decay (Loshchilov &amp; Hutter 2019), exactly as <c>torch.optim.AdamW</c>: each step first
/// shrinks the parameters, p = p·(1 − lr·λ), then applies the Adam update of the raw gradient, so the decay is not
/// rescaled by the adaptive denominator. PyTorch's default λ is 0.01.
/// </summary>
public sealed class AdamW : Adam
{
    /// <summary>Creates the optimizer over one group of parameters.</summary>
    public AdamW(IEnumerable<Tensor> parameters, double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8, double weightDecay = 1e-2, bool amsGrad = false)
        : base(OneGroup(parameters), learningRate, beta1, beta2, epsilon, weightDecay, amsGrad, decoupled: true)
    {
    }

    /// <summary>Creates the optimizer over parameter groups; a group's own learning rate or weight decay overrides these.</summary>
    public AdamW(IEnumerable<ParameterGroup> groups, double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8, double weightDecay = 1e-2, bool amsGrad = false)
        : base(groups, learningRate, beta1, beta2, epsilon, weightDecay, amsGrad, decoupled: true)
    {
    }
}
