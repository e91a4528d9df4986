using System.Numerics;
using NormSharp.Kernels;

namespace NormSharp.Optim;

/// <summary>
/// Stochastic gradient descent with optional momentum, exactly as <c>torch.optim.SGD</c>: with weight decay λ,
/// d = g + λp; with momentum μ the buffer b starts as the first d and then follows b = μb + (1 − dampening)·d, and the
/// step uses b, or d + μb with Nesterov momentum; p = p − lr·d. (This is PyTorch's convention, where lr multiplies
/// the buffer, not the Sutskever et al. one where it enters the buffer.)
/// </summary>
public sealed class SGD : Optimizer
{
    /// <summary>Creates the optimizer over one group of parameters.</summary>
    public SGD(IEnumerable<Tensor> parameters, double learningRate, double momentum = 0, double dampening = 0, double weightDecay = 0, bool nesterov = false)
        : this(new[] { new ParameterGroup(parameters ?? throw new ArgumentNullException(nameof(parameters))) }, learningRate, momentum, dampening, weightDecay, nesterov)
    {
    }

    /// <summary>Creates the optimizer over parameter groups; a group's own learning rate or weight decay overrides these.</summary>
    public SGD(IEnumerable<ParameterGroup> groups, double learningRate, double momentum = 0, double dampening = 0, double weightDecay = 0, bool nesterov = false)
        : base(groups, learningRate, weightDecay, momentum != 0 ? new[] { "momentum_buffer" } : Array.Empty<string>(), countsSteps: false)
    {
        Momentum = CheckNonNegative(Name, "momentum", momentum);
        Dampening = CheckNonNegative(Name, "dampening", dampening);
        if (nesterov && (momentum <= 0 || dampening != 0))
            throw new ArgumentException($"{Name}: Nesterov momentum requires a positive momentum and zero dampening, got momentum={momentum}, dampening={dampening}.");
        Nesterov = nesterov;
    }

    /// <summary>The momentum factor μ (0: plain SGD).</summary>
    public double Momentum { get; }

    /// <summary>The dampening τ of the gradient's contribution to the momentum buffer.</summary>
    public double Dampening { get; }

    /// <summary>Whether Nesterov momentum is used.</summary>
    public bool Nesterov { get; }

    private protected override void Update<T>(int index, ParameterGroup group, Tensor parameter, Tensor gradient)
    {
        var scalars = new SgdScalars<T>(T.CreateChecked(group.LearningRate), T.CreateChecked(Momentum), T.CreateChecked(Dampening), T.CreateChecked(group.WeightDecay), Nesterov);
        if (Momentum == 0)
        {
            Apply<T, OptimizerKernels.SgdRule<T>>(new(scalars, firstStep: false), parameter, gradient);
            return;
        }
        Tensor? buffer = State(index, 0);
        bool first = buffer is null;
        buffer ??= CreateState(index, 0);
        Apply<T, OptimizerKernels.SgdRule<T>>(new(scalars, first), parameter, gradient, buffer);
    }
}
