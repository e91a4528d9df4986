using NormSharp.Autograd;
using NormSharp.Kernels;

namespace NormSharp.Nn;

public static partial class Functional
{
    /// <summary>
    /// 2-D convolution (cross-correlation), PyTorch's <c>F.conv2d</c>: input (N, Cin, H, W) or unbatched (Cin, H, W),
    /// weight (Cout, Cin, kh, kw), bias (Cout). y[n, o, i, j] = b[o] + Σ_{c,p,q} W[o, c, p, q]·x[n, c, i·sh − padTop +
    /// p·dh, j·sw − padLeft + q·dw], with zeros in the padding; the output has ⌊(H + padding − dh·(kh − 1) − 1)/sh⌋ + 1
    /// rows, and likewise columns.
    /// </summary>
    public static Tensor Conv2d(Tensor input, Tensor weight, Tensor? bias = null, Size2? stride = null, ConvPadding padding = default, Size2? dilation = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.Rank != 4) throw new ArgumentException($"Conv2d: the weight must be (out_channels, in_channels, kh, kw), got shape {ShapeUtil.Format(weight.Dims)}.");
        int outChannels = weight.Dims[0], inChannels = weight.Dims[1];
        Size2 kernel = new(weight.Dims[2], weight.Dims[3]), strides = stride ?? 1, dilations = dilation ?? 1;
        string who = $"Conv2d({DescribeConvolution(inChannels, outChannels, kernel, strides, padding, dilations, default, bias is not null)})";
        CheckConvolutionArguments(who, kernel, strides, padding, dilations, outputPadding: default, transposed: false);
        CheckConvolutionOperands(who, input, inChannels, weight, bias, outChannels);
        var (rowPads, colPads) = padding.Resolve(kernel, dilations);
        return WithBatchAxis(input, x =>
        {
            int height = x.Dims[2], width = x.Dims[3];
            int outHeight = WindowAxis.OutputSize(height, kernel.Height, strides.Height, rowPads.Before, rowPads.After, dilations.Height);
            int outWidth = WindowAxis.OutputSize(width, kernel.Width, strides.Width, colPads.Before, colPads.After, dilations.Width);
            if (outHeight < 1 || outWidth < 1)
                throw new ArgumentException($"{who}: the padded input ({height + rowPads.Before + rowPads.After} × {width + colPads.Before + colPads.After}) is smaller than the dilated kernel " +
                    $"({dilations.Height * (kernel.Height - 1) + 1} × {dilations.Width * (kernel.Width - 1) + 1}), for an input of shape {ShapeUtil.Format(input.Dims)}.");
            var geometry = new ConvGeometry(x.Dims[0], inChannels, outChannels,
                new WindowAxis(height, outHeight, kernel.Height, strides.Height, rowPads.Before, dilations.Height),
                new WindowAxis(width, outWidth, kernel.Width, strides.Width, colPads.Before, dilations.Width));
            return Convolve("Conv2d", geometry, transposed: false, x, weight, bias);
        });
    }

    /// <summary>
    /// 2-D transposed convolution, PyTorch's <c>F.conv_transpose2d</c>: the gradient of <see cref="Conv2d"/> with
    /// respect to its input, used as a layer. Input (N, Cin, H, W) or unbatched, weight (Cin, Cout, kh, kw), bias (Cout);
    /// the output has (H − 1)·sh − 2·padH + dh·(kh − 1) + outputPaddingH + 1 rows, and likewise columns.
    /// <paramref name="outputPadding"/> (smaller than the stride or the dilation) picks among the output sizes that
    /// a strided Conv2d maps to the same input size.
    /// </summary>
    public static Tensor ConvTranspose2d(Tensor input, Tensor weight, Tensor? bias = null, Size2? stride = null, Size2 padding = default, Size2 outputPadding = default, Size2? dilation = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.Rank != 4) throw new ArgumentException($"ConvTranspose2d: the weight must be (in_channels, out_channels, kh, kw), got shape {ShapeUtil.Format(weight.Dims)}.");
        int inChannels = weight.Dims[0], outChannels = weight.Dims[1];
        Size2 kernel = new(weight.Dims[2], weight.Dims[3]), strides = stride ?? 1, dilations = dilation ?? 1;
        string who = $"ConvTranspose2d({DescribeConvolution(inChannels, outChannels, kernel, strides, padding, dilations, outputPadding, bias is not null)})";
        CheckConvolutionArguments(who, kernel, strides, padding, dilations, outputPadding, transposed: true);
        CheckConvolutionOperands(who, input, inChannels, weight, bias, outChannels);
        return WithBatchAxis(input, x =>
        {
            int height = x.Dims[2], width = x.Dims[3];
            int outHeight = (height - 1) * strides.Height - 2 * padding.Height + dilations.Height * (kernel.Height - 1) + outputPadding.Height + 1;
            int outWidth = (width - 1) * strides.Width - 2 * padding.Width + dilations.Width * (kernel.Width - 1) + outputPadding.Width + 1;
            if (outHeight < 1 || outWidth < 1)
                throw new ArgumentException($"{who}: an input of shape {ShapeUtil.Format(input.Dims)} gives an output of {outHeight} × {outWidth}; the padding is too large.");
            // The convolution that this one transposes reads the output (N, Cout, outHeight, outWidth) and writes the
            // input's size; its weight (out = Cin, in = Cout, kh, kw) is this layer's weight as stored.
            var geometry = new ConvGeometry(x.Dims[0], outChannels, inChannels,
                new WindowAxis(outHeight, height, kernel.Height, strides.Height, padding.Height, dilations.Height),
                new WindowAxis(outWidth, width, kernel.Width, strides.Width, padding.Width, dilations.Width));
            return Convolve("ConvTranspose2d", geometry, transposed: true, x, weight, bias);
        });
    }

    /// <summary>Runs a convolution (<paramref name="transposed"/> false: input and output as in
    /// <paramref name="geometry"/>) or its transpose (input and output swapped) and records the backward. The three
    /// kernel passes trade places: the transpose's forward is the convolution's data pass and its data pass is the
    /// convolution's forward; both weight gradients are the convolution's weight pass, with the roles of input and
    /// output gradient swapped for the transpose.</summary>
    private static Tensor Convolve(string name, ConvGeometry geometry, bool transposed, Tensor input, Tensor weight, Tensor? bias)
    {
        Tensor x = input.Contiguous(), w = weight.Contiguous();
        Tensor? b = bias?.Contiguous();
        Tensor y = transposed ? ConvolutionDataPass(geometry, x, w, b) : ConvolutionForwardPass(geometry, x, w, b);
        Tensor[] inputs = bias is null ? new[] { input, weight } : new[] { input, weight, bias };
        AutogradEngine.Record(y, name, inputs, dy =>
        {
            Tensor g = dy.Contiguous();
            Tensor? dx = !input.RequiresGrad ? null
                : transposed ? ConvolutionForwardPass(geometry, g, w, null) : ConvolutionDataPass(geometry, g, w, null);
            // A convolution's weight pass also sums dy into the bias gradient; a transpose's bias sums its own dy.
            bool biasFromWeightPass = !transposed && weight.RequiresGrad;
            Tensor? db = bias is not { RequiresGrad: true } ? null
                : biasFromWeightPass ? Tensor.Allocate(g.DType, new[] { geometry.OutChannels }, clear: false) : ChannelSums(g);
            Tensor? dw = !weight.RequiresGrad ? null
                : transposed ? ConvolutionWeightPass(geometry, g, x, null) : ConvolutionWeightPass(geometry, x, g, db);
            return bias is null ? new[] { dx, dw } : new[] { dx, dw, db };
        });
        return y;
    }

    /// <summary>y = W ⋆ x + b for the convolution's input x (N, InChannels, ·, ·).</summary>
    private static Tensor ConvolutionForwardPass(ConvGeometry g, Tensor x, Tensor w, Tensor? b)
    {
        Tensor y = Tensor.Allocate(x.DType, new[] { g.Batch, g.OutChannels, g.Rows.Output, g.Cols.Output }, clear: false);
        if (x.DType == DType.Float32) Convolution.Forward(g, x.AsArraySegment<float>(), w.AsArraySegment<float>(), b?.AsArraySegment<float>() ?? default, y.AsArraySegment<float>());
        else Convolution.Forward(g, x.AsArraySegment<double>(), w.AsArraySegment<double>(), b?.AsArraySegment<double>() ?? default, y.AsArraySegment<double>());
        return y;
    }

    /// <summary>dx = Fold(Wᵀ·dy) + b for the convolution's output gradient dy (N, OutChannels, ·, ·).</summary>
    private static Tensor ConvolutionDataPass(ConvGeometry g, Tensor dy, Tensor w, Tensor? b)
    {
        Tensor dx = Tensor.Allocate(dy.DType, new[] { g.Batch, g.InChannels, g.Rows.Input, g.Cols.Input }, clear: false);
        if (dy.DType == DType.Float32) Convolution.BackwardData(g, dy.AsArraySegment<float>(), w.AsArraySegment<float>(), b?.AsArraySegment<float>() ?? default, dx.AsArraySegment<float>());
        else Convolution.BackwardData(g, dy.AsArraySegment<double>(), w.AsArraySegment<double>(), b?.AsArraySegment<double>() ?? default, dx.AsArraySegment<double>());
        return dx;
    }

    /// <summary>dW = Σ dy·Xᵀ for the convolution's input x and output gradient dy, and db = Σ dy into
    /// <paramref name="db"/> unless it is null.</summary>
    private static Tensor ConvolutionWeightPass(ConvGeometry g, Tensor x, Tensor dy, Tensor? db)
    {
        Tensor dw = Tensor.Allocate(x.DType, new[] { g.OutChannels, g.InChannels, g.Rows.Kernel, g.Cols.Kernel }, clear: false);
        if (x.DType == DType.Float32)
            Convolution.BackwardWeight(g, x.AsArraySegment<float>(), dy.AsArraySegment<float>(), dw.AsArraySegment<float>(), db?.AsArraySegment<float>() ?? default);
        else
            Convolution.BackwardWeight(g, x.AsArraySegment<double>(), dy.AsArraySegment<double>(), dw.AsArraySegment<double>(), db?.AsArraySegment<double>() ?? default);
        return dw;
    }

    /// <summary>The per-channel sums of an NCHW tensor: the gradient of a bias added to every position.</summary>
    private static Tensor ChannelSums(Tensor t)
    {
        int batch = t.Dims[0], channels = t.Dims[1], plane = t.Dims[2] * t.Dims[3];
        Tensor sums = Tensor.Allocate(t.DType, new[] { channels }, clear: false);
        if (t.DType == DType.Float32) Convolution.ChannelSums<float>(t.SpanF, batch, channels, plane, sums.SpanF);
        else Convolution.ChannelSums<double>(t.SpanD, batch, channels, plane, sums.SpanD);
        return sums;
    }

    /// <summary>Applies a batched 2-D op to a 4-D input directly, or to an unbatched 3-D input by adding and then
    /// removing a batch axis of 1 (as PyTorch accepts both).</summary>
    private static Tensor WithBatchAxis(Tensor input, Func<Tensor, Tensor> op)
    {
        if (input.Rank == 4) return op(input);
        Tensor y = op(input.Unsqueeze(0));
        return y.Reshape(y.Dims[1..]);
    }

    /// <summary>PyTorch's description of a convolution layer, e.g. <c>1, 32, kernel_size=(3, 3), stride=(1, 1), padding=same</c>:
    /// padding, dilation and output padding are shown only when not the default, and the bias only when absent.</summary>
    internal static string DescribeConvolution(int inChannels, int outChannels, Size2 kernelSize, Size2 stride, ConvPadding padding, Size2 dilation, Size2 outputPadding, bool bias)
    {
        string text = $"{inChannels}, {outChannels}, kernel_size={kernelSize}, stride={stride}";
        if (!padding.IsZero) text += $", padding={padding}";
        if (dilation != new Size2(1, 1)) text += $", dilation={dilation}";
        if (outputPadding != default) text += $", output_padding={outputPadding}";
        return bias ? text : text + ", bias=False";
    }

    /// <summary>Checks a convolution's hyper-parameters; <paramref name="who"/> names the layer in the message.</summary>
    internal static void CheckConvolutionArguments(string who, Size2 kernelSize, Size2 stride, ConvPadding padding, Size2 dilation, Size2 outputPadding, bool transposed)
    {
        CheckPositive(who, "kernel_size", kernelSize);
        CheckPositive(who, "stride", stride);
        CheckPositive(who, "dilation", dilation);
        if (padding.Size.Height < 0 || padding.Size.Width < 0) throw new ArgumentException($"{who}: padding must be non-negative, got {padding}.");
        if (padding.IsSame && stride != new Size2(1, 1))
            throw new ArgumentException($"{who}: padding='same' is not supported for strided convolutions (stride={stride}); use an explicit padding.");
        if (!transposed) return;
        if (outputPadding.Height < 0 || outputPadding.Width < 0
            || outputPadding.Height >= Math.Max(stride.Height, dilation.Height) || outputPadding.Width >= Math.Max(stride.Width, dilation.Width))
            throw new ArgumentException($"{who}: output_padding must be non-negative and smaller than either the stride or the dilation, got output_padding={outputPadding}.");
    }

    private static void CheckPositive(string who, string name, Size2 value)
    {
        if (value.Height <= 0 || value.Width <= 0) throw new ArgumentException($"{who}: {name} must be positive, got {value}.");
    }

    /// <summary>Checks the input's rank and channel count, the bias's shape and that all share one element type.</summary>
    private static void CheckConvolutionOperands(string who, Tensor input, int inChannels, Tensor weight, Tensor? bias, int outChannels)
    {
        if ((input.Rank != 4 && input.Rank != 3) || input.Dims[^3] != inChannels)
            throw new ArgumentException($"{who}: expected an input of shape (N, {inChannels}, H, W) or unbatched ({inChannels}, H, W), got {ShapeUtil.Format(input.Dims)}.");
        if (bias is not null && (bias.Rank != 1 || bias.Dims[0] != outChannels))
            throw new ArgumentException($"{who}: the bias must have shape ({outChannels},), got {ShapeUtil.Format(bias.Dims)}.");
        CheckSameType(who, input, weight, bias);
    }
}
