using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;

namespace NormSharp.Kernels;

/// <summary>
/// Activation functions and their derivatives. Point-wise ones are operators for <see cref="Pointwise"/> or calls
/// to <see cref="TensorPrimitives"/>; the softmax family works on data viewed as (outer, n, inner) and normalizes
/// over n, with one path for a contiguous axis (inner = 1) and one for a strided axis (inner &gt; 1).
/// </summary>
internal static class ActivationKernels
{
    // ---- point-wise -------------------------------------------------------------------------------------------

    /// <summary>y = x for x &gt; 0, else slope·x.</summary>
    public readonly struct LeakyRelu<T>(T slope) : IUnaryOperator<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public T Invoke(T x) => x > T.Zero ? x : slope * x;

        public Vector<T> Invoke(Vector<T> x) => Vector.ConditionalSelect(Vector.GreaterThan(x, Vector<T>.Zero), x, x * slope);
    }

    /// <summary>dx = dy where y &gt; 0, else 0. PyTorch's threshold_backward: tests y ≤ 0, so a NaN output passes its
    /// gradient through.</summary>
    public readonly struct ReluBackward<T> : IBinaryOperator<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public T Invoke(T y, T dy) => y <= T.Zero ? T.Zero : dy;

        public Vector<T> Invoke(Vector<T> y, Vector<T> dy) => Vector.ConditionalSelect(Vector.LessThanOrEqual(y, Vector<T>.Zero), Vector<T>.Zero, dy);
    }

    /// <summary>dx = dy where x &gt; 0, else slope·dy.</summary>
    public readonly struct LeakyReluBackward<T>(T slope) : IBinaryOperator<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public T Invoke(T x, T dy) => x > T.Zero ? dy : slope * dy;

        public Vector<T> Invoke(Vector<T> x, Vector<T> dy) => Vector.ConditionalSelect(Vector.GreaterThan(x, Vector<T>.Zero), dy, dy * slope);
    }

    /// <summary>dx = dy·σ'(x) with σ' = y(1 − y), from the saved output y = σ(x).</summary>
    public readonly struct SigmoidBackward<T> : IBinaryOperator<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public T Invoke(T y, T dy) => dy * y * (T.One - y);

        public Vector<T> Invoke(Vector<T> y, Vector<T> dy) => dy * y * (Vector<T>.One - y);
    }

    /// <summary>dx = dy·(1 − y²), from the saved output y = tanh(x).</summary>
    public readonly struct TanhBackward<T> : IBinaryOperator<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public T Invoke(T y, T dy) => dy * (T.One - y * y);

        public Vector<T> Invoke(Vector<T> y, Vector<T> dy) => dy * (Vector<T>.One - y * y);
    }

    // ---- softmax and log-softmax over the middle axis of (outer, n, inner) ----------------------------------------

    /// <summary>
    /// y = softmax(x) or log-softmax(x) over n, for every (outer, inner) position of <paramref name="x"/> (a whole
    /// number of (n, inner) blocks). Numerically stable: with m = max x, softmax = e^(x−m) / Σ e^(x−m) and
    /// log-softmax = x − m − log Σ e^(x−m), so no exponent is positive.
    /// </summary>
    public static void SoftmaxForward<T>(ReadOnlySpan<T> x, Span<T> y, int n, int inner, bool log)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int block = n * inner;
        if (inner == 1)
        {
            for (int start = 0; start < x.Length; start += block)
            {
                ReadOnlySpan<T> row = x.Slice(start, n);
                Span<T> output = y.Slice(start, n);
                T rowMax = TensorPrimitives.Max(row);
                TensorPrimitives.Subtract(row, rowMax, output);
                TensorPrimitives.Exp(output, output);
                T expSum = TensorPrimitives.Sum<T>(output);
                if (log) TensorPrimitives.Subtract(row, rowMax + T.Log(expSum), output);
                else TensorPrimitives.Divide(output, expSum, output);
            }
            return;
        }

        T[] maxRented = BufferPool<T>.Shared.Rent(inner), sumRented = BufferPool<T>.Shared.Rent(inner);
        Span<T> max = maxRented.AsSpan(0, inner), sum = sumRented.AsSpan(0, inner);
        for (int start = 0; start < x.Length; start += block)
        {
            ReadOnlySpan<T> xs = x.Slice(start, block);
            Span<T> ys = y.Slice(start, block);
            xs.Slice(0, inner).CopyTo(max);
            for (int r = 1; r < n; r++) TensorPrimitives.Max(max, xs.Slice(r * inner, inner), max);
            sum.Clear();
            for (int r = 0; r < n; r++)
            {
                Span<T> output = ys.Slice(r * inner, inner);
                TensorPrimitives.Subtract(xs.Slice(r * inner, inner), max, output);
                TensorPrimitives.Exp(output, output);
                TensorPrimitives.Add(sum, output, sum);
            }
            if (log)
            {
                // The log-normalizer m + log Σ e^(x−m), reusing max as its storage.
                TensorPrimitives.Log(sum, sum);
                TensorPrimitives.Add(max, sum, max);
                for (int r = 0; r < n; r++) TensorPrimitives.Subtract(xs.Slice(r * inner, inner), max, ys.Slice(r * inner, inner));
            }
            else
                for (int r = 0; r < n; r++) TensorPrimitives.Divide(ys.Slice(r * inner, inner), sum, ys.Slice(r * inner, inner));
        }
        BufferPool<T>.Shared.Return(maxRented);
        BufferPool<T>.Shared.Return(sumRented);
    }

    /// <summary>
    /// The input gradient from the saved output y and the output gradient dy, over the same layout as
    /// <see cref="SoftmaxForward"/>: for softmax dx = y ⊙ (dy − Σₙ dy·y); for log-softmax dx = dy − e^y ⊙ Σₙ dy.
    /// </summary>
    public static void SoftmaxBackward<T>(ReadOnlySpan<T> y, ReadOnlySpan<T> dy, Span<T> dx, int n, int inner, bool log)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int block = n * inner;
        if (inner == 1)
        {
            for (int start = 0; start < y.Length; start += block)
            {
                ReadOnlySpan<T> ys = y.Slice(start, n), dys = dy.Slice(start, n);
                Span<T> dxs = dx.Slice(start, n);
                if (log)
                {
                    T dySum = TensorPrimitives.Sum(dys);
                    TensorPrimitives.Exp(ys, dxs);
                    TensorPrimitives.MultiplyAdd(dxs, -dySum, dys, dxs);
                }
                else
                {
                    T dyDotY = TensorPrimitives.Dot(dys, ys);
                    TensorPrimitives.Subtract(dys, dyDotY, dxs);
                    TensorPrimitives.Multiply(dxs, ys, dxs);
                }
            }
            return;
        }

        T[] rented = BufferPool<T>.Shared.Rent(inner);
        Span<T> reduced = rented.AsSpan(0, inner);
        for (int start = 0; start < y.Length; start += block)
        {
            ReadOnlySpan<T> ys = y.Slice(start, block), dys = dy.Slice(start, block);
            Span<T> dxs = dx.Slice(start, block);
            // reduced = Σₙ dy (log-softmax) or Σₙ dy·y (softmax), one value per inner position.
            reduced.Clear();
            for (int r = 0; r < n; r++)
            {
                if (log) TensorPrimitives.Add(reduced, dys.Slice(r * inner, inner), reduced);
                else TensorPrimitives.MultiplyAdd(dys.Slice(r * inner, inner), ys.Slice(r * inner, inner), reduced, reduced);
            }
            for (int r = 0; r < n; r++)
            {
                ReadOnlySpan<T> yr = ys.Slice(r * inner, inner), dyr = dys.Slice(r * inner, inner);
                Span<T> dxr = dxs.Slice(r * inner, inner);
                if (log)
                {
                    TensorPrimitives.Exp(yr, dxr);
                    TensorPrimitives.Multiply(dxr, reduced, dxr);
                    TensorPrimitives.Subtract(dyr, dxr, dxr);
                }
                else
                {
                    TensorPrimitives.Subtract(dyr, reduced, dxr);
                    TensorPrimitives.Multiply(dxr, yr, dxr);
                }
            }
        }
        BufferPool<T>.Shared.Return(rented);
    }
}
