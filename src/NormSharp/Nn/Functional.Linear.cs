using NormSharp.Autograd;
using NormSharp.Kernels;

namespace NormSharp.Nn;

/// <summary>
/// Differentiable neural-network operations (PyTorch's <c>torch.nn.functional</c>). Each is one fused operation with
/// a hand-written backward pass; the layer classes in <see cref="NormSharp.Nn"/> hold parameters and call these.
/// </summary>
public static partial class Functional
{
    /// <summary>y = x·Wᵀ + b for x of shape (*, in), W of shape (out, in) and b of shape (out).</summary>
    public static Tensor Linear(Tensor input, Tensor weight, Tensor? bias = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.Rank != 2) throw new ArgumentException($"Linear: the weight must be (out, in), got shape {ShapeUtil.Format(weight.Dims)}.");
        int outFeatures = weight.Dims[0], inFeatures = weight.Dims[1];
        if (input.Rank < 1 || input.Dims[^1] != inFeatures)
            throw new ArgumentException($"Linear(in_features={inFeatures}, out_features={outFeatures}): expected an input of shape (*, {inFeatures}), got {ShapeUtil.Format(input.Dims)}.");
        if (bias is not null && (bias.Rank != 1 || bias.Dims[0] != outFeatures))
            throw new ArgumentException($"Linear: the bias must have shape ({outFeatures},), got {ShapeUtil.Format(bias.Dims)}.");
        CheckSameType("Linear", input, weight, bias);

        int rows = input.Length / Math.Max(inFeatures, 1);
        Tensor x = input.Contiguous(), w = weight.Contiguous();
        int[] outDims = input.Shape;
        outDims[^1] = outFeatures;
        Tensor y = Tensor.Allocate(input.DType, outDims, clear: false);
        if (input.DType == DType.Float32) LinearKernels.Forward<float>(x.SpanF, w.SpanF, bias is null ? default : bias.Contiguous().SpanF, y.SpanF, rows, inFeatures, outFeatures);
        else LinearKernels.Forward<double>(x.SpanD, w.SpanD, bias is null ? default : bias.Contiguous().SpanD, y.SpanD, rows, inFeatures, outFeatures);

        Tensor[] inputs = bias is null ? new[] { input, weight } : new[] { input, weight, bias };
        AutogradEngine.Record(y, "Linear", inputs, dy =>
        {
            Tensor g = dy.Contiguous();
            Tensor? dx = input.RequiresGrad ? Tensor.Allocate(input.DType, input.Dims, clear: false) : null;
            Tensor? dw = weight.RequiresGrad ? Tensor.Allocate(input.DType, weight.Dims, clear: false) : null;
            Tensor? db = bias is { RequiresGrad: true } ? Tensor.Allocate(input.DType, bias.Dims, clear: false) : null;
            if (input.DType == DType.Float32)
                LinearKernels.Backward<float>(x.SpanF, w.SpanF, g.SpanF, dx is null ? default : dx.SpanF, dw is null ? default : dw.SpanF, db is null ? default : db.SpanF, rows, inFeatures, outFeatures);
            else
                LinearKernels.Backward<double>(x.SpanD, w.SpanD, g.SpanD, dx is null ? default : dx.SpanD, dw is null ? default : dw.SpanD, db is null ? default : db.SpanD, rows, inFeatures, outFeatures);
            return bias is null ? new[] { dx, dw } : new[] { dx, dw, db };
        });
        return y;
    }

    internal static void CheckSameType(string op, Tensor input, params Tensor?[] others)
    {
        foreach (Tensor? t in others)
            if (t is not null && t.DType != input.DType)
                throw new ArgumentException($"{op}: the input is {input.DType} but a parameter is {t.DType}; convert the module with To().");
    }
}
