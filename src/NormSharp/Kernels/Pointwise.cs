using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace NormSharp.Kernels;

/// <summary>An element-wise function of one value, written once for a scalar and once for a SIMD vector of any
/// width (<see cref="ISimdVector{TSelf, T}"/>).</summary>
internal interface IUnaryOperator<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    T Invoke(T x);

    TVector Invoke<TVector>(TVector x) where TVector : struct, ISimdVector<TVector, T>;
}

/// <summary>An element-wise function of two values (typically a saved forward value and the output gradient).</summary>
internal interface IBinaryOperator<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    T Invoke(T a, T b);

    TVector Invoke<TVector>(TVector a, TVector b) where TVector : struct, ISimdVector<TVector, T>;
}

/// <summary>
/// The loop driver for element-wise operators, at the widest vector width the machine has: whole vectors, stored on
/// boundaries of the vector's size (a store that straddles two cache lines costs about twice as much), with the span's
/// first and last vectors covering its unaligned ends; the scalar form only for spans shorter than one vector.
/// Operators are structs, so the JIT specializes and inlines each call. The output may be one of the inputs.
/// </summary>
internal static class Pointwise
{
    /// <summary>destination[i] = op(x[i]) for i &lt; x.Length.</summary>
    public static void Map<T, TOperator>(TOperator op, ReadOnlySpan<T> x, Span<T> destination)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TOperator : struct, IUnaryOperator<T>
    {
        if (destination.Length < x.Length) throw new ArgumentException("Pointwise.Map: the destination is shorter than the input.");
        Write(destination[..x.Length], new UnaryStep<T, TOperator>(op, x));
    }

    /// <summary>destination[i] = op(a[i], b[i]) for i &lt; a.Length.</summary>
    public static void Map<T, TOperator>(TOperator op, ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> destination)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TOperator : struct, IBinaryOperator<T>
    {
        if (b.Length != a.Length || destination.Length < a.Length) throw new ArgumentException("Pointwise.Map: the spans differ in length.");
        Write(destination[..a.Length], new BinaryStep<T, TOperator>(op, a, b));
    }

    /// <inheritdoc cref="Map{T, TOperator}(TOperator, ReadOnlySpan{T}, Span{T})"/>
    /// <remarks>At the width of <typeparamref name="TVector"/>, whatever the machine has (for tests).</remarks>
    public static void Map<T, TOperator, TVector>(TOperator op, ReadOnlySpan<T> x, Span<T> destination)
        where T : unmanaged, IFloatingPointIeee754<T> where TOperator : struct, IUnaryOperator<T> where TVector : struct, ISimdVector<TVector, T> =>
        Write<T, UnaryStep<T, TOperator>, TVector>(destination[..x.Length], new UnaryStep<T, TOperator>(op, x));

    /// <inheritdoc cref="Map{T, TOperator}(TOperator, ReadOnlySpan{T}, ReadOnlySpan{T}, Span{T})"/>
    /// <remarks>At the width of <typeparamref name="TVector"/>, whatever the machine has (for tests).</remarks>
    public static void Map<T, TOperator, TVector>(TOperator op, ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> destination)
        where T : unmanaged, IFloatingPointIeee754<T> where TOperator : struct, IBinaryOperator<T> where TVector : struct, ISimdVector<TVector, T> =>
        Write<T, BinaryStep<T, TOperator>, TVector>(destination[..a.Length], new BinaryStep<T, TOperator>(op, a, b));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Write<T, TOp>(Span<T> output, TOp op) where T : unmanaged, IFloatingPointIeee754<T> where TOp : IElementwise<T>, allows ref struct
    {
        if (Vector512.IsHardwareAccelerated) Write<T, TOp, Simd512<T>>(output, op);
        else if (Vector256.IsHardwareAccelerated) Write<T, TOp, Simd256<T>>(output, op);
        else Write<T, TOp, Simd128<T>>(output, op);
    }

    /// <summary>
    /// output[i] = op(i), vector by vector: at 0, then from the first boundary of the vector's size on, and last the
    /// vector that ends with the span. The operator appears once, in one loop: <see cref="NormalizationSimd.Write{T, TOp}"/>
    /// calls it at four places, and an operator as long as an exponential, inlined four times, exceeds the JIT's inlining
    /// budget, which then leaves the loop calling it (a sigmoid ran 1.7 times as long). Every vector is formed before
    /// the stores that overlap its inputs (the first vector is stored at the end, each other one after the next is
    /// formed), so the output may be an input.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Write<T, TOp, TVector>(Span<T> output, TOp op)
        where T : unmanaged, IFloatingPointIeee754<T> where TOp : IElementwise<T>, allows ref struct where TVector : struct, ISimdVector<TVector, T>
    {
        int width = TVector.Count, length = output.Length, last = length - width;
        if (last < 0)
        {
            for (int i = 0; i < length; i++) output[i] = op.At(i);
            return;
        }
        fixed (T* pinned = &MemoryMarshal.GetReference(output)) // the alignment found below must hold for the whole loop
        {
            int bytes = width * sizeof(T), misalignment = (int)((nuint)pinned % (nuint)bytes);
            int second = misalignment == 0 ? width : (bytes - misalignment) / sizeof(T);
            TVector first = default, pending = default;
            int pendingAt = 0;
            for (int at = 0; ; at = Math.Min(at == 0 ? second : at + width, last))
            {
                TVector value = op.VectorAt<TVector>(at);
                if (at == 0) first = value;
                else
                {
                    if (pendingAt > 0) pending.StoreUnsafe(ref *pinned, (nuint)pendingAt);
                    (pending, pendingAt) = (value, at);
                }
                if (at == last) break;
            }
            if (pendingAt > 0) pending.StoreUnsafe(ref *pinned, (nuint)pendingAt);
            first.StoreUnsafe(ref *pinned, 0);
        }
    }

    private readonly ref struct UnaryStep<T, TOperator>(TOperator op, ReadOnlySpan<T> x) : IElementwise<T>
        where T : unmanaged, IFloatingPointIeee754<T> where TOperator : struct, IUnaryOperator<T>
    {
        private readonly TOperator _op = op;
        private readonly ReadOnlySpan<T> _x = x;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public T At(int i) => _op.Invoke(_x[i]);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public TVector VectorAt<TVector>(int i) where TVector : struct, ISimdVector<TVector, T> =>
            _op.Invoke(NormalizationSimd.Load<T, TVector>(_x, i));
    }

    private readonly ref struct BinaryStep<T, TOperator>(TOperator op, ReadOnlySpan<T> a, ReadOnlySpan<T> b) : IElementwise<T>
        where T : unmanaged, IFloatingPointIeee754<T> where TOperator : struct, IBinaryOperator<T>
    {
        private readonly TOperator _op = op;
        private readonly ReadOnlySpan<T> _a = a, _b = b;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public T At(int i) => _op.Invoke(_a[i], _b[i]);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public TVector VectorAt<TVector>(int i) where TVector : struct, ISimdVector<TVector, T> =>
            _op.Invoke(NormalizationSimd.Load<T, TVector>(_a, i), NormalizationSimd.Load<T, TVector>(_b, i));
    }
}
