using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using NormSharp.Autograd;
using NormSharp.Kernels;

namespace NormSharp.Nn;

public static partial class Functional
{
    /// <summary>max(x, 0), element-wise; the gradient is 0 where the output is 0.</summary>
    public static Tensor Relu(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        Tensor x = input.Contiguous();
        Tensor y = Tensor.Allocate(x.DType, x.Dims, clear: false);
        if (!GradMode.IsEnabled || !input.RequiresGrad)
        {
            Parallelism.For(x.Length, (start, end) =>
            {
                if (x.DType == DType.Float32) TensorPrimitives.Max(x.SpanF[start..end], 0f, y.SpanF[start..end]);
                else TensorPrimitives.Max(x.SpanD[start..end], 0.0, y.SpanD[start..end]);
            });
            return y;
        }
        // The backward needs only where y is not ≤ 0: one bit per element (ActivationKernels.Relu), kept in the storage
        // of a float64 tensor of one element per 64 bits so that it is recycled as tensors are. Threads take whole words.
        int words = (x.Length + ActivationKernels.ReluMaskWord - 1) / ActivationKernels.ReluMaskWord;
        Tensor kept = Tensor.Allocate(DType.Float64, new[] { words }, clear: false);
        Parallelism.For(words, (first, end) =>
        {
            var (start, stop) = MaskedRange(first, end, x.Length);
            Span<ulong> bits = MemoryMarshal.Cast<double, ulong>(kept.SpanD[first..end]);
            if (x.DType == DType.Float32) ActivationKernels.Relu(x.SpanF[start..stop], y.SpanF[start..stop], bits);
            else ActivationKernels.Relu(x.SpanD[start..stop], y.SpanD[start..stop], bits);
        }, ActivationKernels.ReluMaskWord);
        AutogradEngine.Record(y, "ReLU", new[] { input }, dy =>
        {
            Tensor g = dy.Contiguous();
            Tensor dx = Tensor.Allocate(x.DType, x.Dims, clear: false);
            Parallelism.For(words, (first, end) =>
            {
                var (start, stop) = MaskedRange(first, end, x.Length);
                ReadOnlySpan<ulong> bits = MemoryMarshal.Cast<double, ulong>(kept.SpanD[first..end]);
                if (x.DType == DType.Float32) ActivationKernels.ReluGradient(bits, g.SpanF[start..stop], dx.SpanF[start..stop]);
                else ActivationKernels.ReluGradient(bits, g.SpanD[start..stop], dx.SpanD[start..stop]);
            }, ActivationKernels.ReluMaskWord);
            return new[] { dx };
        });
        return y;
    }

    /// <summary>The elements [start, stop) that the mask words [first, end) cover.</summary>
    private static (int Start, int Stop) MaskedRange(int first, int end, int length) =>
        (first * ActivationKernels.ReluMaskWord, (int)Math.Min((long)end * ActivationKernels.ReluMaskWord, length));

    /// <summary>x for x &gt; 0, else <paramref name="negativeSlope"/>·x, element-wise (PyTorch's default slope 0.01).</summary>
    public static Tensor LeakyRelu(Tensor input, double negativeSlope = 0.01)
    {
        CheckNegativeSlope(negativeSlope);
        float slopeF = (float)negativeSlope;
        return PointwiseActivation(input, "LeakyReLU", backwardFromOutput: false,
            (x, y) => Pointwise.Map(new ActivationKernels.LeakyRelu<float>(slopeF), x, y),
            (x, y) => Pointwise.Map(new ActivationKernels.LeakyRelu<double>(negativeSlope), x, y),
            (x, dy, dx) => Pointwise.Map(new ActivationKernels.LeakyReluBackward<float>(slopeF), x, dy, dx),
            (x, dy, dx) => Pointwise.Map(new ActivationKernels.LeakyReluBackward<double>(negativeSlope), x, dy, dx));
    }

    internal static void CheckNegativeSlope(double negativeSlope)
    {
        if (!double.IsFinite(negativeSlope))
            throw new ArgumentException($"LeakyReLU: negativeSlope must be finite, got {negativeSlope}.", nameof(negativeSlope));
    }

    /// <summary>The logistic function σ(x) = 1 / (1 + e^−x), element-wise.</summary>
    public static Tensor Sigmoid(Tensor input) => PointwiseActivation(input, "Sigmoid", backwardFromOutput: true,
        static (x, y) => Pointwise.Map(new ActivationKernels.Sigmoid<float>(), x, y),
        static (x, y) => Pointwise.Map(new ActivationKernels.Sigmoid<double>(), x, y),
        static (y, dy, dx) => Pointwise.Map(new ActivationKernels.SigmoidBackward<float>(), y, dy, dx),
        static (y, dy, dx) => Pointwise.Map(new ActivationKernels.SigmoidBackward<double>(), y, dy, dx));

    /// <summary>The hyperbolic tangent, element-wise.</summary>
    public static Tensor Tanh(Tensor input) => PointwiseActivation(input, "Tanh", backwardFromOutput: true,
        static (x, y) => TensorPrimitives.Tanh(x, y),
        static (x, y) => TensorPrimitives.Tanh(x, y),
        static (y, dy, dx) => Pointwise.Map(new ActivationKernels.TanhBackward<float>(), y, dy, dx),
        static (y, dy, dx) => Pointwise.Map(new ActivationKernels.TanhBackward<double>(), y, dy, dx));

