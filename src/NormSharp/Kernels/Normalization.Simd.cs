using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace NormSharp.Kernels;

// The SIMD layer of the normalization kernels, written in the manner of TensorPrimitives: the arithmetic of each
// element-wise step is stated once, as an operation with a scalar and a vector form, and one driver handles the
// vector width, the alignment of the output and the tail. Reductions add whole vectors in the element type and move
// the partial sums to float64 every BlockVectors vectors, so no float32 lane ever holds more than a few dozen terms:
// a float32 channel of a million values with mean 1e4 sums without losing its low digits, while the inner loops stay
// one add (or one fused multiply-add) per vector. A span that is not a whole number of vectors ends with the vector
// that ends with the span: reductions zero the lanes they have already counted, and element-wise steps store only
// the lanes not yet written, so that no element is ever handled one at a time. Spans shorter than one vector, and
// machines without AVX-512, use the scalar forms.

/// <summary>Where the runs of one group lie: <see cref="Count"/> runs of <see cref="Length"/> contiguous elements,
/// run a starting at <see cref="First"/> + a·<see cref="Stride"/> (BatchNorm's channel: one run per sample).</summary>
internal readonly record struct Runs(int First, int Count, int Length, int Stride)
{
    /// <summary>Where run <paramref name="run"/> starts.</summary>
    public int Start(int run) => First + run * Stride;
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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public T At(int i) => value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector512<T> VectorAt(int i) => _vector;
}

/// <summary>One value per element (per-column scales when the channels are the contiguous axis, γ along a row).</summary>
internal readonly ref struct PerElement<T>(ReadOnlySpan<T> values) : ICoefficient<T> where T : unmanaged
{
    private readonly ReadOnlySpan<T> _values = values;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public T At(int i) => _values[i];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector512<T> VectorAt(int i) => Vector512.LoadUnsafe(ref MemoryMarshal.GetReference(_values), (nuint)i);
}

/// <summary>An element-wise step out[i] = f(i) of the inputs it holds, in a scalar and a vector form (the vector of
/// the elements from i).</summary>
internal interface IElementwise<T> where T : unmanaged
{
    T At(int i);

    Vector512<T> VectorAt(int i);
}

/// <summary>y = (x − center)·scale + shift: one subtraction and one fused multiply-add per element. Subtracting the
/// centre first keeps the digits of x − μ when the mean is large against the spread, which
/// x·scale + (shift − center·scale) would cancel away.</summary>
internal readonly ref struct ShiftScale<T, TCoefficient>(ReadOnlySpan<T> x, TCoefficient center, TCoefficient scale, TCoefficient shift)
    : IElementwise<T> where T : unmanaged, IFloatingPointIeee754<T> where TCoefficient : ICoefficient<T>, allows ref struct
{
    private readonly ReadOnlySpan<T> _x = x;
    private readonly TCoefficient _center = center, _scale = scale, _shift = shift;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public T At(int i) => T.FusedMultiplyAdd(_x[i] - _center.At(i), _scale.At(i), _shift.At(i));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector512<T> VectorAt(int i) =>
        NormalizationSimd.MultiplyAdd(NormalizationSimd.Load(_x, i) - _center.VectorAt(i), _scale.VectorAt(i), _shift.VectorAt(i));
}

/// <summary>y = ((x − center)·scale + shift)·γᵢ + βᵢ: a row of LayerNorm or RMSNorm, normalized and given its
/// per-element affine in one visit (γ = 1 and β = 0 stand for an absent weight or bias).</summary>
internal readonly ref struct ShiftScaleAffine<T, TWeight, TBias>(ReadOnlySpan<T> x, T center, T scale, T shift, TWeight weight, TBias bias)
    : IElementwise<T> where T : unmanaged, IFloatingPointIeee754<T>
    where TWeight : ICoefficient<T>, allows ref struct where TBias : ICoefficient<T>, allows ref struct
{
    private readonly ShiftScale<T, Uniform<T>> _normalize = new(x, new(center), new(scale), new(shift));
    private readonly TWeight _weight = weight;
    private readonly TBias _bias = bias;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public T At(int i) => T.FusedMultiplyAdd(_normalize.At(i), _weight.At(i), _bias.At(i));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector512<T> VectorAt(int i) => NormalizationSimd.MultiplyAdd(_normalize.VectorAt(i), _weight.VectorAt(i), _bias.VectorAt(i));
}

