namespace NormSharp.Nn;

/// <summary>A fully connected layer, y = x·Wᵀ + b (PyTorch's <c>nn.Linear</c>); input (*, in) → output (*, out).
/// Initialized as PyTorch does: W and b uniform in ±1/√in.</summary>
public sealed class Linear : Module
{
    /// <summary>Creates the layer.</summary>
    public Linear(int inFeatures, int outFeatures, bool bias = true, RandomGenerator? generator = null)
    {
        if (inFeatures <= 0 || outFeatures <= 0)
            throw new ArgumentOutOfRangeException(nameof(inFeatures), $"Linear: inFeatures and outFeatures must be positive, got {inFeatures} and {outFeatures}.");
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Tensor w = Tensor.Allocate(DType.Float32, new[] { outFeatures, inFeatures }, scoped: false);
        Tensor? b = bias ? Tensor.Allocate(DType.Float32, new[] { outFeatures }, scoped: false) : null;
        Init.PyTorchDefault(w, b, generator);
        RegisterParameter("weight", w);
        if (b is null) RegisterAbsentParameter("bias"); else RegisterParameter("bias", b);
    }

    /// <summary>Input features.</summary>
    public int InFeatures { get; }

    /// <summary>Output features.</summary>
    public int OutFeatures { get; }

    /// <summary>The weight, shape (out, in).</summary>
    public Tensor Weight => GetParameter("weight")!;

    /// <summary>The bias, shape (out), or null.</summary>
    public Tensor? Bias => GetParameter("bias");

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Functional.Linear(input, Weight, Bias);

    /// <inheritdoc/>
    protected override string ExtraRepresentation => $"in_features={InFeatures}, out_features={OutFeatures}, bias={(Bias is not null).ToString().ToLowerInvariant()}";
}
