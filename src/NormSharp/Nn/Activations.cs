using System.Globalization;

namespace NormSharp.Nn;

/// <summary>max(x, 0), element-wise (PyTorch's <c>nn.ReLU</c>); any input shape.</summary>
public sealed class ReLU : Module
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Functional.Relu(input);
}

/// <summary>x for x &gt; 0, else negativeSlope·x, element-wise (PyTorch's <c>nn.LeakyReLU</c>, default slope 0.01).</summary>
public sealed class LeakyReLU : Module
{
    /// <summary>Creates the layer.</summary>
    public LeakyReLU(double negativeSlope = 0.01)
    {
        Functional.CheckNegativeSlope(negativeSlope);
        NegativeSlope = negativeSlope;
    }

    /// <summary>The slope applied to negative inputs.</summary>
    public double NegativeSlope { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Functional.LeakyRelu(input, NegativeSlope);

    /// <inheritdoc/>
    protected override string ExtraRepresentation => "negative_slope=" + NegativeSlope.ToString(CultureInfo.InvariantCulture);
}

/// <summary>The logistic function 1 / (1 + e^−x), element-wise (PyTorch's <c>nn.Sigmoid</c>).</summary>
public sealed class Sigmoid : Module
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Functional.Sigmoid(input);
}

/// <summary>The hyperbolic tangent, element-wise (PyTorch's <c>nn.Tanh</c>).</summary>
public sealed class Tanh : Module
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Functional.Tanh(input);
}

/// <summary>The softmax family: layers that normalize exponentials over one axis (negative axes count from the end).
/// The axis defaults to the last, where PyTorch's deprecated implicit choice depends on the rank; pass 1 for the class
/// axis of (N, C, H, W) maps.</summary>
public abstract class SoftmaxBase : Module
{
    private protected SoftmaxBase(int axis) => Axis = axis;

    /// <summary>The axis normalized over.</summary>
    public int Axis { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        int rank = Math.Max(input.Rank, 1);
        if (Axis < -rank || Axis >= rank)
            throw new ArgumentException($"{Describe()}: axis {Axis} is out of range for an input of shape {ShapeUtil.Format(input.Dims)}.");
        return Apply(input);
    }

    private protected abstract Tensor Apply(Tensor input);

    /// <inheritdoc/>
    protected override string ExtraRepresentation => "dim=" + Axis.ToString(CultureInfo.InvariantCulture);
}

/// <summary>Softmax e^x / Σ e^x along one axis (PyTorch's <c>nn.Softmax</c>), computed with the maximum subtracted.</summary>
public sealed class Softmax : SoftmaxBase
{
    /// <summary>Creates the layer normalizing over <paramref name="axis"/>.</summary>
    public Softmax(int axis = -1) : base(axis) { }

    private protected override Tensor Apply(Tensor input) => Functional.Softmax(input, Axis);
}

/// <summary>Log-softmax along one axis (PyTorch's <c>nn.LogSoftmax</c>); pair it with <see cref="NLLLoss"/>, or use
/// <see cref="CrossEntropyLoss"/> on the logits, which fuses both.</summary>
public sealed class LogSoftmax : SoftmaxBase
{
    /// <summary>Creates the layer normalizing over <paramref name="axis"/>.</summary>
    public LogSoftmax(int axis = -1) : base(axis) { }

    private protected override Tensor Apply(Tensor input) => Functional.LogSoftmax(input, Axis);
}
