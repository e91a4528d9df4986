using NormSharp.Kernels;

namespace NormSharp.Nn;

/// <summary>
/// An inference-only layer built by <see cref="InferenceFusion"/> from a run of layers: a convolution or fully
/// connected layer with evaluation-mode BatchNorms folded into its weight and bias, and optionally a ReLU applied in
/// place to its output (the epilogue). Its weight and bias are buffers, not trainable parameters, and its forward pass
/// records no gradient.
/// </summary>
public abstract class FusedLayer : Module
{
    private readonly bool _hasBias;

    private protected FusedLayer(Tensor weight, Tensor? bias, bool appliesRelu, bool foldsBatchNorm, string fusedFrom)
    {
        RegisterBuffer("weight", weight);
        if (bias is not null) RegisterBuffer("bias", bias);
        _hasBias = bias is not null;
        AppliesRelu = appliesRelu;
        FoldsBatchNorm = foldsBatchNorm;
        FusedFrom = fusedFrom;
    }

    /// <summary>The weight, with any folded BatchNorm's scale already applied.</summary>
    public Tensor Weight => GetBuffer("weight")!;

    /// <summary>The bias, with any folded BatchNorm's shift already applied, or null.</summary>
    public Tensor? Bias => _hasBias ? GetBuffer("bias") : null;

    /// <summary>Whether max(y, 0) is applied in place to the output.</summary>
    public bool AppliesRelu { get; }

    /// <summary>Whether a BatchNorm was folded in; its channel axis is axis 1, so the input must then be batched.</summary>
    public bool FoldsBatchNorm { get; }

    /// <summary>The layers this one replaces, e.g. <c>Conv2d → BatchNorm2d → ReLU</c>.</summary>
    public string FusedFrom { get; }

    /// <summary>The input's rank in the batched layout the folded BatchNorm normalized: 4 for (N, C, H, W), 2 for (N, C).</summary>
    private protected abstract int BatchedRank { get; }

    /// <summary>The layer's own computation, before the epilogue.</summary>
    private protected abstract Tensor Compute(Tensor input);

    /// <summary>Computes the fused layers' output without recording gradients.</summary>
    public sealed override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (FoldsBatchNorm && input.Rank != BatchedRank)
            throw new ArgumentException($"{Describe()}: the folded BatchNorm normalized axis 1 of a batched {BatchedRank}-D input, got shape {ShapeUtil.Format(input.Dims)}; use the unfused network for other layouts.");
        using (Tensor.NoGrad())
        {
            Tensor y = Compute(input);
            // The ReLU epilogue: one in-place pass over the fresh output instead of a ReLU layer writing a second tensor.
            if (AppliesRelu)
            {
                if (y.DType == DType.Float32) Epilogues.ReluInPlace(y.AsArraySegment<float>());
                else Epilogues.ReluInPlace(y.AsArraySegment<double>());
            }
            return y;
        }
    }

    /// <summary>The epilogue and the original layers, appended to the layer's own arguments.</summary>
    private protected string FusionRepresentation => $", relu={PythonRepr.Bool(AppliesRelu)}, fused_from='{FusedFrom}'";
}

/// <summary>A <see cref="Conv2d"/> with folded BatchNorm and an optional ReLU epilogue; see <see cref="FusedLayer"/>.</summary>
public sealed class FusedConv2d : FusedLayer
{
    internal FusedConv2d(Tensor weight, Tensor? bias, Size2 stride, ConvPadding padding, Size2 dilation, bool appliesRelu, bool foldsBatchNorm, string fusedFrom)
        : base(weight, bias, appliesRelu, foldsBatchNorm, fusedFrom)
    {
        Stride = stride;
        Padding = padding;
        Dilation = dilation;
    }

    /// <summary>Step between windows (rows, columns).</summary>
    public Size2 Stride { get; }

    /// <summary>The padding, as in the original convolution.</summary>
    public ConvPadding Padding { get; }

    /// <summary>Spacing between kernel taps (rows, columns).</summary>
    public Size2 Dilation { get; }

    private protected override int BatchedRank => 4;

    // FusedLayer.Forward applies the ReLU epilogue right after this call; a convolution kernel that takes an
    // epilogue could apply it inside its GEMM instead, while each output tile is still in cache.
    private protected override Tensor Compute(Tensor input) => Functional.Conv2d(input, Weight, Bias, Stride, Padding, Dilation);

    /// <inheritdoc/>
    protected override string ExtraRepresentation =>
        Functional.DescribeConvolution(Weight.Dims[1], Weight.Dims[0], new Size2(Weight.Dims[2], Weight.Dims[3]), Stride, Padding, Dilation, default, Bias is not null) + FusionRepresentation;
}

/// <summary>A <see cref="Linear"/> with folded BatchNorms (before and/or after it) and an optional ReLU epilogue; see
/// <see cref="FusedLayer"/>.</summary>
public sealed class FusedLinear : FusedLayer
{
    internal FusedLinear(Tensor weight, Tensor? bias, bool appliesRelu, bool foldsBatchNorm, string fusedFrom)
        : base(weight, bias, appliesRelu, foldsBatchNorm, fusedFrom)
    {
    }

    private protected override int BatchedRank => 2;

    private protected override Tensor Compute(Tensor input) => Functional.Linear(input, Weight, Bias);

    /// <inheritdoc/>
    protected override string ExtraRepresentation =>
        $"in_features={Weight.Dims[1]}, out_features={Weight.Dims[0]}, bias={PythonRepr.Bool(Bias is not null)}" + FusionRepresentation;
}
