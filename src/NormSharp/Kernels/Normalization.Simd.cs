using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace NormSharp.Kernels;

// The SIMD layer of the normalization kernels, written in the manner of TensorPrimitives: the arithmetic of each
// step is stated once (a term, or a coefficient that is either one value for a whole run or one value per element)
// and one loop per shape of work handles the vector width and the tail. Reductions along a run add short blocks in
// the element type and carry the block sums in float64; reductions across rows (per-column sums) widen to float64
// before they add. Either way no float32 sum holds more than a few dozen terms, so a float32 channel of a million
// values with mean 1e4 sums without losing its low digits. The element-wise steps stay in the element type.
// Without AVX-512 the loops run their scalar tails over the whole span.

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

    /// <summary>Asks the cache for the lines of <paramref name="run"/> ahead of use. A group of BatchNorm is N runs
    /// far apart in memory; the hardware prefetcher restarts at each run, so the kernel prefetches run a + 1 while it
    /// sums run a and the wait for memory overlaps the work.</summary>
    public static unsafe void Prefetch<T>(ReadOnlySpan<T> run) where T : unmanaged
    {
        if (!Sse.IsSupported) return;
        byte* start = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(run));
        for (long offset = 0; offset < (long)run.Length * sizeof(T); offset += 64) Sse.Prefetch0(start + offset);
    }

    /// <summary>How many leading elements to write one by one so that the vector stores after them start on a
    /// 64-byte boundary: a Vector512 store that straddles two cache lines costs about twice as much.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe int ElementsToAlignment<T>(ref T destination, int length) where T : unmanaged
    {
        int misalignment = (int)((nuint)Unsafe.AsPointer(ref destination) % 64);
        return Math.Min(length, misalignment == 0 ? 0 : (64 - misalignment) / sizeof(T));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double Wide<T>(T value) where T : IFloatingPointIeee754<T> => double.CreateTruncating(value);

    /// <summary>Vectors summed in the element type before the partial sums move to float64: no lane of a float32
    /// accumulator ever holds more than a few dozen terms, so the sums keep float32's relative precision while the
    /// inner loop stays one add per vector.</summary>
    private const int BlockVectors = 16;

    /// <summary>Σ xᵢ (float64 across blocks).</summary>
    public static double Sum<T>(ReadOnlySpan<T> x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        ref T origin = ref MemoryMarshal.GetReference(x);
        int i = 0, width = Vector512<T>.Count;
        double total = 0;
        if (Vector512.IsHardwareAccelerated)
            while (i <= x.Length - 2 * width)
            {
                Vector512<T> s0 = Vector512<T>.Zero, s1 = s0;
                for (int end = Math.Min(x.Length - 2 * width, i + BlockVectors * width); i <= end; i += 2 * width)
                {
                    s0 += Vector512.LoadUnsafe(ref origin, (nuint)i);
                    s1 += Vector512.LoadUnsafe(ref origin, (nuint)(i + width));
                }
                total += Wide(Vector512.Sum(s0 + s1));
            }
        for (; i < x.Length; i++) total += Wide(x[i]);
        return total;
    }

    /// <summary>
    /// (Σ (aᵢ − p), Σ (aᵢ − p)·(bᵢ − q)). With a = b = x and p = q = c close to the mean it is the second pass of
    /// the corrected two-pass variance (Chan, Golub &amp; LeVeque 1983): mean = c + S₁/n, variance = S₂/n − (S₁/n)².
    /// With a = dy, p = 0, b = x and q = c it gives the two reductions of the backward pass, Σ dy and Σ dy·(x − c).
    /// </summary>
    public static (double Sum, double SumOfProducts) CenteredSums<T>(ReadOnlySpan<T> a, T centerA, ReadOnlySpan<T> b, T centerB)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ref T originA = ref MemoryMarshal.GetReference(a);
        ref T originB = ref MemoryMarshal.GetReference(b);
        int i = 0, width = Vector512<T>.Count;
        double sum = 0, products = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<T> p = Vector512.Create(centerA), q = Vector512.Create(centerB);
            while (i <= a.Length - 2 * width)
            {
                Vector512<T> s0 = Vector512<T>.Zero, s1 = s0, m0 = s0, m1 = s0;
                for (int end = Math.Min(a.Length - 2 * width, i + BlockVectors * width); i <= end; i += 2 * width)
                {
                    Vector512<T> a0 = Vector512.LoadUnsafe(ref originA, (nuint)i) - p, a1 = Vector512.LoadUnsafe(ref originA, (nuint)(i + width)) - p;
                    s0 += a0;
                    s1 += a1;
                    m0 = MultiplyAdd(a0, Vector512.LoadUnsafe(ref originB, (nuint)i) - q, m0);
                    m1 = MultiplyAdd(a1, Vector512.LoadUnsafe(ref originB, (nuint)(i + width)) - q, m1);
                }
                sum += Wide(Vector512.Sum(s0 + s1));
                products += Wide(Vector512.Sum(m0 + m1));
            }
        }
        for (; i < a.Length; i++)
        {
            double ai = Wide(a[i] - centerA);
            sum += ai;
            products += ai * Wide(b[i] - centerB);
        }
        return (sum, products);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> MultiplyAdd<T>(Vector512<T> a, Vector512<T> b, Vector512<T> c)
    {
        if (typeof(T) == typeof(float)) return Vector512.FusedMultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>();
        if (typeof(T) == typeof(double)) return Vector512.FusedMultiplyAdd(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();
        return a * b + c;
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

    /// <summary>y = (x − center)·scale + shift: one subtraction and one fused multiply-add per element. Subtracting the
    /// centre first keeps the digits of x − μ when the mean is large against the spread, which
    /// x·scale + (shift − center·scale) would cancel away. With
    /// <paramref name="streaming"/>, y bypasses the cache (an output larger than the cache is not read back soon, and
    /// this saves reading each line before writing it).</summary>
    public static unsafe void ShiftScale<T, TCoefficient>(ReadOnlySpan<T> x, Span<T> y, TCoefficient center, TCoefficient scale, TCoefficient shift, bool streaming = false)
        where T : unmanaged, IFloatingPointIeee754<T> where TCoefficient : ICoefficient<T>, allows ref struct
    {
        ref T xs = ref MemoryMarshal.GetReference(x);
        ref T ys = ref MemoryMarshal.GetReference(y);
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            fixed (T* pinned = &ys) // the alignment found below must hold for the whole loop
            {
                for (int head = ElementsToAlignment(ref ys, x.Length); i < head; i++) y[i] = T.FusedMultiplyAdd(x[i] - center.At(i), scale.At(i), shift.At(i));
                for (; i <= x.Length - Vector512<T>.Count; i += Vector512<T>.Count)
                    Store(MultiplyAdd(Vector512.LoadUnsafe(ref xs, (nuint)i) - center.VectorAt(i), scale.VectorAt(i), shift.VectorAt(i)), ref ys, i, streaming);
            }
        for (; i < x.Length; i++) y[i] = T.FusedMultiplyAdd(x[i] - center.At(i), scale.At(i), shift.At(i));
    }

    /// <summary>dx = dy·a + (x − center)·k + l: the normalization backward pass once its reductions are known.</summary>
    public static unsafe void CombineGradient<T, TCoefficient>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, Span<T> dx, TCoefficient a, TCoefficient center, TCoefficient k, TCoefficient l, bool streaming = false)
        where T : unmanaged, IFloatingPointIeee754<T> where TCoefficient : ICoefficient<T>, allows ref struct
    {
        ref T dys = ref MemoryMarshal.GetReference(dy);
        ref T xs = ref MemoryMarshal.GetReference(x);
        ref T dxs = ref MemoryMarshal.GetReference(dx);
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            fixed (T* pinned = &dxs) // the alignment found below must hold for the whole loop
            {
                for (int head = ElementsToAlignment(ref dxs, dy.Length); i < head; i++) dx[i] = dy[i] * a.At(i) + ((x[i] - center.At(i)) * k.At(i) + l.At(i));
                for (; i <= dy.Length - Vector512<T>.Count; i += Vector512<T>.Count)
                    Store(Vector512.LoadUnsafe(ref dys, (nuint)i) * a.VectorAt(i) + ((Vector512.LoadUnsafe(ref xs, (nuint)i) - center.VectorAt(i)) * k.VectorAt(i) + l.VectorAt(i)),
                        ref dxs, i, streaming);
            }
        for (; i < dy.Length; i++) dx[i] = dy[i] * a.At(i) + ((x[i] - center.At(i)) * k.At(i) + l.At(i));
    }

    /// <summary>Stores a vector at a 64-byte aligned position, past the cache when <paramref name="streaming"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Store<T>(Vector512<T> value, ref T destination, int i, bool streaming) where T : unmanaged
    {
        if (streaming && Avx512F.IsSupported)
        {
            void* address = Unsafe.AsPointer(ref Unsafe.Add(ref destination, i));
            if (typeof(T) == typeof(float)) Avx512F.StoreAlignedNonTemporal((float*)address, value.AsSingle());
            else Avx512F.StoreAlignedNonTemporal((double*)address, value.AsDouble());
        }
        else value.StoreUnsafe(ref destination, (nuint)i);
    }
}
