using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace NormSharp.Kernels;

// The SIMD layer of the normalization kernels, written in the manner of TensorPrimitives: the arithmetic of each
// step is stated once (a term, or a coefficient that is either one value for a whole run or one value per element)
// and one loop per shape of work handles the vector width and the tail. Reductions widen to float64 before they
// add, so a float32 channel of a million values with mean 1e4 sums without losing its low digits; the element-wise
// steps stay in the element type. Without AVX-512 the loops run their scalar tails over the whole span.

/// <summary>A per-element term of a float64 sum, given the element and a centre (e.g. (x − c)²).</summary>
internal interface IWideTerm
{
    static abstract double Invoke(double x, double center);

    static abstract Vector512<double> Invoke(Vector512<double> x, Vector512<double> center);
}

/// <summary>The element itself (a plain sum).</summary>
internal readonly struct ValueTerm : IWideTerm
{
    public static double Invoke(double x, double center) => x;

    public static Vector512<double> Invoke(Vector512<double> x, Vector512<double> center) => x;
}

/// <summary>(x − c)²: the second pass of the two-pass variance.</summary>
internal readonly struct SquaredDeviationTerm : IWideTerm
{
    public static double Invoke(double x, double center) => (x - center) * (x - center);

    public static Vector512<double> Invoke(Vector512<double> x, Vector512<double> center)
    {
        Vector512<double> d = x - center;
        return d * d;
    }
}

/// <summary>A coefficient of an element-wise step: one value for the whole run, or one value per element.</summary>
internal interface ICoefficient<T> where T : unmanaged
{
    T At(int i);

    Vector512<T> VectorAt(int i);
}

/// <summary>The same value for every element (a channel's scale in BatchNorm).</summary>
internal readonly struct Uniform<T>(T value) : ICoefficient<T> where T : unmanaged
{
    private readonly Vector512<T> _vector = Vector512.Create(value);

    public T At(int i) => value;

    public Vector512<T> VectorAt(int i) => _vector;
}

/// <summary>One value per element (per-column scales when the channels are the contiguous axis).</summary>
internal readonly ref struct PerElement<T>(ReadOnlySpan<T> values) : ICoefficient<T> where T : unmanaged
{
    private readonly ReadOnlySpan<T> _values = values;

    public T At(int i) => _values[i];

    public Vector512<T> VectorAt(int i) => Vector512.LoadUnsafe(ref MemoryMarshal.GetReference(_values), (nuint)i);
}

internal static class NormalizationSimd
{
    /// <summary>Elements per wide step: one Vector512 of float32, i.e. two Vector512 of float64.</summary>
    private const int Step = 16;

    /// <summary>Sixteen elements from <paramref name="i"/> as two float64 vectors (float32 is widened exactly).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<double> Lower, Vector512<double> Upper) LoadWide<T>(ref T origin, int i)
    {
        if (typeof(T) == typeof(float))
            return Vector512.Widen(Vector512.LoadUnsafe(ref Unsafe.As<T, float>(ref origin), (nuint)i));
        ref double d = ref Unsafe.As<T, double>(ref origin);
        return (Vector512.LoadUnsafe(ref d, (nuint)i), Vector512.LoadUnsafe(ref d, (nuint)(i + 8)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double Wide<T>(T value) where T : IFloatingPointIeee754<T> => double.CreateTruncating(value);

    /// <summary>Σ term(xᵢ, center) in float64, with four independent accumulators so the adds pipeline.</summary>
    public static double Sum<T, TTerm>(ReadOnlySpan<T> x, double center)
        where T : unmanaged, IFloatingPointIeee754<T> where TTerm : IWideTerm
    {
        ref T origin = ref MemoryMarshal.GetReference(x);
        int i = 0;
        double total = 0;
        if (Vector512.IsHardwareAccelerated && x.Length >= Step)
        {
            Vector512<double> c = Vector512.Create(center);
            Vector512<double> s0 = Vector512<double>.Zero, s1 = s0, s2 = s0, s3 = s0;
            for (; i <= x.Length - 2 * Step; i += 2 * Step)
            {
                var (a0, a1) = LoadWide(ref origin, i);
                var (a2, a3) = LoadWide(ref origin, i + Step);
                s0 += TTerm.Invoke(a0, c);
                s1 += TTerm.Invoke(a1, c);
                s2 += TTerm.Invoke(a2, c);
                s3 += TTerm.Invoke(a3, c);
            }
            if (i <= x.Length - Step)
            {
                var (a0, a1) = LoadWide(ref origin, i);
                s0 += TTerm.Invoke(a0, c);
                s1 += TTerm.Invoke(a1, c);
                i += Step;
            }
            total = Vector512.Sum((s0 + s1) + (s2 + s3));
        }
        for (; i < x.Length; i++) total += TTerm.Invoke(Wide(x[i]), center);
        return total;
    }

    /// <summary>(Σ aᵢ, Σ aᵢ·(bᵢ − center)) in float64: the two reductions of the normalization backward pass
    /// (a = dy, b = x).</summary>
    public static (double SumA, double SumAB) SumAndDot<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, double center)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ref T originA = ref MemoryMarshal.GetReference(a);
        ref T originB = ref MemoryMarshal.GetReference(b);
        int i = 0;
        double sumA = 0, sumAB = 0;
        if (Vector512.IsHardwareAccelerated && a.Length >= Step)
        {
            Vector512<double> c = Vector512.Create(center);
            Vector512<double> sa0 = Vector512<double>.Zero, sa1 = sa0, sab0 = sa0, sab1 = sa0;
            for (; i <= a.Length - Step; i += Step)
            {
                var (a0, a1) = LoadWide(ref originA, i);
                var (b0, b1) = LoadWide(ref originB, i);
                sa0 += a0;
                sa1 += a1;
                sab0 += a0 * (b0 - c);
                sab1 += a1 * (b1 - c);
            }
            sumA = Vector512.Sum(sa0 + sa1);
            sumAB = Vector512.Sum(sab0 + sab1);
        }
        for (; i < a.Length; i++)
        {
            double ai = Wide(a[i]);
            sumA += ai;
            sumAB += ai * (Wide(b[i]) - center);
        }
        return (sumA, sumAB);
    }

    /// <summary>sum[j] += term(row[j], center[j]) for every j: a row's contribution to per-column statistics.</summary>
    public static void AccumulateColumns<T, TTerm, TCenter>(ReadOnlySpan<T> row, TCenter center, Span<double> sum)
        where T : unmanaged, IFloatingPointIeee754<T> where TTerm : IWideTerm where TCenter : ICoefficient<double>, allows ref struct
    {
        ref T origin = ref MemoryMarshal.GetReference(row);
        ref double s = ref MemoryMarshal.GetReference(sum);
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; j <= row.Length - Step; j += Step)
            {
                var (x0, x1) = LoadWide(ref origin, j);
                nuint lo = (nuint)j, hi = (nuint)(j + 8);
                (Vector512.LoadUnsafe(ref s, lo) + TTerm.Invoke(x0, center.VectorAt(j))).StoreUnsafe(ref s, lo);
                (Vector512.LoadUnsafe(ref s, hi) + TTerm.Invoke(x1, center.VectorAt(j + 8))).StoreUnsafe(ref s, hi);
            }
        for (; j < row.Length; j++) sum[j] += TTerm.Invoke(Wide(row[j]), center.At(j));
    }

