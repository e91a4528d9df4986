namespace NormSharp.Nn;

/// <summary>
/// Layer normalization (Ba, Kiros &amp; Hinton 2016), PyTorch's <c>nn.LayerNorm</c>: every row of the trailing
/// <see cref="NormalizedShape"/> elements is normalized by its own mean and biased variance, then scaled and shifted
/// element-wise by γ (ones) and β (zeros) of that shape. No running statistics: training and evaluation are the same.
/// </summary>
public sealed class LayerNorm : Module
{
    /// <summary>Creates the layer over the trailing axes <paramref name="normalizedShape"/> (e.g. [768] for a
    /// transformer's features); <paramref name="bias"/> false drops β.</summary>
    public LayerNorm(int[] normalizedShape, double eps = 1e-5, bool elementwiseAffine = true, bool bias = true)
    {
        NormalizedShape = NormalizationHelpers.CheckShape("LayerNorm", normalizedShape);
        Eps = eps;
        ElementwiseAffine = elementwiseAffine;
        if (elementwiseAffine) RegisterParameter("weight", NormalizationHelpers.Constant(NormalizedShape, 1)); else RegisterAbsentParameter("weight");
        if (elementwiseAffine && bias) RegisterParameter("bias", NormalizationHelpers.Constant(NormalizedShape, 0)); else RegisterAbsentParameter("bias");
    }

    /// <summary>Creates the layer over the last axis of size <paramref name="normalizedShape"/>.</summary>
    public LayerNorm(int normalizedShape, double eps = 1e-5, bool elementwiseAffine = true, bool bias = true)
        : this(new[] { normalizedShape }, eps, elementwiseAffine, bias)
    {
    }

    /// <summary>The trailing shape each row covers (a copy).</summary>
    public int[] NormalizedShape { get; }

    /// <summary>ε, added to the variance before the square root.</summary>
    public double Eps { get; }

    /// <summary>Whether the layer has learnable element-wise γ (and β unless created with bias: false).</summary>
    public bool ElementwiseAffine { get; }

    /// <summary>γ, of the normalized shape, or null.</summary>
    public Tensor? Weight => GetParameter("weight");

    /// <summary>β, of the normalized shape, or null.</summary>
    public Tensor? Bias => GetParameter("bias");

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Functional.RowNorm(Describe(), input, NormalizedShape, Weight, Bias, Eps, centered: true);

    /// <inheritdoc/>
    protected override string ExtraRepresentation =>
        $"{ShapeUtil.Format(NormalizedShape)}, eps={PythonRepr.Float(Eps)}, elementwise_affine={PythonRepr.Bool(ElementwiseAffine)}";

}
