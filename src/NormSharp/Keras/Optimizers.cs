using System.Globalization;
using NormSharp.Kernels;
using NormSharp.Optim;

namespace NormSharp.Keras.Optimizers;

/// <summary>
/// The base of Keras's optimizers (keras.optimizers.*) with Keras's defaults and update rules, as opposed to the
/// PyTorch rules of <see cref="NormSharp.Optim"/>. What they share is Keras's weight decay: when set, every step first
/// shrinks each parameter, p ← p − p·λ·lr, before the optimizer's own rule (decoupled, as in AdamW, for all of them).
/// They plug into everything that takes an <see cref="Optimizer"/>: <see cref="Training.Model.Compile(Optimizer, string, string[])"/>,
/// the learning-rate schedulers, checkpoints. State tensors carry Keras's names (<c>momentum</c>, <c>velocity</c>).
/// </summary>
public abstract class KerasOptimizer : Optimizer
{
    private protected KerasOptimizer(IEnumerable<Tensor> parameters, double learningRate, double? weightDecay, string[] stateNames, bool countsSteps)
        : base(new[] { new ParameterGroup(parameters ?? throw new ArgumentNullException(nameof(parameters))) }, learningRate, weightDecay ?? 0, stateNames, countsSteps)
    {
    }

    /// <summary>The factor 1 − λ·lr of Keras's weight decay p ← p − p·λ·lr, in double as Keras casts it once.</summary>
    private protected static double DecayFactor(ParameterGroup group) => 1 - group.WeightDecay * group.LearningRate;

    /// <summary>The optimizers <see cref="Create"/> knows, by Keras's string identifiers.</summary>
    public static IReadOnlyList<string> Names { get; } = new[] { "adam", "adamw", "sgd", "rmsprop" };

    /// <summary>The optimizer Keras builds for <c>model.compile(optimizer="adam")</c> and the other names in
    /// <see cref="Names"/>, with Keras's defaults, over <paramref name="parameters"/>.</summary>
    public static KerasOptimizer Create(string name, IEnumerable<Tensor> parameters) => name switch
    {
        "adam" => new Adam(parameters),
        "adamw" => new AdamW(parameters),
        "sgd" => new SGD(parameters),
        "rmsprop" => new RMSprop(parameters),
        _ => throw new ArgumentException($"Unknown Keras optimizer '{name}'; valid names: {string.Join(", ", Names)}.", nameof(name)),
    };
}

/// <summary>
/// keras.optimizers.Adam: m ← m + (g − m)(1 − β1), v ← v + (g² − v)(1 − β2), and
/// p ← p − lr_t·m/(√v + ε̂) with lr_t = lr·√(1 − β2ᵗ)/(1 − β1ᵗ). The ε̂ ("epsilon hat", Kingma &amp; Ba 2015, the formula
/// before §2.1) is added to √v before the bias correction, where torch.optim.Adam adds ε after it; at step 1 Keras's
/// 1e-7 acts like PyTorch's ε = 1e-7/√(1 − β2) ≈ 3.2e-6. Defaults are Keras's: lr 1e-3, β1 0.9, β2 0.999, ε̂ 1e-7,
/// no weight decay.
/// </summary>
public class Adam : KerasOptimizer
{
    /// <summary>Creates the optimizer; <paramref name="weightDecay"/> (null: none) is Keras's decoupled decay.</summary>
    public Adam(IEnumerable<Tensor> parameters, double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-7,
        bool amsGrad = false, double? weightDecay = null)
        : base(parameters, learningRate, weightDecay, amsGrad ? new[] { "momentum", "velocity", "velocity_hat" } : new[] { "momentum", "velocity" }, countsSteps: true)
    {
        Beta1 = CheckBelowOne(Name, "beta1", beta1);
        Beta2 = CheckBelowOne(Name, "beta2", beta2);
        Epsilon = CheckNonNegative(Name, "epsilon", epsilon);
        AmsGrad = amsGrad;
    }

