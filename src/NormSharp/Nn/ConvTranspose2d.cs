namespace NormSharp.Nn;

/// <summary>
/// A 2-D transposed convolution layer (PyTorch's <c>nn.ConvTranspose2d</c>), the input-gradient of a Conv2d used as
/// a layer, e.g. to upsample: input (N, Cin, H, W) or unbatched → output (N, Cout, Hout, Wout) with
/// Hout = (H − 1)·stride − 2·padding + dilation·(kh − 1) + outputPadding + 1. Weight (Cin, Cout, kh, kw), as in PyTorch.
/// </summary>
public sealed class ConvTranspose2d : ConvolutionBase
{
    /// <summary>Creates the layer; an int kernel size, stride, padding or dilation n means (n, n).
    /// <paramref name="outputPadding"/> adds rows/columns on the bottom/right and must be smaller than the stride or
    /// the dilation.</summary>
    public ConvTranspose2d(int inChannels, int outChannels, Size2 kernelSize, Size2? stride = null, Size2 padding = default, Size2 outputPadding = default, Size2? dilation = null, bool bias = true, RandomGenerator? generator = null)
        : base(inChannels, outChannels, kernelSize, stride ?? 1, dilation ?? 1, bias)
    {
        Padding = padding;
        OutputPadding = outputPadding;
        Functional.CheckConvolutionArguments(Describe(), KernelSize, Stride, Padding, Dilation, OutputPadding, transposed: true);
        CreateParameters(new[] { inChannels, outChannels, kernelSize.Height, kernelSize.Width }, generator);
    }

    /// <summary>Rows and columns that the corresponding Conv2d would pad; removed from each side of the output.</summary>
    public Size2 Padding { get; }

    /// <summary>Extra rows and columns added to the bottom and right of the output.</summary>
    public Size2 OutputPadding { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Functional.ConvTranspose2d(input, Weight, Bias, Stride, Padding, OutputPadding, Dilation);

    /// <inheritdoc/>
    protected override string ExtraRepresentation => Functional.DescribeConvolution(InChannels, OutChannels, KernelSize, Stride, Padding, Dilation, OutputPadding, HasBias);
}