    /// <summary>e^x / Σ e^x along <paramref name="axis"/>, computed with the maximum subtracted so it cannot
    /// overflow.</summary>
    public static Tensor Softmax(Tensor input, int axis = -1) => SoftmaxFamily(input, axis, log: false, "Softmax");

    /// <summary>log softmax(x) = x − max − log Σ e^(x − max) along <paramref name="axis"/>; more accurate than taking
    /// the log of <see cref="Softmax"/>, and the input that <see cref="NllLoss(Tensor, int[], Reduction, int)"/> expects.</summary>
    public static Tensor LogSoftmax(Tensor input, int axis = -1) => SoftmaxFamily(input, axis, log: true, "LogSoftmax");

    /// <summary>A span-to-span kernel of two inputs (a saved value and the output gradient).</summary>
    internal delegate void BinarySpanMap<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> destination);

    /// <summary>An element-wise activation with its derivative: the backward kernels map (saved, dy) to dx,
    /// where saved is the output when <paramref name="backwardFromOutput"/> (σ', tanh' and ReLU' are functions of the
    /// output) and the input otherwise.</summary>
    private static Tensor PointwiseActivation(Tensor input, string name, bool backwardFromOutput,
        Tensor.SpanMap<float> forward32, Tensor.SpanMap<double> forward64,
        BinarySpanMap<float> backward32, BinarySpanMap<double> backward64)
    {
        ArgumentNullException.ThrowIfNull(input);
        Tensor x = input.Contiguous();
        Tensor y = Tensor.Allocate(x.DType, x.Dims, clear: false);
        Parallelism.For(x.Length, (start, end) =>
        {
            if (x.DType == DType.Float32) forward32(x.SpanF[start..end], y.SpanF[start..end]);
            else forward64(x.SpanD[start..end], y.SpanD[start..end]);
        });
        Tensor saved = backwardFromOutput ? y : x;
        AutogradEngine.Record(y, name, new[] { input }, dy =>
        {
            Tensor g = dy.Contiguous();
            Tensor dx = Tensor.Allocate(x.DType, x.Dims, clear: false);
            Parallelism.For(dx.Length, (start, end) =>
            {
                if (dx.DType == DType.Float32) backward32(saved.SpanF[start..end], g.SpanF[start..end], dx.SpanF[start..end]);
                else backward64(saved.SpanD[start..end], g.SpanD[start..end], dx.SpanD[start..end]);
            });
            return new[] { dx };
        });
        return y;
    }

    private static Tensor SoftmaxFamily(Tensor input, int axis, bool log, string name)
    {
        ArgumentNullException.ThrowIfNull(input);
        (int outer, int n, int inner) = AxisLayout(input, axis, name);
        Tensor x = input.Contiguous();
        Tensor y = Tensor.Allocate(x.DType, x.Dims, clear: false);
        if (x.DType == DType.Float32) SoftmaxForward<float>(x, y, outer, n, inner, log);
        else SoftmaxForward<double>(x, y, outer, n, inner, log);
        AutogradEngine.Record(y, name, new[] { input }, dy =>
        {
            Tensor g = dy.Contiguous();
            Tensor dx = Tensor.Allocate(y.DType, y.Dims, clear: false);
            if (y.DType == DType.Float32) SoftmaxBackward<float>(y, g, dx, outer, n, inner, log);
            else SoftmaxBackward<double>(y, g, dx, outer, n, inner, log);
            return new[] { dx };
        });
        return y;
    }

    // Each (n, inner) block is independent, so threads take whole blocks.
    private static void SoftmaxForward<T>(Tensor x, Tensor y, int outer, int n, int inner, bool log) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int block = n * inner;
        Parallelism.For(outer, (start, end) =>
            ActivationKernels.SoftmaxForward(x.Span<T>()[(start * block)..(end * block)], y.Span<T>()[(start * block)..(end * block)], n, inner, log),
            workPerItem: 4L * block);
    }

    private static void SoftmaxBackward<T>(Tensor y, Tensor dy, Tensor dx, int outer, int n, int inner, bool log) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int block = n * inner;
        Parallelism.For(outer, (start, end) =>
            ActivationKernels.SoftmaxBackward(y.Span<T>()[(start * block)..(end * block)], dy.Span<T>()[(start * block)..(end * block)], dx.Span<T>()[(start * block)..(end * block)], n, inner, log),
            workPerItem: 4L * block);
    }

    /// <summary>The tensor viewed as (outer, n, inner) around <paramref name="axis"/>; a scalar is one element.</summary>
    internal static (int Outer, int N, int Inner) AxisLayout(Tensor input, int axis, string name)
    {
        int a = ShapeUtil.NormalizeAxis(axis, input.Rank, name);
        if (input.Rank == 0) return (1, 1, 1);
        int outer = 1, inner = 1;
        for (int i = 0; i < a; i++) outer *= input.Dims[i];
        for (int i = a + 1; i < input.Rank; i++) inner *= input.Dims[i];
        return (outer, input.Dims[a], inner);
    }
}