/// <summary>dx = dy·a + (x − center)·k + l: the normalization backward pass once its reductions are known.</summary>
internal readonly ref struct GradientFromSums<T, TCoefficient>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, TCoefficient a, TCoefficient center, TCoefficient k, TCoefficient l)
    : IElementwise<T> where T : unmanaged, IFloatingPointIeee754<T> where TCoefficient : ICoefficient<T>, allows ref struct
{
    private readonly ReadOnlySpan<T> _dy = dy, _x = x;
    private readonly TCoefficient _a = a, _center = center, _k = k, _l = l;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public T At(int i) => T.FusedMultiplyAdd(_dy[i], _a.At(i), T.FusedMultiplyAdd(_x[i] - _center.At(i), _k.At(i), _l.At(i)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector512<T> VectorAt(int i) => NormalizationSimd.MultiplyAdd(NormalizationSimd.Load(_dy, i), _a.VectorAt(i),
        NormalizationSimd.MultiplyAdd(NormalizationSimd.Load(_x, i) - _center.VectorAt(i), _k.VectorAt(i), _l.VectorAt(i)));
}

/// <summary>The row path's dx = g·a + x̂·k + l with g = dy·γ and x̂ = (x − center)·scale + shift formed again from the
/// row (which is in cache) instead of being kept in scratch.</summary>
internal readonly ref struct RowGradient<T, TWeight>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, TWeight weight, T center, T scale, T shift, T a, T k, T l)
    : IElementwise<T> where T : unmanaged, IFloatingPointIeee754<T> where TWeight : ICoefficient<T>, allows ref struct
{
    private readonly ReadOnlySpan<T> _dy = dy;
    private readonly TWeight _weight = weight;
    private readonly ShiftScale<T, Uniform<T>> _xhat = new(x, new(center), new(scale), new(shift));
    private readonly Uniform<T> _a = new(a), _k = new(k), _l = new(l);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public T At(int i) => T.FusedMultiplyAdd(_dy[i] * _weight.At(i), _a.At(i), T.FusedMultiplyAdd(_xhat.At(i), _k.At(i), _l.At(i)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector512<T> VectorAt(int i) => NormalizationSimd.MultiplyAdd(NormalizationSimd.Load(_dy, i) * _weight.VectorAt(i), _a.VectorAt(i),
        NormalizationSimd.MultiplyAdd(_xhat.VectorAt(i), _k.VectorAt(i), _l.VectorAt(i)));
}

internal static class NormalizationSimd
{
    /// <summary>Vectors summed in the element type before the partial sums move to float64 (in two accumulators
    /// added at the end, so each lane holds at most BlockVectors terms).</summary>
    private const int BlockVectors = 16;

    /// <summary>Rows a column sum adds in the element type before it moves to float64.</summary>
    public const int BlockRows = 16;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Load<T>(ReadOnlySpan<T> span, int i) => Vector512.LoadUnsafe(ref MemoryMarshal.GetReference(span), (nuint)i);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> MultiplyAdd<T>(Vector512<T> a, Vector512<T> b, Vector512<T> c)
    {
        if (typeof(T) == typeof(float)) return Vector512.FusedMultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>();
        if (typeof(T) == typeof(double)) return Vector512.FusedMultiplyAdd(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();
        return a * b + c;
    }

    /// <summary>A mask of the lanes from <paramref name="first"/> on: the lanes of a span's last vector that the
    /// whole vectors before it have not covered.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> LanesFrom<T>(int first)
    {
        if (typeof(T) == typeof(float)) return Vector512.GreaterThanOrEqual(Vector512<int>.Indices, Vector512.Create(first)).As<int, T>();
        if (typeof(T) == typeof(double)) return Vector512.GreaterThanOrEqual(Vector512<long>.Indices, Vector512.Create((long)first)).As<long, T>();
        throw new NotSupportedException(typeof(T).Name);
    }

    /// <summary>The lanes of <paramref name="v"/> widened to float64 and added pairwise (float32 widens exactly).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<double> Widened<T>(Vector512<T> v)
    {
        if (typeof(T) != typeof(float)) return v.AsDouble();
        var (lower, upper) = Vector512.Widen(v.AsSingle());
        return lower + upper;
    }

    /// <summary>total[j..] += the lanes of <paramref name="v"/>, widened to float64 (8 or 16 columns).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddWidened<T>(Span<double> total, int j, Vector512<T> v)
    {
        ref double t = ref MemoryMarshal.GetReference(total);
        if (typeof(T) == typeof(float))
        {
            var (lower, upper) = Vector512.Widen(v.AsSingle());
            (Vector512.LoadUnsafe(ref t, (nuint)j) + lower).StoreUnsafe(ref t, (nuint)j);
            (Vector512.LoadUnsafe(ref t, (nuint)(j + 8)) + upper).StoreUnsafe(ref t, (nuint)(j + 8));
        }
        else (Vector512.LoadUnsafe(ref t, (nuint)j) + v.AsDouble()).StoreUnsafe(ref t, (nuint)j);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double Wide<T>(T value) where T : IFloatingPointIeee754<T> => double.CreateTruncating(value);

    private static bool Vectorizes<T>(int length) => Vector512.IsHardwareAccelerated && length >= Vector512<T>.Count;

    /// <summary>Σ xᵢ over the runs of a group, prefetching each run while the one before it is summed: the runs of a
    /// BatchNorm channel are far apart in memory and the hardware prefetcher would restart at each.</summary>
    public static double Sum<T>(ReadOnlySpan<T> x, Runs runs) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int width = Vector512<T>.Count, whole = runs.Length - runs.Length % width;
        double scalarTotal = 0;
        Vector512<double> total = Vector512<double>.Zero;
        for (int r = 0; r < runs.Count; r++)
        {
            ReadOnlySpan<T> run = x.Slice(runs.Start(r), runs.Length);
            if (r + 1 < runs.Count) Prefetch(x.Slice(runs.Start(r + 1), runs.Length));
            if (!Vectorizes<T>(run.Length))
            {
                foreach (T value in run) scalarTotal += Wide(value);
                continue;
            }
            for (int block = 0; block < whole; block += BlockVectors * width)
            {
                int end = Math.Min(whole, block + BlockVectors * width), i = block;
                Vector512<T> s0 = Vector512<T>.Zero, s1 = s0;
                for (; i < end - width; i += 2 * width)
                {
                    s0 += Load(run, i);
                    s1 += Load(run, i + width);
                }
                if (i < end) s0 += Load(run, i);
                total += Widened(s0 + s1);
            }
            if (whole < run.Length)
                total += Widened(Vector512.ConditionalSelect(LanesFrom<T>(whole - run.Length + width), Load(run, run.Length - width), Vector512<T>.Zero));
        }
        return scalarTotal + Vector512.Sum(total);
    }

    /// <summary>
    /// (Σ (aᵢ − p), Σ (aᵢ − p)·(bᵢ − q)) over the runs of a group. With a = b = x and p = q = c close to the mean it
    /// is the second pass of the corrected two-pass variance (Chan, Golub &amp; LeVeque 1983):
    /// mean = c + S₁/n, variance = S₂/n − (S₁/n)². With a = dy, p = 0, b = x and q = c it gives the two reductions
    /// of the backward pass, Σ dy and Σ dy·(x − c).
    /// </summary>
    public static (double Sum, double SumOfProducts) CenteredSums<T>(ReadOnlySpan<T> a, T centerA, ReadOnlySpan<T> b, T centerB, Runs runs)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int width = Vector512<T>.Count, whole = runs.Length - runs.Length % width;
        double scalarSum = 0, scalarProducts = 0;
        Vector512<double> sum = Vector512<double>.Zero, products = sum;
        Vector512<T> p = Vector512.Create(centerA), q = Vector512.Create(centerB);
        // The variance's sums read one span: (x − c)² needs no second load.
        bool squares = Unsafe.AreSame(ref MemoryMarshal.GetReference(a), ref MemoryMarshal.GetReference(b)) && centerA == centerB;
        for (int r = 0; r < runs.Count; r++)
        {
            ReadOnlySpan<T> runA = a.Slice(runs.Start(r), runs.Length), runB = b.Slice(runs.Start(r), runs.Length);
            if (!Vectorizes<T>(runA.Length))
            {
                for (int i = 0; i < runA.Length; i++)
                {
                    double ai = Wide(runA[i] - centerA);
                    scalarSum += ai;
                    scalarProducts += ai * Wide(runB[i] - centerB);
                }
                continue;
            }
            for (int block = 0; block < whole; block += BlockVectors * width)
            {
                int end = Math.Min(whole, block + BlockVectors * width), i = block;
                Vector512<T> s0 = Vector512<T>.Zero, s1 = s0, m0 = s0, m1 = s0;
                for (; i < end - width; i += 2 * width)
                {
                    Vector512<T> a0 = Load(runA, i) - p, a1 = Load(runA, i + width) - p;
                    s0 += a0;
                    s1 += a1;
                    m0 = MultiplyAdd(a0, squares ? a0 : Load(runB, i) - q, m0);
                    m1 = MultiplyAdd(a1, squares ? a1 : Load(runB, i + width) - q, m1);
                }
                if (i < end)
                {
                    Vector512<T> a0 = Load(runA, i) - p;
                    s0 += a0;
                    m0 = MultiplyAdd(a0, squares ? a0 : Load(runB, i) - q, m0);
                }
                sum += Widened(s0 + s1);
                products += Widened(m0 + m1);
            }
            if (whole < runA.Length)
            {
                int last = runA.Length - width;
                Vector512<T> tail = Vector512.ConditionalSelect(LanesFrom<T>(whole - last), Load(runA, last) - p, Vector512<T>.Zero);
                sum += Widened(tail);
                products += Widened(tail * (Load(runB, last) - q));
            }
        }
        return (scalarSum + Vector512.Sum(sum), scalarProducts + Vector512.Sum(products));
    }

    /// <summary>
    /// One row of the row path's backward pass: (Σ gᵢ, Σ gᵢ·x̂ᵢ) with g = dy·γ and x̂ = (x − center)·scale + shift,
    /// and, unless <paramref name="columnDy"/> is empty, columnDy[i] += dyᵢ and columnDyXhat[i] += dyᵢ·x̂ᵢ: the row's
    /// share of dβ and dγ, kept in the element type for a few rows by the caller.
    /// </summary>
    public static (double SumG, double SumGXhat) RowGradientSums<T, TWeight>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, TWeight weight,
        T center, T scale, T shift, Span<T> columnDy, Span<T> columnDyXhat)
        where T : unmanaged, IFloatingPointIeee754<T> where TWeight : ICoefficient<T>, allows ref struct
    {
        var xhat = new ShiftScale<T, Uniform<T>>(x, new(center), new(scale), new(shift));
        bool columns = !columnDy.IsEmpty;
        int width = Vector512<T>.Count, length = dy.Length;
        if (!Vectorizes<T>(length))
        {
            double sumG = 0, sumGXhat = 0;
            for (int i = 0; i < length; i++)
            {
                T h = xhat.At(i), g = dy[i] * weight.At(i);
                sumG += Wide(g);
                sumGXhat += Wide(g) * Wide(h);
                if (!columns) continue;
                columnDy[i] += dy[i];
                columnDyXhat[i] = T.FusedMultiplyAdd(dy[i], h, columnDyXhat[i]);
            }
            return (sumG, sumGXhat);
        }
        Vector512<double> sum = Vector512<double>.Zero, products = sum;
        int whole = length - length % width;
        for (int block = 0; block < whole; block += BlockVectors * width)
        {
            // Two pairs of accumulators, so that each sum waits on the add before last.
            Vector512<T> s = Vector512<T>.Zero, m = s, otherS = s, otherM = s;
            int i = block, end = Math.Min(whole, block + BlockVectors * width);
            for (; i < end - width; i += 2 * width)
            {
                RowGradientStep(dy, xhat, weight, columnDy, columnDyXhat, i, ref s, ref m);
                RowGradientStep(dy, xhat, weight, columnDy, columnDyXhat, i + width, ref otherS, ref otherM);
            }
            if (i < end) RowGradientStep(dy, xhat, weight, columnDy, columnDyXhat, i, ref s, ref m);
            sum += Widened(s + otherS);
            products += Widened(m + otherM);
        }
        if (whole < length)
        {
            int last = length - width;
            Vector512<T> lanes = LanesFrom<T>(whole - last);
            Vector512<T> d = Vector512.ConditionalSelect(lanes, Load(dy, last), Vector512<T>.Zero), h = xhat.VectorAt(last), g = d * weight.VectorAt(last);
            sum += Widened(g);
            products += Widened(g * h);
            if (columns) AccumulateColumns(columnDy, columnDyXhat, last, d, h);
        }
        return (Vector512.Sum(sum), Vector512.Sum(products));
    }

    /// <summary>One vector of <see cref="RowGradientSums{T, TWeight}"/>: g = dy·γ into Σg, g·x̂ into Σg·x̂, and the
    /// column sums unless <paramref name="columnDy"/> is empty.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RowGradientStep<T, TWeight>(ReadOnlySpan<T> dy, in ShiftScale<T, Uniform<T>> xhat, in TWeight weight,
        Span<T> columnDy, Span<T> columnDyXhat, int i, ref Vector512<T> sumG, ref Vector512<T> sumGXhat)
        where T : unmanaged, IFloatingPointIeee754<T> where TWeight : ICoefficient<T>, allows ref struct
    {
        Vector512<T> d = Load(dy, i), h = xhat.VectorAt(i), g = d * weight.VectorAt(i);
        sumG += g;
        sumGXhat = MultiplyAdd(g, h, sumGXhat);
        if (!columnDy.IsEmpty) AccumulateColumns(columnDy, columnDyXhat, i, d, h);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AccumulateColumns<T>(Span<T> columnDy, Span<T> columnDyXhat, int i, Vector512<T> dy, Vector512<T> xhat)
    {
        ref T c = ref MemoryMarshal.GetReference(columnDy);
        ref T cx = ref MemoryMarshal.GetReference(columnDyXhat);
        (Vector512.LoadUnsafe(ref c, (nuint)i) + dy).StoreUnsafe(ref c, (nuint)i);
        MultiplyAdd(dy, xhat, Vector512.LoadUnsafe(ref cx, (nuint)i)).StoreUnsafe(ref cx, (nuint)i);
    }

    /// <summary>total[j] += partial[j] in float64 for every column j: a few rows' column sums, kept in the element
    /// type, moved to the wide sums.</summary>
    public static void AddWidened<T>(ReadOnlySpan<T> partial, Span<double> total) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; j <= partial.Length - Vector512<T>.Count; j += Vector512<T>.Count) AddWidened(total, j, Load(partial, j));
        for (; j < partial.Length; j++) total[j] += Wide(partial[j]);
    }

    /// <summary>
    /// Per-column (Σₙ (a[n, j] − p_j), Σₙ (a[n, j] − p_j)·(b[n, j] − q_j)) added into <paramref name="sum"/> and
    /// <paramref name="products"/> for the columns of a strip of a (rows, stride) matrix (the spans start at the
    /// strip's first column; its width is sum.Length). The column path's counterpart of
    /// <see cref="CenteredSums{T}"/>: four vectors hold one row's part of 64 (or 32) neighbouring columns and walk
    /// down the rows together, adding BlockRows rows in the element type before widening, so each element costs one
    /// add and one fused multiply-add and each row visit reads four whole cache lines. An empty
    /// <paramref name="products"/> skips the second sum.
    /// </summary>
    public static void ColumnCenteredSums<T, TCenterA, TCenterB>(ReadOnlySpan<T> a, TCenterA centerA, ReadOnlySpan<T> b, TCenterB centerB,
        int rows, int stride, Span<double> sum, Span<double> products)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TCenterA : ICoefficient<T>, allows ref struct where TCenterB : ICoefficient<T>, allows ref struct
    {
        int width = Vector512<T>.Count, columns = sum.Length;
        bool wantProducts = !products.IsEmpty;
        if (!Vectorizes<T>(columns))
        {
            for (int n = 0; n < rows; n++)
                for (int j = 0; j < columns; j++)
                {
                    double aj = Wide(a[n * stride + j] - centerA.At(j));
                    sum[j] += aj;
                    if (wantProducts) products[j] += aj * Wide(b[n * stride + j] - centerB.At(j));
                }
            return;
        }
        for (int first = 0; first < columns; first += 4 * width)
        {
            // A vector that would pass the strip's end ends with it instead; its lanes that another vector covers
            // (all of them, for a strip narrower than four vectors) add nothing.
            int last = columns - width;
            int j0 = Math.Min(first, last), j1 = Math.Min(first + width, last), j2 = Math.Min(first + 2 * width, last), j3 = Math.Min(first + 3 * width, last);
            Vector512<T> p0 = centerA.VectorAt(j0), p1 = centerA.VectorAt(j1), p2 = centerA.VectorAt(j2), p3 = centerA.VectorAt(j3);
            Vector512<T> q0 = centerB.VectorAt(j0), q1 = centerB.VectorAt(j1), q2 = centerB.VectorAt(j2), q3 = centerB.VectorAt(j3);
            for (int block = 0; block < rows; block += BlockRows)
            {
                Vector512<T> s0 = Vector512<T>.Zero, s1 = s0, s2 = s0, s3 = s0, m0 = s0, m1 = s0, m2 = s0, m3 = s0;
                for (int n = block, end = Math.Min(rows, block + BlockRows); n < end; n++)
                {
                    int row = n * stride;
                    Vector512<T> d0 = Load(a, row + j0) - p0, d1 = Load(a, row + j1) - p1, d2 = Load(a, row + j2) - p2, d3 = Load(a, row + j3) - p3;
                    s0 += d0;
                    s1 += d1;
                    s2 += d2;
                    s3 += d3;
                    if (!wantProducts) continue;
                    m0 = MultiplyAdd(d0, Load(b, row + j0) - q0, m0);
                    m1 = MultiplyAdd(d1, Load(b, row + j1) - q1, m1);
                    m2 = MultiplyAdd(d2, Load(b, row + j2) - q2, m2);
                    m3 = MultiplyAdd(d3, Load(b, row + j3) - q3, m3);
                }
                AddColumnSums(sum, products, j0, first - j0, s0, m0);
                AddColumnSums(sum, products, j1, first + width - j1, s1, m1);
                AddColumnSums(sum, products, j2, first + 2 * width - j2, s2, m2);
                AddColumnSums(sum, products, j3, first + 3 * width - j3, s3, m3);
            }
        }
    }

    /// <summary>
    /// Mean and M₂ = Σ(x − mean)² of every column of a strip of a (rows, stride) matrix (the span starts at the
    /// strip's first column; its width is mean.Length), reading the strip once. Each block of BlockRows rows is summed
    /// twice while it is in L1: once for its centre c (the block mean rounded to T), once for S₁ = Σ(x − c) and
    /// S₂ = Σ(x − c)², the corrected two-pass algorithm inside the block, exact however large the mean is against the
    /// spread. The blocks are merged in float64 by Chan, Golub &amp; LeVeque's (1979) pairwise update:
    /// δ = mean_B − mean_A, mean += δ·n_B/n, M₂ += M₂_B + δ²·n_A·n_B/n. Four vectors of columns walk down the rows
    /// together, as in <see cref="ColumnCenteredSums{T, TCenterA, TCenterB}"/>.
    /// </summary>
    public static void ColumnMeanAndM2<T>(ReadOnlySpan<T> x, int rows, int stride, Span<double> mean, Span<double> m2)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int width = Vector512<T>.Count, columns = mean.Length;
        if (!Vectorizes<T>(columns))
        {
            for (int j = 0; j < columns; j++)
            {
                double sum = 0, squares = 0;
                for (int n = 0; n < rows; n++) sum += Wide(x[n * stride + j]);
                mean[j] = sum / rows;
                for (int n = 0; n < rows; n++) squares += (Wide(x[n * stride + j]) - mean[j]) * (Wide(x[n * stride + j]) - mean[j]);
                m2[j] = squares;
            }
            return;
        }
        for (int first = 0; first < columns; first += 4 * width)
        {
            int last = columns - width;
            int j0 = Math.Min(first, last), j1 = Math.Min(first + width, last), j2 = Math.Min(first + 2 * width, last), j3 = Math.Min(first + 3 * width, last);
            for (int block = 0; block < rows; block += BlockRows)
            {
                int end = Math.Min(rows, block + BlockRows);
                Vector512<T> c0 = Vector512<T>.Zero, c1 = c0, c2 = c0, c3 = c0;
                for (int n = block; n < end; n++)
                {
                    int row = n * stride;
                    c0 += Load(x, row + j0);
                    c1 += Load(x, row + j1);
                    c2 += Load(x, row + j2);
                    c3 += Load(x, row + j3);
                }
                T inverseCount = T.One / T.CreateTruncating(end - block);
                c0 *= inverseCount;
                c1 *= inverseCount;
                c2 *= inverseCount;
                c3 *= inverseCount;
                Vector512<T> s0 = Vector512<T>.Zero, s1 = s0, s2 = s0, s3 = s0, q0 = s0, q1 = s0, q2 = s0, q3 = s0;
                for (int n = block; n < end; n++)
                {
                    int row = n * stride;
                    Vector512<T> d0 = Load(x, row + j0) - c0, d1 = Load(x, row + j1) - c1, d2 = Load(x, row + j2) - c2, d3 = Load(x, row + j3) - c3;
                    s0 += d0;
                    s1 += d1;
                    s2 += d2;
                    s3 += d3;
                    q0 = MultiplyAdd(d0, d0, q0);
                    q1 = MultiplyAdd(d1, d1, q1);
                    q2 = MultiplyAdd(d2, d2, q2);
                    q3 = MultiplyAdd(d3, d3, q3);
                }
                MergeColumnBlock(mean, m2, j0, first - j0, block, end - block, c0, s0, q0);
                MergeColumnBlock(mean, m2, j1, first + width - j1, block, end - block, c1, s1, q1);
                MergeColumnBlock(mean, m2, j2, first + 2 * width - j2, block, end - block, c2, s2, q2);
                MergeColumnBlock(mean, m2, j3, first + 3 * width - j3, block, end - block, c3, s3, q3);
            }
        }
    }

    /// <summary>Merges one block's (centre, S₁, S₂) of the columns from <paramref name="j"/> + firstLane on into the
    /// running float64 mean and M₂ of the rows before it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MergeColumnBlock<T>(Span<double> mean, Span<double> m2, int j, int firstLane, int before, int count,
        Vector512<T> center, Vector512<T> sum, Vector512<T> squares)
    {
        if (firstLane >= Vector512<T>.Count) return;
        if (typeof(T) != typeof(float))
        {
            MergeColumnBlock(mean, m2, j, LanesFrom<double>(firstLane), before, count, center.AsDouble(), sum.AsDouble(), squares.AsDouble());
            return;
        }
        var (centerLower, centerUpper) = Vector512.Widen(center.AsSingle());
        var (sumLower, sumUpper) = Vector512.Widen(sum.AsSingle());
        var (squaresLower, squaresUpper) = Vector512.Widen(squares.AsSingle());
        MergeColumnBlock(mean, m2, j, LanesFrom<double>(firstLane), before, count, centerLower, sumLower, squaresLower);
        MergeColumnBlock(mean, m2, j + 8, LanesFrom<double>(firstLane - 8), before, count, centerUpper, sumUpper, squaresUpper);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MergeColumnBlock(Span<double> mean, Span<double> m2, int j, Vector512<double> lanes, int before, int count,
        Vector512<double> center, Vector512<double> sum, Vector512<double> squares)
    {
        ref double meanAt = ref MemoryMarshal.GetReference(mean), m2At = ref MemoryMarshal.GetReference(m2);
        Vector512<double> shift = sum / count, blockMean = center + shift, blockM2 = squares - sum * shift;
        Vector512<double> oldMean = Vector512.LoadUnsafe(ref meanAt, (nuint)j), oldM2 = Vector512.LoadUnsafe(ref m2At, (nuint)j);
        Vector512<double> delta = blockMean - oldMean;
        double total = before + count;
        Vector512<double> newMean = before == 0 ? blockMean : oldMean + delta * (count / total);
        Vector512<double> newM2 = before == 0 ? blockM2 : oldM2 + blockM2 + delta * delta * (before * (double)count / total);
        Vector512.ConditionalSelect(lanes, newMean, oldMean).StoreUnsafe(ref meanAt, (nuint)j);
        Vector512.ConditionalSelect(lanes, newM2, oldM2).StoreUnsafe(ref m2At, (nuint)j);
    }

    /// <summary>Adds the lanes from <paramref name="firstLane"/> on of one vector's column sums (and products,
    /// unless that span is empty) into the float64 totals at column <paramref name="j"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddColumnSums<T>(Span<double> sum, Span<double> products, int j, int firstLane, Vector512<T> s, Vector512<T> m)
    {
        if (firstLane >= Vector512<T>.Count) return;
        Vector512<T> lanes = LanesFrom<T>(firstLane);
        AddWidened(sum, j, Vector512.ConditionalSelect(lanes, s, Vector512<T>.Zero));
        if (!products.IsEmpty) AddWidened(products, j, Vector512.ConditionalSelect(lanes, m, Vector512<T>.Zero));
    }

    /// <summary>Writes out[i] = op(i) for every i. The whole vectors start on a 64-byte boundary (a Vector512 store
    /// that straddles two cache lines costs about twice as much), and with <paramref name="streaming"/> they bypass
    /// the cache (an output larger than the cache is not read back soon, and this saves reading each line before
    /// writing it). The elements before the first boundary and after the last whole vector come from the vectors that
    /// start and end the span, moved into place and written with a masked store to their own line: a store that
    /// only touches a line that a streaming store has written costs a round trip to memory.</summary>
    public static unsafe void Write<T, TOp>(Span<T> output, TOp op, bool streaming = false)
        where T : unmanaged, IFloatingPointIeee754<T> where TOp : IElementwise<T>, allows ref struct
    {
        int width = Vector512<T>.Count, length = output.Length;
        if (!Vectorizes<T>(length) || !Avx512F.IsSupported)
        {
            for (int i = 0; i < length; i++) output[i] = op.At(i);
            return;
        }
        fixed (T* pinned = &MemoryMarshal.GetReference(output)) // the alignment found below must hold for the whole loop
        {
            int misalignment = (int)((nuint)pinned % 64), head = misalignment == 0 ? 0 : (64 - misalignment) / sizeof(T), i = head;
            // The line holding the first elements starts before the span; the masked lanes are not touched.
            if (head > 0) MaskedStore(pinned + head - width, LanesFrom<T>(width - head), MoveLanes(op.VectorAt(0), width - head));
            for (; i <= length - width; i += width) Store(op.VectorAt(i), pinned + i, streaming);
            if (i < length) MaskedStore(pinned + i, ~LanesFrom<T>(length - i), MoveLanes(op.VectorAt(length - width), length - i - width));
        }
    }

    /// <summary>The lanes of <paramref name="v"/> moved up by <paramref name="shift"/> (down when negative): lane k
    /// takes lane k − shift.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> MoveLanes<T>(Vector512<T> v, int shift)
    {
        if (typeof(T) == typeof(float)) return Vector512.Shuffle(v.AsSingle(), Vector512<int>.Indices - Vector512.Create(shift)).As<float, T>();
        return Vector512.Shuffle(v.AsDouble(), Vector512<long>.Indices - Vector512.Create((long)shift)).As<double, T>();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void MaskedStore<T>(T* address, Vector512<T> lanes, Vector512<T> value) where T : unmanaged
    {
        if (typeof(T) == typeof(float)) Avx512F.MaskStore((float*)address, lanes.AsSingle(), value.AsSingle());
        else Avx512F.MaskStore((double*)address, lanes.AsDouble(), value.AsDouble());
    }

    /// <summary>Stores a vector at a 64-byte aligned address, past the cache when <paramref name="streaming"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Store<T>(Vector512<T> value, T* address, bool streaming) where T : unmanaged
    {
        if (streaming && Avx512F.IsSupported)
        {
            if (typeof(T) == typeof(float)) Avx512F.StoreAlignedNonTemporal((float*)address, value.AsSingle());
            else Avx512F.StoreAlignedNonTemporal((double*)address, value.AsDouble());
        }
        else value.StoreAligned(address);
    }

    /// <summary>Asks the cache for the lines of <paramref name="run"/> ahead of use.</summary>
    private static unsafe void Prefetch<T>(ReadOnlySpan<T> run) where T : unmanaged
    {
        if (!Sse.IsSupported) return;
        byte* start = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(run));
        for (long offset = 0; offset < (long)run.Length * sizeof(T); offset += 64) Sse.Prefetch0(start + offset);
    }
}
