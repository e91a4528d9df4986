using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace NormSharp.Kernels;

/// <summary>
/// Activation functions and their derivatives. Point-wise ones are width-generic operators for <see cref="Pointwise"/>
/// or calls to <see cref="TensorPrimitives"/>; the softmax family works on data viewed as (outer, n, inner) and normalizes
/// over n, with one path for a contiguous axis (inner = 1) and one for a strided axis (inner &gt; 1).
/// </summary>
internal static class ActivationKernels
{
    // ---- point-wise: operators for Pointwise.Map -----------------------------------------------------------------

    /// <summary>y = x for x &gt; 0, else slope·x.</summary>
    public readonly struct LeakyRelu<T>(T slope) : IUnaryOperator<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public T Invoke(T x) => x > T.Zero ? x : slope * x;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public TVector Invoke<TVector>(TVector x) where TVector : struct, ISimdVector<TVector, T> =>
            TVector.ConditionalSelect(TVector.LessThan(TVector.Zero, x), x, x * TVector.Create(slope));
    }

    // ---- ReLU: the output and one bit per element for the backward ----------------------------------------------

    /// <summary>Elements per word of a ReLU mask.</summary>
    public const int ReluMaskWord = 64;

    /// <summary>y = max(x, 0) (a NaN stays NaN), and bit i mod 64 of kept[i / 64] set where x[i] is not ≤ 0: the
    /// backward's condition (PyTorch's threshold_backward on the output passes the gradient where y is not ≤ 0), one
    /// bit per element, so that the backward reads 1/32 of what reading a float32 output would. Against keeping the
    /// output, ReLU fwd+bwd on 1M float32 elements measured 12 % shorter (forward 130 µs and backward 150 µs against
    /// 120 and 197, one thread, AVX-512, AMD EPYC). <paramref name="kept"/> holds ⌈n/64⌉ words.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Relu<T>(ReadOnlySpan<T> x, Span<T> y, Span<ulong> kept) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (Vector512.IsHardwareAccelerated) Relu<T, Simd512<T>>(x, y, kept);
        else if (Vector256.IsHardwareAccelerated) Relu<T, Simd256<T>>(x, y, kept);
        else Relu<T, Simd128<T>>(x, y, kept);
    }

    /// <inheritdoc cref="Relu{T}(ReadOnlySpan{T}, Span{T}, Span{ulong})"/>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Relu<T, TVector>(ReadOnlySpan<T> x, Span<T> y, Span<ulong> kept)
        where T : unmanaged, IFloatingPointIeee754<T> where TVector : struct, ISimdVector<TVector, T>
    {
        int words = x.Length / ReluMaskWord;
        ref T input = ref MemoryMarshal.GetReference(x), output = ref MemoryMarshal.GetReference(y);
        for (int w = 0; w < words; w++)
        {
            ulong bits = 0;
            for (int j = 0; j < ReluMaskWord; j += TVector.Count)
            {
                nuint i = (nuint)(w * ReluMaskWord + j);
                TVector v = TVector.LoadUnsafe(in input, i), dropped = TVector.LessThanOrEqual(v, TVector.Zero);
                TVector.ConditionalSelect(dropped, TVector.Zero, v).StoreUnsafe(ref output, i);
                bits |= (ulong)TVector.LaneBits(~dropped) << j;
            }
            kept[w] = bits;
        }
        if (words * ReluMaskWord == x.Length) return;
        ulong tail = 0;
        for (int i = words * ReluMaskWord; i < x.Length; i++)
        {
            bool keep = !(x[i] <= T.Zero);
            y[i] = keep ? x[i] : T.Zero;
            if (keep) tail |= 1UL << (i - words * ReluMaskWord);
        }
        kept[words] = tail;
    }

    /// <summary>dx = dy where the bit of <paramref name="kept"/> that <see cref="Relu{T}(ReadOnlySpan{T}, Span{T}, Span{ulong})"/>
    /// wrote is set, else 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ReluGradient<T>(ReadOnlySpan<ulong> kept, ReadOnlySpan<T> dy, Span<T> dx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (Vector512.IsHardwareAccelerated) ReluGradient<T, Simd512<T>>(kept, dy, dx);
        else if (Vector256.IsHardwareAccelerated) ReluGradient<T, Simd256<T>>(kept, dy, dx);
        else ReluGradient<T, Simd128<T>>(kept, dy, dx);
    }

    /// <inheritdoc cref="ReluGradient{T}(ReadOnlySpan{ulong}, ReadOnlySpan{T}, Span{T})"/>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ReluGradient<T, TVector>(ReadOnlySpan<ulong> kept, ReadOnlySpan<T> dy, Span<T> dx)
        where T : unmanaged, IFloatingPointIeee754<T> where TVector : struct, ISimdVector<TVector, T>
    {
        int words = dy.Length / ReluMaskWord;
        ref T gradient = ref MemoryMarshal.GetReference(dy), output = ref MemoryMarshal.GetReference(dx);
        for (int w = 0; w < words; w++)
        {
            ulong bits = kept[w];
            for (int j = 0; j < ReluMaskWord; j += TVector.Count)
            {
                nuint i = (nuint)(w * ReluMaskWord + j);
                TVector.ConditionalSelect(TVector.LanesOf((uint)(bits >> j)), TVector.LoadUnsafe(in gradient, i), TVector.Zero).StoreUnsafe(ref output, i);
            }
        }
        for (int i = words * ReluMaskWord; i < dy.Length; i++) dx[i] = (kept[words] >> (i - words * ReluMaskWord) & 1) != 0 ? dy[i] : T.Zero;
    }

    /// <summary>dx = dy where x &gt; 0, else slope·dy.</summary>
    public readonly struct LeakyReluBackward<T>(T slope) : IBinaryOperator<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public T Invoke(T x, T dy) => x > T.Zero ? dy : slope * dy;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public TVector Invoke<TVector>(TVector x, TVector dy) where TVector : struct, ISimdVector<TVector, T> =>
            TVector.ConditionalSelect(TVector.LessThan(TVector.Zero, x), dy, dy * TVector.Create(slope));
    }

    /// <summary>σ(x) = 1 / (1 + e^−x), from e = e^−|x| so that no exponent is positive: 1 / (1 + e) for x ≥ 0 and
    /// e / (1 + e) for x &lt; 0 (the same value, without overflow). The vector form uses
    /// <see cref="SimdMath.ExpOfNonPositive"/> in the element type (within 2 ulp in float32; σ is 0 below x = −86.6,
    /// where it is less than 2.6·10⁻³⁸), the scalar form (spans shorter than one vector) T.Exp.</summary>
    public readonly struct Sigmoid<T> : IUnaryOperator<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public T Invoke(T x)
        {
            T e = T.Exp(-T.Abs(x));
            return (x < T.Zero ? e : T.One) / (T.One + e);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public TVector Invoke<TVector>(TVector x) where TVector : struct, ISimdVector<TVector, T>
        {
            TVector negative = TVector.LessThan(x, TVector.Zero), one = TVector.Create(T.One);
            TVector e = SimdMath.ExpOfNonPositive<T, TVector>(TVector.ConditionalSelect(negative, x, TVector.Zero - x));
            return TVector.ConditionalSelect(negative, e, one) / (one + e);
        }
    }

    /// <summary>dx = dy·σ'(x) with σ' = y(1 − y), from the saved output y = σ(x).</summary>
    public readonly struct SigmoidBackward<T> : IBinaryOperator<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public T Invoke(T y, T dy) => dy * y * (T.One - y);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public TVector Invoke<TVector>(TVector y, TVector dy) where TVector : struct, ISimdVector<TVector, T> =>
            dy * y * (TVector.Create(T.One) - y);
    }

    /// <summary>dx = dy·(1 − y²), from the saved output y = tanh(x).</summary>
    public readonly struct TanhBackward<T> : IBinaryOperator<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public T Invoke(T y, T dy) => dy * (T.One - y * y);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public TVector Invoke<TVector>(TVector y, TVector dy) where TVector : struct, ISimdVector<TVector, T> =>
            dy * (TVector.Create(T.One) - y * y);
    }

    // ---- softmax and log-softmax over the middle axis of (outer, n, inner) ----------------------------------------

    /// <summary>output[i] = e^(x[i] + shift)·scale + addend[i] with x + shift ≤ 0 (a softmax's x − max, a
    /// log-probability), in one pass at the widest vector width (<see cref="SimdMath.ExpOfNonPositive"/>): the
    /// exponentials of the softmax family. The output must not overlap the inputs. Returns Σ output[i] (the
    /// softmax's normalizer, summed as it is written).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T ExpAffine<T, TAddend>(ReadOnlySpan<T> x, T shift, T scale, TAddend addend, Span<T> output)
        where T : unmanaged, IFloatingPointIeee754<T> where TAddend : ICoefficient<T>, allows ref struct =>
        Vector512.IsHardwareAccelerated ? ExpAffine<T, TAddend, Simd512<T>>(x, shift, scale, addend, output)
        : Vector256.IsHardwareAccelerated ? ExpAffine<T, TAddend, Simd256<T>>(x, shift, scale, addend, output)
        : ExpAffine<T, TAddend, Simd128<T>>(x, shift, scale, addend, output);

    /// <inheritdoc cref="ExpAffine{T, TAddend}"/>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static T ExpAffine<T, TAddend, TVector>(ReadOnlySpan<T> x, T shift, T scale, TAddend addend, Span<T> output)
        where T : unmanaged, IFloatingPointIeee754<T> where TAddend : ICoefficient<T>, allows ref struct where TVector : struct, ISimdVector<TVector, T>
    {
        int width = TVector.Count, last = output.Length - width;
        if (last < 0)
        {
            T total = T.Zero;
            for (int i = 0; i < output.Length; i++) total += output[i] = T.MultiplyAddEstimate(T.Exp(x[i] + shift), scale, addend.At(i));
            return total;
        }
        TVector s = TVector.Create(shift), k = TVector.Create(scale), sum = TVector.Zero;
        ref T y = ref MemoryMarshal.GetReference(output);
        // One copy of the loop body (the exponential is long): the last vector is the one that ends with the span,
        // and only its lanes not yet counted join the sum.
        for (int i = 0; ; i += width)
        {
            int at = Math.Min(i, last);
            TVector value = TVector.MultiplyAdd(SimdMath.ExpOfNonPositive<T, TVector>(NormalizationSimd.Load<T, TVector>(x, at) + s), k, addend.VectorAt<TVector>(at));
            value.StoreUnsafe(ref y, (nuint)at);
            if (at == last) return TVector.Sum(sum + TVector.ConditionalSelect(TVector.LanesFrom(i - at), value, TVector.Zero));
            sum += value;
        }
    }

    /// <summary>The largest element of a non-empty span, at the widest vector width the machine has. A lane compare
    /// keeps the first operand where either is NaN, one instruction or two where TensorPrimitives.Max's NaN-propagating
    /// maximum takes several below AVX-512 (a softmax's row maximum took three times as long at 256 bits as at 512).
    /// The softmax family needs no NaN from it: a NaN element makes its exponential, and so the row's normalizer and
    /// every output of the row, NaN anyway.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T RowMax<T>(ReadOnlySpan<T> x) where T : unmanaged, IFloatingPointIeee754<T> =>
        Vector512.IsHardwareAccelerated ? RowMax<T, Simd512<T>>(x)
        : Vector256.IsHardwareAccelerated ? RowMax<T, Simd256<T>>(x)
        : RowMax<T, Simd128<T>>(x);

    /// <inheritdoc cref="RowMax{T}"/>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static T RowMax<T, TVector>(ReadOnlySpan<T> x) where T : unmanaged, IFloatingPointIeee754<T> where TVector : struct, ISimdVector<TVector, T>
    {
        int width = TVector.Count, last = x.Length - width;
        T max = x[0];
        if (last < 0)
        {
            foreach (T value in x) max = max < value ? value : max;
            return max;
        }
        // Two chains of compares, and the last vector overlapping the others (counting an element twice does not change
        // a maximum).
        TVector even = NormalizationSimd.Load<T, TVector>(x, 0), odd = NormalizationSimd.Load<T, TVector>(x, last);
        int i = width;
        for (; i + width < last; i += 2 * width)
        {
            even = Larger(even, NormalizationSimd.Load<T, TVector>(x, i));
            odd = Larger(odd, NormalizationSimd.Load<T, TVector>(x, i + width));
        }
        if (i < last) even = Larger(even, NormalizationSimd.Load<T, TVector>(x, i));
        Span<T> lanes = stackalloc T[width];
        Larger(even, odd).StoreUnsafe(ref MemoryMarshal.GetReference(lanes), 0);
        foreach (T value in lanes) max = max < value ? value : max;
        return max;

        static TVector Larger(TVector a, TVector b) => TVector.ConditionalSelect(TVector.LessThan(a, b), b, a);
    }

    /// <summary>
    /// y = softmax(x) or log-softmax(x) over n, for every (outer, inner) position of <paramref name="x"/> (a whole
    /// number of (n, inner) blocks). Numerically stable: with m = max x, softmax = e^(x−m) / Σ e^(x−m) and
    /// log-softmax = x − m − log Σ e^(x−m), so no exponent is positive.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SoftmaxForward<T>(ReadOnlySpan<T> x, Span<T> y, int n, int inner, bool log)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int block = n * inner;
        if (inner == 1)
        {
            if (!log)
            {
                SoftmaxRows(x, y, default, n);
                return;
            }
            for (int start = 0; start < x.Length; start += block)
            {
                ReadOnlySpan<T> row = x.Slice(start, n);
                Span<T> output = y.Slice(start, n);
                T rowMax = RowMax(row);
                T expSum = ExpAffine(row, -rowMax, T.One, new Uniform<T>(T.Zero), output);
                TensorPrimitives.Subtract(row, rowMax + T.Log(expSum), output);
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

    /// <summary>The softmax of each contiguous row of n elements, and each row's log-normalizer m + log Σ e^(x−m)
    /// (m = the row's maximum) in <paramref name="logNormalizers"/> unless that is empty: log-softmax = x − that.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SoftmaxRows<T>(ReadOnlySpan<T> x, Span<T> probabilities, Span<T> logNormalizers, int n)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int start = 0, row = 0; start < x.Length; start += n, row++)
        {
            ReadOnlySpan<T> values = x.Slice(start, n);
            Span<T> output = probabilities.Slice(start, n);
            T rowMax = RowMax(values);
            T expSum = ExpAffine(values, -rowMax, T.One, new Uniform<T>(T.Zero), output);
            TensorPrimitives.Multiply(output, T.One / expSum, output);
            if (!logNormalizers.IsEmpty) logNormalizers[row] = rowMax + T.Log(expSum);
        }
    }

    /// <summary>
    /// The input gradient from the saved output y and the output gradient dy, over the same layout as
    /// <see cref="SoftmaxForward"/>: for softmax dx = y ⊙ (dy − Σₙ dy·y); for log-softmax dx = dy − e^y ⊙ Σₙ dy.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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
                if (log) ExpAffine(ys, T.Zero, -TensorPrimitives.Sum(dys), new PerElement<T>(dys), dxs);
                else TensorPrimitives.AddMultiply(dys, -TensorPrimitives.Dot(dys, ys), ys, dxs);
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