    /// <summary>The decay rate β1 of the first moment (Keras's <c>beta_1</c>).</summary>
    public double Beta1 { get; }

    /// <summary>The decay rate β2 of the second moment (Keras's <c>beta_2</c>).</summary>
    public double Beta2 { get; }

    /// <summary>ε̂, added to √v before the bias correction.</summary>
    public double Epsilon { get; }

    /// <summary>Whether the running maximum of v is used (AMSGrad, Reddi et al. 2018).</summary>
    public bool AmsGrad { get; }

    private protected override void Update<T>(int index, ParameterGroup group, Tensor parameter, Tensor gradient)
    {
        Tensor momentum = State(index, 0) ?? CreateState(index, 0);
        Tensor velocity = State(index, 1) ?? CreateState(index, 1);
        Tensor? velocityHat = AmsGrad ? State(index, 2) ?? CreateState(index, 2) : null;
        double step = StepCount(index), lr = group.LearningRate;
        // Kingma & Ba's epsilon-hat form: the bias corrections fold into the step size, and the kernel's
        // √v/√(1 − β2ᵗ) becomes √v by passing 1 as that square root.
        var scalars = new AdamScalars<T>(
            StepSize: T.CreateChecked(lr * Math.Sqrt(1 - Math.Pow(Beta2, step)) / (1 - Math.Pow(Beta1, step))),
            BiasCorrection2Sqrt: T.One,
            Beta1Weight: T.CreateChecked(1 - Beta1),
            Beta2: T.CreateChecked(Beta2),
            Epsilon: T.CreateChecked(Epsilon),
            WeightDecay: T.CreateChecked(group.WeightDecay),
            DecoupledDecayFactor: T.CreateChecked(DecayFactor(group)),
            Decoupled: true,
            AmsGrad: AmsGrad);
        Apply<T, OptimizerKernels.AdamRule<T>>(new(scalars), parameter, gradient, momentum, velocity, velocityHat);
    }
}

/// <summary>keras.optimizers.AdamW: <see cref="Adam"/>'s rule after Keras's decoupled decay p ← p − p·λ·lr, with
/// Keras's default λ = 0.004 (torch.optim.AdamW: 0.01, and ε added after the bias correction).</summary>
public sealed class AdamW(IEnumerable<Tensor> parameters, double learningRate = 1e-3, double weightDecay = 0.004, double beta1 = 0.9, double beta2 = 0.999,
    double epsilon = 1e-7, bool amsGrad = false)
    : Adam(parameters, learningRate, beta1, beta2, epsilon, amsGrad, weightDecay);

/// <summary>
/// keras.optimizers.SGD: without momentum p ← p − lr·g; with momentum μ the velocity v ← μv − lr·g and p ← p + v
/// (Nesterov: p ← p + μv − lr·g). The learning rate enters the velocity, where torch.optim.SGD keeps b ← μb + g and
/// steps by lr·b: the same steps while lr is constant, different ones when a schedule changes it. Keras's defaults:
/// lr 0.01, no momentum.
/// </summary>
public sealed class SGD : KerasOptimizer
{
    /// <summary>Creates the optimizer; <paramref name="weightDecay"/> (null: none) is Keras's decoupled decay.</summary>
    public SGD(IEnumerable<Tensor> parameters, double learningRate = 0.01, double momentum = 0, bool nesterov = false, double? weightDecay = null)
        : base(parameters, learningRate, weightDecay, momentum > 0 ? new[] { "momentum" } : Array.Empty<string>(), countsSteps: false)
    {
        if (!(momentum >= 0 && momentum <= 1))
            throw new ArgumentException($"{Name}: momentum must be in [0, 1], got {momentum.ToString(CultureInfo.InvariantCulture)}.", nameof(momentum));
        Momentum = momentum;
        Nesterov = nesterov;
    }

