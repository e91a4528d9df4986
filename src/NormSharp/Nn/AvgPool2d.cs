namespace NormSharp.Nn;

/// <summary>
/// 2-D average pooling (PyTorch's <c>nn.AvgPool2d</c>) on (N, C, H, W) or unbatched (C, H, W): each output is the mean
/// of its window. With <c>countIncludePad</c> (the default, as in PyTorch) the zero padding counts in the divisor;
/// otherwise windows at the border divide by the number of input positions they cover.
/// </summary>
public sealed class AvgPool2d : Pool2dBase
{
    /// <summary>Creates the layer; an int size n means (n, n); the stride defaults to the kernel size.</summary>
    public AvgPool2d(Size2 kernelSize, Size2? stride = null, Size2 padding = default, bool ceilMode = false, bool countIncludePad = true)
        : base(kernelSize, stride, padding, ceilMode)
    {
        CountIncludePad = countIncludePad;
        Functional.CheckPoolingArguments(Describe(), KernelSize, Stride, Padding, dilation: 1);
    }

    /// <summary>Whether padded positions count in the divisor.</summary>
    public bool CountIncludePad { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Functional.AvgPool2d(input, KernelSize, Stride, Padding, CeilMode, CountIncludePad);

    /// <inheritdoc/>
    protected override string ExtraRepresentation => Functional.DescribeAvgPool2d(KernelSize, Stride, Padding, CeilMode, CountIncludePad);
}
