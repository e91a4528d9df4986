using NormSharp.Autograd;
using NormSharp.Kernels;

namespace NormSharp.Nn;

public static partial class Functional
{
    /// <summary>
    /// 2-D max pooling, PyTorch's <c>F.max_pool2d</c>: each output is the maximum of its window on input (N, C, H, W) or
    /// unbatched (C, H, W); padding is −∞ (never chosen). The stride defaults to the kernel size. The gradient goes to
    /// the window's maximum, the first one in row-major order on ties, as in PyTorch.
    /// </summary>
    public static Tensor MaxPool2d(Tensor input, Size2 kernelSize, Size2? stride = null, Size2 padding = default, Size2? dilation = null, bool ceilMode = false)
    {
        Size2 strides = stride ?? kernelSize, dilations = dilation ?? 1;
        string who = $"MaxPool2d({DescribeMaxPool2d(kernelSize, strides, padding, dilations, ceilMode)})";
        CheckPoolingArguments(who, kernelSize, strides, padding, dilations);
        return Pool2d("MaxPool2d", who, input, kernelSize, strides, padding, dilations, ceilMode, max: true, countIncludePad: false);
    }

    /// <summary><see cref="MaxPool2d"/> of <see cref="Relu"/>(<paramref name="input"/>) in one pass, for a caller that
    /// records no gradient: the pooling floors its outputs at zero, which gives the two layers' values bit for bit
    /// (<see cref="Pooling.MaxForward{T}"/>) without the ReLU's pass over the larger input.</summary>
    internal static Tensor MaxPool2dOfRelu(Tensor input, Size2 kernelSize, Size2 stride, Size2 padding, Size2 dilation, bool ceilMode)
    {
        System.Diagnostics.Debug.Assert(!(GradMode.IsEnabled && input.RequiresGrad), "the pooling of a ReLU records no gradient");
        string who = $"MaxPool2d({DescribeMaxPool2d(kernelSize, stride, padding, dilation, ceilMode)})";
        return Pool2d("MaxPool2d", who, input, kernelSize, stride, padding, dilation, ceilMode, max: true, countIncludePad: false, relu: true);
    }

    /// <summary>
    /// 2-D average pooling, PyTorch's <c>F.avg_pool2d</c>: each output is the mean of its window on input (N, C, H, W)
    /// or unbatched (C, H, W). With <paramref name="countIncludePad"/> (the default) zero padding counts in the divisor,
    /// otherwise only the input positions do. The stride defaults to the kernel size.
    /// </summary>
    public static Tensor AvgPool2d(Tensor input, Size2 kernelSize, Size2? stride = null, Size2 padding = default, bool ceilMode = false, bool countIncludePad = true)
    {
        Size2 strides = stride ?? kernelSize;
        string who = $"AvgPool2d({DescribeAvgPool2d(kernelSize, strides, padding, ceilMode, countIncludePad)})";
        CheckPoolingArguments(who, kernelSize, strides, padding, dilation: 1);
        return Pool2d("AvgPool2d", who, input, kernelSize, strides, padding, 1, ceilMode, max: false, countIncludePad);
    }

    /// <summary>PyTorch's description of a max pooling, e.g. <c>kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1), ceil_mode=False</c>.</summary>
    internal static string DescribeMaxPool2d(Size2 kernelSize, Size2 stride, Size2 padding, Size2 dilation, bool ceilMode) =>
        $"kernel_size={kernelSize}, stride={stride}, padding={padding}, dilation={dilation}, ceil_mode={PythonBool(ceilMode)}";

    /// <summary>PyTorch's description of an average pooling.</summary>
    internal static string DescribeAvgPool2d(Size2 kernelSize, Size2 stride, Size2 padding, bool ceilMode, bool countIncludePad) =>
        $"kernel_size={kernelSize}, stride={stride}, padding={padding}, ceil_mode={PythonBool(ceilMode)}, count_include_pad={PythonBool(countIncludePad)}";

