using System.Numerics;

namespace NormSharp.Kernels;

/// <summary>An element-wise function of one value, written once for a scalar and once for a SIMD vector.</summary>
internal interface IUnaryOperator<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    T Invoke(T x);

    Vector<T> Invoke(Vector<T> x);
}

/// <summary>An element-wise function of two values (typically a saved forward value and the output gradient).</summary>
internal interface IBinaryOperator<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    T Invoke(T a, T b);

    Vector<T> Invoke(Vector<T> a, Vector<T> b);
}

/// <summary>
/// The loop drivers for element-wise operators: whole <see cref="Vector{T}"/> blocks (the JIT's preferred width),
/// then the scalar tail. Operators are structs, so the JIT specializes and inlines each call.
/// </summary>
internal static class Pointwise
{
    /// <summary>destination[i] = op(x[i]).</summary>
    public static void Map<T, TOperator>(TOperator op, ReadOnlySpan<T> x, Span<T> destination)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TOperator : struct, IUnaryOperator<T>
    {
        if (destination.Length < x.Length) throw new ArgumentException("Pointwise.Map: the destination is shorter than the input.");
        int i = 0;
        if (Vector.IsHardwareAccelerated)
            for (; i <= x.Length - Vector<T>.Count; i += Vector<T>.Count)
                op.Invoke(new Vector<T>(x.Slice(i))).CopyTo(destination.Slice(i));
        for (; i < x.Length; i++) destination[i] = op.Invoke(x[i]);
    }

    /// <summary>destination[i] = op(a[i], b[i]).</summary>
    public static void Map<T, TOperator>(TOperator op, ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> destination)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TOperator : struct, IBinaryOperator<T>
    {
        if (b.Length != a.Length || destination.Length < a.Length) throw new ArgumentException("Pointwise.Map: the spans differ in length.");
        int i = 0;
        if (Vector.IsHardwareAccelerated)
            for (; i <= a.Length - Vector<T>.Count; i += Vector<T>.Count)
                op.Invoke(new Vector<T>(a.Slice(i)), new Vector<T>(b.Slice(i))).CopyTo(destination.Slice(i));
        for (; i < a.Length; i++) destination[i] = op.Invoke(a[i], b[i]);
    }
}
