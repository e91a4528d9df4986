namespace NormSharp.Nn;

/// <summary>
/// A 2-D convolution layer (PyTorch's <c>nn.Conv2d</c>): input (N, Cin, H, W) or unbatched (Cin, H, W) → output
/// (N, Cout, Hout, Wout) with Hout = ⌊(H + padding − dilation·(kh − 1) − 1)/stride⌋ + 1. Weight (Cout, Cin, kh, kw).
/// <c>padding: "same"</c> keeps H and W (stride 1 only); see <see cref="Functional.Conv2d"/>.
/// </summary>
/// <example><c>new Conv2d(1, 32, 3, padding: "same")</c></example>
public sealed class Conv2d : ConvolutionBase
{
    /// <summary>Creates the layer; an int kernel size, stride or dilation n means (n, n).</summary>
    public Conv2d(int inChannels, int outChannels, Size2 kernelSize, Size2? stride = null, ConvPadding padding = default, Size2? dilation = null, bool bias = true, RandomGenerator? generator = null)
        : base(inChannels, outChannels, kernelSize, stride ?? 1, dilation ?? 1, bias)
    {
        Padding = padding;
        Functional.CheckConvolutionArguments(Describe(), KernelSize, Stride, Padding, Dilation, outputPadding: default, transposed: false);
        CreateParameters(new[] { outChannels, inChannels, kernelSize.Height, kernelSize.Width }, generator);
    }

    /// <summary>The padding: explicit (rows, columns) on each side, or "same" / "valid".</summary>
    public ConvPadding Padding { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Functional.Conv2d(input, Weight, Bias, Stride, Padding, Dilation);

    /// <inheritdoc/>
    protected override string ExtraRepresentation => Functional.DescribeConvolution(InChannels, OutChannels, KernelSize, Stride, Padding, Dilation, default, HasBias);
}
