using System.Numerics.Tensors;
using NormSharp.Autograd;

namespace NormSharp.Nn;

public static partial class Functional
{
    /// <summary>
    /// Inverted dropout (Srivastava et al. 2014, scaled at training time as PyTorch does): while
    /// <paramref name="training"/>, each element is zeroed with probability <paramref name="p"/> and the kept ones are
    /// multiplied by 1/(1 − p), so the expected output equals the input and evaluation needs no rescaling. Returns the
    /// input itself when not training or when p = 0. The mask is drawn from <paramref name="generator"/> (or
    /// <see cref="RandomGenerator.Default"/>) in row-major order.
    /// </summary>
    public static Tensor Dropout(Tensor input, double p = 0.5, bool training = true, RandomGenerator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        CheckDropoutProbability(p, "Dropout");
        if (!training || p == 0) return input;

        // The mask holds 0 or 1/(1 − p), so both passes are one multiply.
        Tensor mask = Tensor.Allocate(input.DType, input.Dims, clear: false);
        RandomGenerator random = generator ?? RandomGenerator.Default;
        double keepScale = 1.0 / (1.0 - p);
        if (mask.DType == DType.Float32)
        {
            Span<float> m = mask.SpanF;
            for (int i = 0; i < m.Length; i++) m[i] = random.NextDouble() < p ? 0f : (float)keepScale;
        }
        else
        {
            Span<double> m = mask.SpanD;
            for (int i = 0; i < m.Length; i++) m[i] = random.NextDouble() < p ? 0.0 : keepScale;
        }

        Tensor y = MultiplyByMask(input.Contiguous(), mask);
        AutogradEngine.Record(y, "Dropout", new[] { input }, dy => new[] { MultiplyByMask(dy.Contiguous(), mask) });
        return y;
    }

    internal static void CheckDropoutProbability(double p, string who)
    {
        if (!(p >= 0 && p < 1))
            throw new ArgumentOutOfRangeException(nameof(p), $"{who}: the drop probability p must be in [0, 1), got {p}.");
    }

    private static Tensor MultiplyByMask(Tensor x, Tensor mask)
    {
        Tensor y = Tensor.Allocate(x.DType, x.Dims, clear: false);
        if (x.DType == DType.Float32) TensorPrimitives.Multiply(x.SpanF, mask.SpanF, y.SpanF);
        else TensorPrimitives.Multiply(x.SpanD, mask.SpanD, y.SpanD);
        return y;
    }
}