    private static string PythonBool(bool value) => value ? "True" : "False";

    /// <summary>Checks a pooling's hyper-parameters: positive sizes, and padding at most half the (dilated) kernel, as
    /// PyTorch requires so that every window covers some input.</summary>
    internal static void CheckPoolingArguments(string who, Size2 kernelSize, Size2 stride, Size2 padding, Size2 dilation)
    {
        CheckPositive(who, "kernel_size", kernelSize);
        CheckPositive(who, "stride", stride);
        CheckPositive(who, "dilation", dilation);
        if (padding.Height < 0 || padding.Width < 0
            || padding.Height > (dilation.Height * (kernelSize.Height - 1) + 1) / 2 || padding.Width > (dilation.Width * (kernelSize.Width - 1) + 1) / 2)
            throw new ArgumentException($"{who}: padding must be non-negative and at most half of the kernel size, got padding={padding}.");
    }

    private static Tensor Pool2d(string name, string who, Tensor input, Size2 kernel, Size2 stride, Size2 padding, Size2 dilation, bool ceilMode, bool max, bool countIncludePad,
        bool relu = false)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank != 4 && input.Rank != 3)
            throw new ArgumentException($"{who}: expected an input of shape (N, C, H, W) or unbatched (C, H, W), got {ShapeUtil.Format(input.Dims)}.");
        return WithBatchAxis(input, x =>
        {
            int height = x.Dims[2], width = x.Dims[3];
            int outHeight = WindowAxis.OutputSize(height, kernel.Height, stride.Height, padding.Height, padding.Height, dilation.Height, ceilMode);
            int outWidth = WindowAxis.OutputSize(width, kernel.Width, stride.Width, padding.Width, padding.Width, dilation.Width, ceilMode);
            if (outHeight < 1 || outWidth < 1)
                throw new ArgumentException($"{who}: an input of shape {ShapeUtil.Format(input.Dims)} gives an output of {outHeight} × {outWidth}; the input is smaller than the kernel.");
            var geometry = new PoolGeometry(x.Dims[0] * x.Dims[1],
                new WindowAxis(height, outHeight, kernel.Height, stride.Height, padding.Height, dilation.Height),
                new WindowAxis(width, outWidth, kernel.Width, stride.Width, padding.Width, dilation.Width));
            Tensor source = x.Contiguous();
            Tensor y = Tensor.Allocate(x.DType, new[] { x.Dims[0], x.Dims[1], outHeight, outWidth }, clear: false);
            if (x.DType == DType.Float32) PoolForward<float>(geometry, max, countIncludePad, relu, source, y);
            else PoolForward<double>(geometry, max, countIncludePad, relu, source, y);
            if (relu) return y;
            AutogradEngine.Record(y, name, new[] { x }, dy =>
            {
                Tensor g = dy.Contiguous();
                Tensor dx = Tensor.Allocate(x.DType, x.Dims, clear: false);
                if (x.DType == DType.Float32) PoolBackward<float>(geometry, max, countIncludePad, source, g, dx);
                else PoolBackward<double>(geometry, max, countIncludePad, source, g, dx);
                return new[] { dx };
            });
            return y;
        });
    }

    private static void PoolForward<T>(PoolGeometry g, bool max, bool countIncludePad, bool relu, Tensor x, Tensor y)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        if (max) Pooling.MaxForward(g, x.AsArraySegment<T>(), y.AsArraySegment<T>(), relu);
        else Pooling.AverageForward(g, countIncludePad, x.AsArraySegment<T>(), y.AsArraySegment<T>());
    }

    private static void PoolBackward<T>(PoolGeometry g, bool max, bool countIncludePad, Tensor x, Tensor dy, Tensor dx)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        if (max) Pooling.MaxBackward(g, x.AsArraySegment<T>(), dy.AsArraySegment<T>(), dx.AsArraySegment<T>());
        else Pooling.AverageBackward(g, countIncludePad, dy.AsArraySegment<T>(), dx.AsArraySegment<T>());
    }
}
