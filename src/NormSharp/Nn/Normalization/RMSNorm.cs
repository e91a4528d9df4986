namespace NormSharp.Nn;

/// <summary>
/// Root-mean-square normalization (Zhang &amp; Sennrich 2019), PyTorch's <c>nn.RMSNorm</c>:
/// y = x / √(mean(x²) + ε) · γ over the trailing <see cref="NormalizedShape"/> elements of each row. Unlike LayerNorm
/// it subtracts no mean and has no β. A null <see cref="Eps"/> uses the machine epsilon of the input's type
/// (1.19e-7 for float32), as PyTorch does.
/// </summary>
public sealed class RMSNorm : Module
{
    /// <summary>Creates the layer over the trailing axes <paramref name="normalizedShape"/>.</summary>
    public RMSNorm(int[] normalizedShape, double? eps = null, bool elementwiseAffine = true)
    {
        NormalizedShape = NormalizationHelpers.CheckShape("RMSNorm", normalizedShape);
        Eps = eps;
        ElementwiseAffine = elementwiseAffine;
        if (elementwiseAffine) RegisterParameter("weight", NormalizationHelpers.Constant(NormalizedShape, 1)); else RegisterAbsentParameter("weight");
    }

    /// <summary>Creates the layer over the last axis of size <paramref name="normalizedShape"/>.</summary>
    public RMSNorm(int normalizedShape, double? eps = null, bool elementwiseAffine = true)
        : this(new[] { normalizedShape }, eps, elementwiseAffine)
    {
    }

    /// <summary>The trailing shape each row covers (a copy).</summary>
    public int[] NormalizedShape { get; }

    /// <summary>ε added to the mean square, or null for the machine epsilon of the input's type.</summary>
    public double? Eps { get; }

    /// <summary>Whether the layer has a learnable element-wise γ.</summary>
    public bool ElementwiseAffine { get; }

    /// <summary>γ, of the normalized shape, or null.</summary>
    public Tensor? Weight => GetParameter("weight");

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return Functional.RowNorm(Describe(), input, NormalizedShape, Weight, null, Eps ?? Functional.MachineEpsilon(input.DType), centered: false);
    }

    /// <inheritdoc/>
    protected override string ExtraRepresentation =>
        $"{ShapeUtil.Format(NormalizedShape)}, eps={PythonRepr.Float(Eps)}, elementwise_affine={PythonRepr.Bool(ElementwiseAffine)}";
}