    /// <summary>The momentum μ (0: plain gradient descent).</summary>
    public double Momentum { get; }

    /// <summary>Whether Nesterov momentum is used.</summary>
    public bool Nesterov { get; }

    private protected override void Update<T>(int index, ParameterGroup group, Tensor parameter, Tensor gradient)
    {
        var rule = new OptimizerKernels.KerasSgdRule<T>(new KerasSgdScalars<T>(T.CreateChecked(group.LearningRate), T.CreateChecked(Momentum),
            T.CreateChecked(DecayFactor(group)), Nesterov));
        Tensor? velocity = Momentum > 0 ? State(index, 0) ?? CreateState(index, 0) : null;
        Apply<T, OptimizerKernels.KerasSgdRule<T>>(rule, parameter, gradient, velocity);
    }
}

/// <summary>
/// keras.optimizers.RMSprop (Hinton's lecture 6e): velocity ← ρ·velocity + (1 − ρ)·g², increment = lr·g/√(velocity + ε)
/// (centred: √(velocity − ḡ² + ε) with ḡ ← ρ·ḡ + (1 − ρ)·g); with momentum μ, m ← μm + increment and p ← p − m, else
/// p ← p − increment. ε sits inside the square root (torch.optim.RMSprop adds it outside). Keras's defaults: lr 1e-3,
/// ρ 0.9, no momentum, ε 1e-7, not centred.
/// </summary>
public sealed class RMSprop : KerasOptimizer
{
    /// <summary>Creates the optimizer; <paramref name="weightDecay"/> (null: none) is Keras's decoupled decay.</summary>
    public RMSprop(IEnumerable<Tensor> parameters, double learningRate = 1e-3, double rho = 0.9, double momentum = 0, double epsilon = 1e-7,
        bool centered = false, double? weightDecay = null)
        : base(parameters, learningRate, weightDecay, StateNames(momentum, centered), countsSteps: false)
    {
        Rho = CheckBelowOne(Name, "rho", rho);
        Momentum = CheckBelowOne(Name, "momentum", momentum);
        Epsilon = CheckNonNegative(Name, "epsilon", epsilon);
        Centered = centered;
    }

    /// <summary>The decay ρ of the mean square.</summary>
    public double Rho { get; }

    /// <summary>The momentum μ (0: none).</summary>
    public double Momentum { get; }

    /// <summary>ε, added to the mean square inside the square root.</summary>
    public double Epsilon { get; }

    /// <summary>Whether the gradient's running mean is subtracted (normalizing by an estimate of its variance).</summary>
    public bool Centered { get; }

    private static string[] StateNames(double momentum, bool centered) =>
        new[] { "velocity" }.Concat(momentum > 0 ? new[] { "momentum" } : Array.Empty<string>()).Concat(centered ? new[] { "average_gradient" } : Array.Empty<string>()).ToArray();

    private protected override void Update<T>(int index, ParameterGroup group, Tensor parameter, Tensor gradient)
    {
        var rule = new OptimizerKernels.RmsPropRule<T>(new RmsPropScalars<T>(T.CreateChecked(group.LearningRate), T.CreateChecked(Rho),
            T.CreateChecked(Momentum), T.CreateChecked(Epsilon), T.CreateChecked(DecayFactor(group)), Centered));
        // State slots follow StateNames: velocity, then momentum if used, then the average gradient if centred.
        int averageSlot = Momentum > 0 ? 2 : 1;
        Tensor velocity = State(index, 0) ?? CreateState(index, 0);
        Tensor? momentum = Momentum > 0 ? State(index, 1) ?? CreateState(index, 1) : null;
        Tensor? average = Centered ? State(index, averageSlot) ?? CreateState(index, averageSlot) : null;
        Apply<T, OptimizerKernels.RmsPropRule<T>>(rule, parameter, gradient, velocity, momentum, average);
    }
}