    /// <summary>sumA[j] += a[j] and sumAB[j] += a[j]·(b[j] − center) for every j, in float64.</summary>
    public static void AccumulateColumnPairs<T, TCenter>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, TCenter center, Span<double> sumA, Span<double> sumAB)
        where T : unmanaged, IFloatingPointIeee754<T> where TCenter : ICoefficient<double>, allows ref struct
    {
        ref T originA = ref MemoryMarshal.GetReference(a);
        ref T originB = ref MemoryMarshal.GetReference(b);
        ref double sa = ref MemoryMarshal.GetReference(sumA);
        ref double sab = ref MemoryMarshal.GetReference(sumAB);
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; j <= a.Length - Step; j += Step)
            {
                var (a0, a1) = LoadWide(ref originA, j);
                var (b0, b1) = LoadWide(ref originB, j);
                nuint lo = (nuint)j, hi = (nuint)(j + 8);
                (Vector512.LoadUnsafe(ref sa, lo) + a0).StoreUnsafe(ref sa, lo);
                (Vector512.LoadUnsafe(ref sa, hi) + a1).StoreUnsafe(ref sa, hi);
                (Vector512.LoadUnsafe(ref sab, lo) + a0 * (b0 - center.VectorAt(j))).StoreUnsafe(ref sab, lo);
                (Vector512.LoadUnsafe(ref sab, hi) + a1 * (b1 - center.VectorAt(j + 8))).StoreUnsafe(ref sab, hi);
            }
        for (; j < a.Length; j++)
        {
            double aj = Wide(a[j]);
            sumA[j] += aj;
            sumAB[j] += aj * (Wide(b[j]) - center.At(j));
        }
    }

    /// <summary>y = (x − center)·scale + shift. Subtracting the centre first keeps the digits of x − μ when the mean is
    /// large against the spread, which x·scale + (shift − center·scale) would cancel away.</summary>
    public static void ShiftScale<T, TCoefficient>(ReadOnlySpan<T> x, Span<T> y, TCoefficient center, TCoefficient scale, TCoefficient shift)
        where T : unmanaged, IFloatingPointIeee754<T> where TCoefficient : ICoefficient<T>, allows ref struct
    {
        ref T xs = ref MemoryMarshal.GetReference(x);
        ref T ys = ref MemoryMarshal.GetReference(y);
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i <= x.Length - Vector512<T>.Count; i += Vector512<T>.Count)
                ((Vector512.LoadUnsafe(ref xs, (nuint)i) - center.VectorAt(i)) * scale.VectorAt(i) + shift.VectorAt(i)).StoreUnsafe(ref ys, (nuint)i);
        for (; i < x.Length; i++) y[i] = (x[i] - center.At(i)) * scale.At(i) + shift.At(i);
    }

    /// <summary>dx = dy·a + (x − center)·k + l: the normalization backward pass once its reductions are known.</summary>
    public static void CombineGradient<T, TCoefficient>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, Span<T> dx, TCoefficient a, TCoefficient center, TCoefficient k, TCoefficient l)
        where T : unmanaged, IFloatingPointIeee754<T> where TCoefficient : ICoefficient<T>, allows ref struct
    {
        ref T dys = ref MemoryMarshal.GetReference(dy);
        ref T xs = ref MemoryMarshal.GetReference(x);
        ref T dxs = ref MemoryMarshal.GetReference(dx);
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i <= dy.Length - Vector512<T>.Count; i += Vector512<T>.Count)
                (Vector512.LoadUnsafe(ref dys, (nuint)i) * a.VectorAt(i) + ((Vector512.LoadUnsafe(ref xs, (nuint)i) - center.VectorAt(i)) * k.VectorAt(i) + l.VectorAt(i)))
                    .StoreUnsafe(ref dxs, (nuint)i);
        for (; i < dy.Length; i++) dx[i] = dy[i] * a.At(i) + ((x[i] - center.At(i)) * k.At(i) + l.At(i));
    }
}
