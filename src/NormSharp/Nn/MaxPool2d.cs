namespace NormSharp.Nn;

/// <summary>
/// 2-D max pooling (PyTorch's <c>nn.MaxPool2d</c>) on (N, C, H, W) or unbatched (C, H, W): each output is the largest
/// value in its window; the gradient flows to that value only (the first one on ties). The stride defaults to the
/// kernel size; with <c>ceilMode</c> a partial window at the bottom/right edge gives one more output.
/// </summary>
public sealed class MaxPool2d : Pool2dBase
{
    /// <summary>Creates the layer; an int size n means (n, n).</summary>
    public MaxPool2d(Size2 kernelSize, Size2? stride = null, Size2 padding = default, Size2? dilation = null, bool ceilMode = false)
        : base(kernelSize, stride, padding, ceilMode)
    {
        Dilation = dilation ?? 1;
        Functional.CheckPoolingArguments(Describe(), KernelSize, Stride, Padding, Dilation);
    }

    /// <summary>Spacing between window taps.</summary>
    public Size2 Dilation { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Functional.MaxPool2d(input, KernelSize, Stride, Padding, Dilation, CeilMode);

    /// <summary>The output for <see cref="ReLU"/>(<paramref name="input"/>) in one pass, when no gradient is recorded
    /// (<see cref="Sequential"/> runs a ReLU followed by this layer so).</summary>
    internal Tensor ForwardAfterRelu(Tensor input) => Functional.MaxPool2dOfRelu(input, KernelSize, Stride, Padding, Dilation, CeilMode);

    /// <inheritdoc/>
    protected override string ExtraRepresentation => Functional.DescribeMaxPool2d(KernelSize, Stride, Padding, Dilation, CeilMode);
}
