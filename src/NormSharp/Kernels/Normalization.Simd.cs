using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace NormSharp.Kernels;

// The SIMD layer of the normalization kernels, written in the manner of TensorPrimitives: the arithmetic of each
// element-wise step is stated once, as an operation with a scalar and a vector form, and one driver handles the
// vector width, the alignment of the output and the tail. Reductions add whole vectors in the element type and move
// the partial sums to float64 every BlockVectors vectors (32 of 128 bits in the statistics' sums), so no float32 lane
// ever holds more than a few dozen terms: a float32 channel of a million values with mean 1e4 sums without losing its
// low digits, while the inner loops stay one add (or one fused multiply-add) per vector. A span that is not a whole number of vectors ends with the vector
// that ends with the span: reductions zero the lanes they have already counted, and element-wise steps store only
// the lanes not yet written, so that no element is ever handled one at a time. Every step is written once against
// ISimdVector (SimdVector.cs) and runs at the widest vector width the machine has (512, 256 or 128 bits); spans
// shorter than one vector use the scalar forms. Results are identical for a given width and thread count.

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

    TVector VectorAt<TVector>(int i) where TVector : struct, ISimdVector<TVector, T>;
}

/// <summary>The same value for every element (a channel's scale in BatchNorm).</summary>
internal readonly struct Uniform<T>(T value) : ICoefficient<T> where T : unmanaged
{
    private readonly T _value = value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public T At(int i) => _value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVector VectorAt<TVector>(int i) where TVector : struct, ISimdVector<TVector, T> => TVector.Create(_value);
}

/// <summary>One value per element (per-column scales when the channels are the contiguous axis, γ along a row).</summary>
internal readonly ref struct PerElement<T>(ReadOnlySpan<T> values) : ICoefficient<T> where T : unmanaged
{
    private readonly ReadOnlySpan<T> _values = values;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public T At(int i) => _values[i];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVector VectorAt<TVector>(int i) where TVector : struct, ISimdVector<TVector, T> => NormalizationSimd.Load<T, TVector>(_values, i);
}

/// <summary>An element-wise step out[i] = f(i) of the inputs it holds, in a scalar and a vector form (the vector of
/// the elements from i).</summary>
internal interface IElementwise<T> where T : unmanaged
{
    T At(int i);

    TVector VectorAt<TVector>(int i) where TVector : struct, ISimdVector<TVector, T>;
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
    public T At(int i) => T.MultiplyAddEstimate(_x[i] - _center.At(i), _scale.At(i), _shift.At(i));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVector VectorAt<TVector>(int i) where TVector : struct, ISimdVector<TVector, T> =>
        TVector.MultiplyAdd(NormalizationSimd.Load<T, TVector>(_x, i) - _center.VectorAt<TVector>(i), _scale.VectorAt<TVector>(i), _shift.VectorAt<TVector>(i));
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
    public T At(int i) => T.MultiplyAddEstimate(_normalize.At(i), _weight.At(i), _bias.At(i));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVector VectorAt<TVector>(int i) where TVector : struct, ISimdVector<TVector, T> =>
        TVector.MultiplyAdd(_normalize.VectorAt<TVector>(i), _weight.VectorAt<TVector>(i), _bias.VectorAt<TVector>(i));
}

/// <summary>dx = dy·a + (x − center)·k + l: the normalization backward pass once its reductions are known.</summary>
internal readonly ref struct GradientFromSums<T, TCoefficient>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, TCoefficient a, TCoefficient center, TCoefficient k, TCoefficient l)
    : IElementwise<T> where T : unmanaged, IFloatingPointIeee754<T> where TCoefficient : ICoefficient<T>, allows ref struct
{
    private readonly ReadOnlySpan<T> _dy = dy, _x = x;
    private readonly TCoefficient _a = a, _center = center, _k = k, _l = l;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public T At(int i) => T.MultiplyAddEstimate(_dy[i], _a.At(i), T.MultiplyAddEstimate(_x[i] - _center.At(i), _k.At(i), _l.At(i)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVector VectorAt<TVector>(int i) where TVector : struct, ISimdVector<TVector, T> =>
        TVector.MultiplyAdd(NormalizationSimd.Load<T, TVector>(_dy, i), _a.VectorAt<TVector>(i),
        TVector.MultiplyAdd(NormalizationSimd.Load<T, TVector>(_x, i) - _center.VectorAt<TVector>(i), _k.VectorAt<TVector>(i), _l.VectorAt<TVector>(i)));
}

/// <summary>An element-wise step over one run whose coefficients are the same throughout, for
/// <see cref="NormalizationSimd.WriteRun"/>: it holds the coefficients as vectors, made once, and loads at a
/// native-sized offset.</summary>
internal interface IRunStep<T, TVector> where T : unmanaged where TVector : struct, ISimdVector<TVector, T>
{
    T At(int i);

    TVector VectorAt(nuint i);
}

/// <summary><see cref="ShiftScale{T, TCoefficient}"/> with uniform coefficients, as a <see cref="IRunStep{T, TVector}"/>.</summary>
internal readonly ref struct ShiftScaleStep<T, TVector>(ReadOnlySpan<T> x, T center, T scale, T shift) : IRunStep<T, TVector>
    where T : unmanaged, IFloatingPointIeee754<T> where TVector : struct, ISimdVector<TVector, T>
{
    private readonly ref readonly T _x = ref MemoryMarshal.GetReference(x);
    private readonly T _center = center, _scale = scale, _shift = shift;
    private readonly TVector _centers = TVector.Create(center), _scales = TVector.Create(scale), _shifts = TVector.Create(shift);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public T At(int i) => T.MultiplyAddEstimate(Unsafe.Add(ref Unsafe.AsRef(in _x), i) - _center, _scale, _shift);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVector VectorAt(nuint i) => TVector.MultiplyAdd(TVector.LoadUnsafe(in _x, i) - _centers, _scales, _shifts);
}

/// <summary><see cref="GradientFromSums{T, TCoefficient}"/> with uniform coefficients, as a <see cref="IRunStep{T, TVector}"/>.</summary>
internal readonly ref struct GradientStep<T, TVector>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, T a, T center, T k, T l) : IRunStep<T, TVector>
    where T : unmanaged, IFloatingPointIeee754<T> where TVector : struct, ISimdVector<TVector, T>
{
    private readonly ref readonly T _dy = ref MemoryMarshal.GetReference(dy), _x = ref MemoryMarshal.GetReference(x);
    private readonly T _a = a, _center = center, _k = k, _l = l;
    private readonly TVector _as = TVector.Create(a), _centers = TVector.Create(center), _ks = TVector.Create(k), _ls = TVector.Create(l);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public T At(int i) =>
        T.MultiplyAddEstimate(Unsafe.Add(ref Unsafe.AsRef(in _dy), i), _a, T.MultiplyAddEstimate(Unsafe.Add(ref Unsafe.AsRef(in _x), i) - _center, _k, _l));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVector VectorAt(nuint i) =>
        TVector.MultiplyAdd(TVector.LoadUnsafe(in _dy, i), _as, TVector.MultiplyAdd(TVector.LoadUnsafe(in _x, i) - _centers, _ks, _ls));
}

/// <summary>The row path's dx = g·a + (x − center)·k + l with g = dy·γ, formed again from the row (which is in cache)
/// instead of being kept in scratch: <see cref="GradientFromSums{T, TCoefficient}"/> with γ per element, four
/// operations per element (x̂ itself is folded into k and l).</summary>
internal readonly ref struct RowGradient<T, TWeight>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, TWeight weight, T center, T a, T k, T l)
    : IElementwise<T> where T : unmanaged, IFloatingPointIeee754<T> where TWeight : ICoefficient<T>, allows ref struct
{
    private readonly ReadOnlySpan<T> _dy = dy, _x = x;
    private readonly TWeight _weight = weight;
    private readonly Uniform<T> _center = new(center), _a = new(a), _k = new(k), _l = new(l);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public T At(int i) => T.MultiplyAddEstimate(_dy[i] * _weight.At(i), _a.At(i), T.MultiplyAddEstimate(_x[i] - _center.At(i), _k.At(i), _l.At(i)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVector VectorAt<TVector>(int i) where TVector : struct, ISimdVector<TVector, T> =>
        TVector.MultiplyAdd(NormalizationSimd.Load<T, TVector>(_dy, i) * _weight.VectorAt<TVector>(i), _a.VectorAt<TVector>(i),
        TVector.MultiplyAdd(NormalizationSimd.Load<T, TVector>(_x, i) - _center.VectorAt<TVector>(i), _k.VectorAt<TVector>(i), _l.VectorAt<TVector>(i)));
}


/// <summary>Up to four coefficient vectors of the columns from one index on, loaded once for a block of rows.</summary>
internal readonly struct ColumnCoefficients<TVector>(TVector center, TVector scale, TVector shift, TVector dyScale) where TVector : struct
{
    public readonly TVector Center = center, Scale = scale, Shift = shift, DyScale = dyScale;
}

/// <summary>An element-wise step over the rows of a (rows, columns) matrix whose coefficients are per column (the
/// column path), for <see cref="NormalizationSimd.WriteRows{T, TOp, TVector}"/>: the element at flat index i in
/// column j, and in vector form the elements from flat index i given their columns' coefficient vectors.</summary>
internal interface IColumnwise<T> where T : unmanaged
{
    T At(int i, int j);

    ColumnCoefficients<TVector> CoefficientsAt<TVector>(nuint j) where TVector : struct, ISimdVector<TVector, T>;

    TVector VectorAt<TVector>(nuint i, in ColumnCoefficients<TVector> coefficients) where TVector : struct, ISimdVector<TVector, T>;
}

/// <summary>y = (x − center)·scale + shift with per-column coefficients (<see cref="ShiftScale{T, TCoefficient}"/>'s arithmetic).</summary>
internal readonly ref struct ShiftScaleColumns<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> center, ReadOnlySpan<T> scale, ReadOnlySpan<T> shift)
    : IColumnwise<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly ReadOnlySpan<T> _x = x, _center = center, _scale = scale, _shift = shift;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public T At(int i, int j) => T.MultiplyAddEstimate(_x[i] - _center[j], _scale[j], _shift[j]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ColumnCoefficients<TVector> CoefficientsAt<TVector>(nuint j) where TVector : struct, ISimdVector<TVector, T> =>
        new(NormalizationSimd.Load<T, TVector>(_center, (int)j), NormalizationSimd.Load<T, TVector>(_scale, (int)j), NormalizationSimd.Load<T, TVector>(_shift, (int)j), default);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVector VectorAt<TVector>(nuint i, in ColumnCoefficients<TVector> c) where TVector : struct, ISimdVector<TVector, T> =>
        TVector.MultiplyAdd(TVector.LoadUnsafe(in MemoryMarshal.GetReference(_x), i) - c.Center, c.Scale, c.Shift);
}

/// <summary>dx = dy·a + (x − center)·k + l with per-column coefficients (<see cref="GradientFromSums{T, TCoefficient}"/>'s arithmetic).</summary>
internal readonly ref struct GradientColumns<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> a, ReadOnlySpan<T> center, ReadOnlySpan<T> k, ReadOnlySpan<T> l)
    : IColumnwise<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly ReadOnlySpan<T> _dy = dy, _x = x, _a = a, _center = center, _k = k, _l = l;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public T At(int i, int j) => T.MultiplyAddEstimate(_dy[i], _a[j], T.MultiplyAddEstimate(_x[i] - _center[j], _k[j], _l[j]));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ColumnCoefficients<TVector> CoefficientsAt<TVector>(nuint j) where TVector : struct, ISimdVector<TVector, T> =>
        new(NormalizationSimd.Load<T, TVector>(_center, (int)j), NormalizationSimd.Load<T, TVector>(_k, (int)j), NormalizationSimd.Load<T, TVector>(_l, (int)j),
            NormalizationSimd.Load<T, TVector>(_a, (int)j));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVector VectorAt<TVector>(nuint i, in ColumnCoefficients<TVector> c) where TVector : struct, ISimdVector<TVector, T> =>
        TVector.MultiplyAdd(TVector.LoadUnsafe(in MemoryMarshal.GetReference(_dy), i), c.DyScale,
        TVector.MultiplyAdd(TVector.LoadUnsafe(in MemoryMarshal.GetReference(_x), i) - c.Center, c.Scale, c.Shift));
}


/// <summary>The reductions and the write driver of the normalization kernels. Each public method without vector type
/// parameters runs its width-generic form at the widest width the machine accelerates (inlined, so the choice costs
/// nothing: the JIT knows the width, and a caller that walks thousands of short runs pays no extra call); the generic
/// forms are callable at any width (the tests run every width on any machine).</summary>
internal static class NormalizationSimd
{
    /// <summary>Vectors summed in the element type before the partial sums move to float64 (in two or four
    /// accumulators added at the end, so each lane holds at most BlockVectors terms; see also
    /// <see cref="ReductionBlock"/>).</summary>
    private const int BlockVectors = 16;

    /// <summary>Vectors a block of <see cref="CenteredSums{T, TVector, TWide}"/> and <see cref="CenteredSquares"/>
    /// adds in the element type: <see cref="BlockVectors"/>, and twice as many with 128-bit vectors, whose float32
    /// lanes then hold 32 terms. Moving a block's two sums to float64 takes about fourteen operations, a quarter of
    /// the additions of sixteen vectors, at any width; with 128-bit vectors and no FMA (x86 with AVX2 off) the
    /// statistics pass is bound by the floating-point adders (three additions a vector), and BatchNorm2d 64x64x56x56's took 1.81–1.83 ms instead of
    /// 2.02–2.03 (one thread, same-process alternating rounds, AMD EPYC, DOTNET_EnableAVX2=0). Wider vectors read
    /// memory at the same speed either way and keep their bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int ReductionBlock<T, TVector>() where T : unmanaged where TVector : struct, ISimdVector<TVector, T> =>
        TVector.Count * Unsafe.SizeOf<T>() == 16 ? 2 * BlockVectors : BlockVectors;

    /// <summary>Type arguments for a choice made when a kernel is compiled (typeof(TChoice) == typeof(Yes) is a
    /// constant to the JIT, which drops the branch not taken).</summary>
    private readonly struct Yes;

    /// <inheritdoc cref="Yes"/>
    private readonly struct No;

    /// <summary>Rows a column sum adds in the element type before it moves to float64.</summary>
    public const int BlockRows = 16;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Load<T, TVector>(ReadOnlySpan<T> span, int i) where T : unmanaged where TVector : struct, ISimdVector<TVector, T> =>
        TVector.LoadUnsafe(in MemoryMarshal.GetReference(span), (nuint)i);

    /// <summary>The lanes of <paramref name="v"/> widened to float64 and added pairwise (float32 widens exactly).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TWide Widened<T, TVector, TWide>(TVector v) where T : unmanaged
        where TVector : struct, IWideningVector<TVector, T, TWide> where TWide : struct, ISimdVector<TWide, double> =>
        TVector.Count == TWide.Count ? TVector.WidenLower(v) : TVector.WidenLower(v) + TVector.WidenUpper(v);

    /// <summary>total[j..] += the lanes of <paramref name="v"/>, widened to float64.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddWidened<T, TVector, TWide>(Span<double> total, int j, TVector v) where T : unmanaged
        where TVector : struct, IWideningVector<TVector, T, TWide> where TWide : struct, ISimdVector<TWide, double>
    {
        ref double t = ref MemoryMarshal.GetReference(total);
        (TWide.LoadUnsafe(in t, (nuint)j) + TVector.WidenLower(v)).StoreUnsafe(ref t, (nuint)j);
        if (TVector.Count > TWide.Count)
            (TWide.LoadUnsafe(in t, (nuint)(j + TWide.Count)) + TVector.WidenUpper(v)).StoreUnsafe(ref t, (nuint)(j + TWide.Count));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double Wide<T>(T value) where T : IFloatingPointIeee754<T> => double.CreateTruncating(value);

    /// <summary>Σ vᵢ in float64 over a short span (a group's first elements, whose mean is its pilot centre): whole
    /// vectors widened to float64, then the elements past them one at a time. A scalar loop would be one chain:
    /// each scalar float-to-double conversion merges into its destination register and so waits for the previous
    /// one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double WideSum<T>(ReadOnlySpan<T> values) where T : unmanaged, IFloatingPointIeee754<T> =>
        Vector512.IsHardwareAccelerated ? WideSum<T, Simd512<T>, Simd512<double>>(values)
        : Vector256.IsHardwareAccelerated ? WideSum<T, Simd256<T>, Simd256<double>>(values)
        : WideSum<T, Simd128<T>, Simd128<double>>(values);

    /// <inheritdoc cref="WideSum{T}(ReadOnlySpan{T})"/>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static double WideSum<T, TVector, TWide>(ReadOnlySpan<T> values) where T : unmanaged, IFloatingPointIeee754<T>
        where TVector : struct, IWideningVector<TVector, T, TWide> where TWide : struct, ISimdVector<TWide, double>
    {
        TWide sum = TWide.Zero;
        int i = 0;
        for (; i <= values.Length - TVector.Count; i += TVector.Count) sum += Widened<T, TVector, TWide>(Load<T, TVector>(values, i));
        double total = TWide.Sum(sum);
        for (; i < values.Length; i++) total += Wide(values[i]);
        return total;
    }

    /// <summary>
    /// (Σ (aᵢ − p), Σ (aᵢ − p)·(bᵢ − q)) over the runs of a group. With a = b = x and p = q = c close to the mean it
    /// is the second pass of the corrected two-pass variance (Chan, Golub &amp; LeVeque 1983):
    /// mean = c + S₁/n, variance = S₂/n − (S₁/n)². With a = dy, p = 0, b = x and q = c it gives the two reductions
    /// of the backward pass, Σ dy and Σ dy·(x − c).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (double Sum, double SumOfProducts) CenteredSums<T>(ReadOnlySpan<T> a, T centerA, ReadOnlySpan<T> b, T centerB, Runs runs)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        Vector512.IsHardwareAccelerated ? CenteredSums<T, Simd512<T>, Simd512<double>>(a, centerA, b, centerB, runs)
        : Vector256.IsHardwareAccelerated ? CenteredSums<T, Simd256<T>, Simd256<double>>(a, centerA, b, centerB, runs)
        : CenteredSums<T, Simd128<T>, Simd128<double>>(a, centerA, b, centerB, runs);

    /// <inheritdoc cref="CenteredSums{T}(ReadOnlySpan{T}, T, ReadOnlySpan{T}, T, Runs)"/>
    public static (double Sum, double SumOfProducts) CenteredSums<T, TVector, TWide>(ReadOnlySpan<T> a, T centerA, ReadOnlySpan<T> b, T centerB, Runs runs)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TVector : struct, IWideningVector<TVector, T, TWide> where TWide : struct, ISimdVector<TWide, double>
    {
        // The variance's sums read one span: (x − c)² needs no second load. A type argument, not a flag, so that the
        // JIT compiles each loop without the other's branch.
        bool squares = Unsafe.AreSame(ref MemoryMarshal.GetReference(a), ref MemoryMarshal.GetReference(b)) && centerA == centerB;
        if (squares) return CenteredSums<T, Yes, Yes, TVector, TWide>(a, centerA, b, centerB, runs);
        // The backward pass's Σ dy has no centre: a − 0 is a, to the bit (a sum that starts at +0 ends the same
        // whichever zero it adds), so that subtraction is left out. Without FMA each vector of these sums was four
        // additions and a multiplication, and the floating-point adders bound the pass: BatchNorm2d 64x64x56x56's
        // backward sums at 128 bits ran 2–16 % faster without it (one thread, same-process alternating rounds under
        // load, AMD EPYC, DOTNET_EnableAVX2=0); wider vectors read memory at the same speed either way.
        return centerA == T.Zero ? CenteredSums<T, No, No, TVector, TWide>(a, centerA, b, centerB, runs)
            : CenteredSums<T, No, Yes, TVector, TWide>(a, centerA, b, centerB, runs);
    }

    /// <summary><paramref name="v"/> − <paramref name="center"/>, or <paramref name="v"/> itself when
    /// <typeparamref name="TCentered"/> is <see cref="No"/> (a centre of zero).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVector Centered<T, TCentered, TVector>(TVector v, TVector center) where T : unmanaged where TVector : struct, ISimdVector<TVector, T> =>
        typeof(TCentered) == typeof(Yes) ? v - center : v;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (double Sum, double SumOfProducts) CenteredSums<T, TSquares, TCenteredA, TVector, TWide>(ReadOnlySpan<T> a, T centerA, ReadOnlySpan<T> b, T centerB, Runs runs)
        where T : unmanaged, IFloatingPointIeee754<T> where TSquares : struct where TCenteredA : struct
        where TVector : struct, IWideningVector<TVector, T, TWide> where TWide : struct, ISimdVector<TWide, double>
    {
        int width = TVector.Count, whole = runs.Length - runs.Length % width, blockVectors = ReductionBlock<T, TVector>();
        double scalarSum = 0, scalarProducts = 0;
        TWide sum = TWide.Zero, products = sum;
        TVector p = TVector.Create(centerA), q = TVector.Create(centerB);
        bool squares = typeof(TSquares) == typeof(Yes);
        for (int r = 0; r < runs.Count; r++)
        {
            ReadOnlySpan<T> runA = a.Slice(runs.Start(r), runs.Length), runB = b.Slice(runs.Start(r), runs.Length);
            if (runA.Length < width)
            {
                for (int i = 0; i < runA.Length; i++)
                {
                    double ai = Wide(runA[i] - centerA);
                    scalarSum += ai;
                    scalarProducts += ai * Wide(runB[i] - centerB);
                }
                continue;
            }
            for (int block = 0; block < whole; block += blockVectors * width)
            {
                int end = Math.Min(whole, block + blockVectors * width), i = block;
                // Four accumulators of each sum: one would make every vector wait for the previous add or
                // fused multiply-add (3–4 cycles) where the core can start two a cycle.
                TVector s0 = TVector.Zero, s1 = s0, s2 = s0, s3 = s0, m0 = s0, m1 = s0, m2 = s0, m3 = s0;
                for (; i <= end - 4 * width; i += 4 * width)
                {
                    TVector a0 = Centered<T, TCenteredA, TVector>(Load<T, TVector>(runA, i), p);
                    TVector a1 = Centered<T, TCenteredA, TVector>(Load<T, TVector>(runA, i + width), p);
                    TVector a2 = Centered<T, TCenteredA, TVector>(Load<T, TVector>(runA, i + 2 * width), p);
                    TVector a3 = Centered<T, TCenteredA, TVector>(Load<T, TVector>(runA, i + 3 * width), p);
                    s0 += a0;
                    s1 += a1;
                    s2 += a2;
                    s3 += a3;
                    m0 = TVector.MultiplyAdd(a0, squares ? a0 : Load<T, TVector>(runB, i) - q, m0);
                    m1 = TVector.MultiplyAdd(a1, squares ? a1 : Load<T, TVector>(runB, i + width) - q, m1);
                    m2 = TVector.MultiplyAdd(a2, squares ? a2 : Load<T, TVector>(runB, i + 2 * width) - q, m2);
                    m3 = TVector.MultiplyAdd(a3, squares ? a3 : Load<T, TVector>(runB, i + 3 * width) - q, m3);
                }
                for (; i < end; i += width)
                {
                    TVector a0 = Centered<T, TCenteredA, TVector>(Load<T, TVector>(runA, i), p);
                    s0 += a0;
                    m0 = TVector.MultiplyAdd(a0, squares ? a0 : Load<T, TVector>(runB, i) - q, m0);
                }
                sum += Widened<T, TVector, TWide>((s0 + s1) + (s2 + s3));
                products += Widened<T, TVector, TWide>((m0 + m1) + (m2 + m3));
            }
            if (whole < runA.Length)
            {
                int last = runA.Length - width;
                TVector tail = TVector.ConditionalSelect(TVector.LanesFrom(whole - last), Centered<T, TCenteredA, TVector>(Load<T, TVector>(runA, last), p), TVector.Zero);
                sum += Widened<T, TVector, TWide>(tail);
                products += Widened<T, TVector, TWide>(tail * (Load<T, TVector>(runB, last) - q));
            }
        }
        return (scalarSum + TWide.Sum(sum), scalarProducts + TWide.Sum(products));
    }

    /// <summary>
    /// (Σ (xᵢ − c), Σ (xᵢ − c)²) over one contiguous span (a piece of the batch path): <see cref="CenteredSums{T, TVector, TWide}"/>
    /// with a = b = x, in the same blocks and accumulators and with the same additions in the same order, so with the
    /// same bits. Its loop steps one native-sized offset, where the general loop forms each load's address from an
    /// int index (a sign extension and an add per load) and walks a list of runs: at 128 bits, where the loop is
    /// bound by instructions (.NET turns FMA off with AVX2, so each square is a multiply and an add), those were a
    /// quarter of its work, and the accumulators of the whole span spilled to the stack at every block. BatchNorm2d
    /// 64x64x56x56's training forward at 128 bits rose 1–4 points of the copy bandwidth on one thread and 4 on two
    /// (AMD EPYC, alternating rounds under load).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static (double Sum, double SumOfSquares) CenteredSquares<T, TVector, TWide>(ReadOnlySpan<T> x, T center)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TVector : struct, IWideningVector<TVector, T, TWide> where TWide : struct, ISimdVector<TWide, double>
    {
        int width = TVector.Count;
        if (x.Length < width) return CenteredSums<T, Yes, Yes, TVector, TWide>(x, center, x, center, new Runs(0, 1, x.Length, 0));
        ref T start = ref MemoryMarshal.GetReference(x);
        nuint step = (nuint)width, whole = (nuint)(x.Length - x.Length % width), blockVectors = (nuint)ReductionBlock<T, TVector>();
        TWide sum = TWide.Zero, squares = sum;
        TVector p = TVector.Create(center);
        for (nuint block = 0; block < whole; block += blockVectors * step)
        {
            nuint end = Math.Min(whole, block + blockVectors * step), i = block;
            TVector s0 = TVector.Zero, s1 = s0, s2 = s0, s3 = s0, m0 = s0, m1 = s0, m2 = s0, m3 = s0;
            for (; i + 4 * step <= end; i += 4 * step)
            {
                TVector a0 = TVector.LoadUnsafe(in start, i) - p, a1 = TVector.LoadUnsafe(in start, i + step) - p;
                TVector a2 = TVector.LoadUnsafe(in start, i + 2 * step) - p, a3 = TVector.LoadUnsafe(in start, i + 3 * step) - p;
                s0 += a0;
                s1 += a1;
                s2 += a2;
                s3 += a3;
                m0 = TVector.MultiplyAdd(a0, a0, m0);
                m1 = TVector.MultiplyAdd(a1, a1, m1);
                m2 = TVector.MultiplyAdd(a2, a2, m2);
                m3 = TVector.MultiplyAdd(a3, a3, m3);
            }
            for (; i < end; i += step)
            {
                TVector a0 = TVector.LoadUnsafe(in start, i) - p;
                s0 += a0;
                m0 = TVector.MultiplyAdd(a0, a0, m0);
            }
            sum += Widened<T, TVector, TWide>((s0 + s1) + (s2 + s3));
            squares += Widened<T, TVector, TWide>((m0 + m1) + (m2 + m3));
        }
        if (whole < (nuint)x.Length)
        {
            nuint last = (nuint)(x.Length - width);
            TVector lastVector = TVector.LoadUnsafe(in start, last) - p;
            TVector tail = TVector.ConditionalSelect(TVector.LanesFrom((int)(whole - last)), lastVector, TVector.Zero);
            sum += Widened<T, TVector, TWide>(tail);
            squares += Widened<T, TVector, TWide>(tail * lastVector);
        }
        return (TWide.Sum(sum), TWide.Sum(squares));
    }

    /// <summary>
    /// One row of the row path's backward pass: (Σ gᵢ, Σ gᵢ·x̂ᵢ) with g = dy·γ and x̂ = (x − center)·scale + shift,
    /// and, unless <paramref name="columnDy"/> is empty, columnDy[i] += dyᵢ and columnDyXhat[i] += dyᵢ·x̂ᵢ: the row's
    /// share of dβ and dγ, kept in the element type for a few rows by the caller. With <paramref name="narrow"/>, at
    /// 256 bits where 512-bit vectors exist (<c>NormalizationKernels.ReadsNarrow</c>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (double SumG, double SumGXhat) RowGradientSums<T, TWeight>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, TWeight weight,
        T center, T scale, T shift, Span<T> columnDy, Span<T> columnDyXhat, bool narrow = false)
        where T : unmanaged, IFloatingPointIeee754<T> where TWeight : ICoefficient<T>, allows ref struct =>
        Vector512.IsHardwareAccelerated && !narrow ? RowGradientSums<T, TWeight, Simd512<T>, Simd512<double>>(dy, x, weight, center, scale, shift, columnDy, columnDyXhat)
        : Vector256.IsHardwareAccelerated ? RowGradientSums<T, TWeight, Simd256<T>, Simd256<double>>(dy, x, weight, center, scale, shift, columnDy, columnDyXhat)
        : RowGradientSums<T, TWeight, Simd128<T>, Simd128<double>>(dy, x, weight, center, scale, shift, columnDy, columnDyXhat);

    /// <inheritdoc cref="RowGradientSums{T, TWeight}(ReadOnlySpan{T}, ReadOnlySpan{T}, TWeight, T, T, T, Span{T}, Span{T}, bool)"/>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static (double SumG, double SumGXhat) RowGradientSums<T, TWeight, TVector, TWide>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, TWeight weight,
        T center, T scale, T shift, Span<T> columnDy, Span<T> columnDyXhat)
        where T : unmanaged, IFloatingPointIeee754<T> where TWeight : ICoefficient<T>, allows ref struct
        where TVector : struct, IWideningVector<TVector, T, TWide> where TWide : struct, ISimdVector<TWide, double>
    {
        var xhat = new ShiftScale<T, Uniform<T>>(x, new(center), new(scale), new(shift));
        bool columns = !columnDy.IsEmpty;
        int width = TVector.Count, length = dy.Length;
        // The coefficients as vectors once, not once per vector: the JIT does not move a broadcast out of a loop.
        TVector c = TVector.Create(center), k = TVector.Create(scale), b = TVector.Create(shift);
        if (length < width)
        {
            double sumG = 0, sumGXhat = 0;
            for (int i = 0; i < length; i++)
            {
                T h = xhat.At(i), g = dy[i] * weight.At(i);
                sumG += Wide(g);
                sumGXhat += Wide(g) * Wide(h);
                if (!columns) continue;
                columnDy[i] += dy[i];
                columnDyXhat[i] = T.MultiplyAddEstimate(dy[i], h, columnDyXhat[i]);
            }
            return (sumG, sumGXhat);
        }
        TWide sum = TWide.Zero, products = sum;
        int whole = length - length % width;
        for (int block = 0; block < whole; block += BlockVectors * width)
        {
            // Two pairs of accumulators, so that each sum waits on the add before last.
            TVector s = TVector.Zero, m = s, otherS = s, otherM = s;
            int i = block, end = Math.Min(whole, block + BlockVectors * width);
            for (; i < end - width; i += 2 * width)
            {
                RowGradientStep(dy, x, c, k, b, weight, columnDy, columnDyXhat, i, ref s, ref m);
                RowGradientStep(dy, x, c, k, b, weight, columnDy, columnDyXhat, i + width, ref otherS, ref otherM);
            }
            if (i < end) RowGradientStep(dy, x, c, k, b, weight, columnDy, columnDyXhat, i, ref s, ref m);
            sum += Widened<T, TVector, TWide>(s + otherS);
            products += Widened<T, TVector, TWide>(m + otherM);
        }
        if (whole < length)
        {
            int last = length - width;
            TVector lanes = TVector.LanesFrom(whole - last);
            TVector d = TVector.ConditionalSelect(lanes, Load<T, TVector>(dy, last), TVector.Zero), h = xhat.VectorAt<TVector>(last), g = d * weight.VectorAt<TVector>(last);
            sum += Widened<T, TVector, TWide>(g);
            products += Widened<T, TVector, TWide>(g * h);
            if (columns) AccumulateColumns(columnDy, columnDyXhat, last, d, h);
        }
        return (TWide.Sum(sum), TWide.Sum(products));
    }

    /// <summary>One vector of <see cref="RowGradientSums{T, TWeight}"/>: g = dy·γ into Σg, g·x̂ into Σg·x̂, and the
    /// column sums unless <paramref name="columnDy"/> is empty.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RowGradientStep<T, TWeight, TVector>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, TVector center, TVector scale, TVector shift,
        in TWeight weight, Span<T> columnDy, Span<T> columnDyXhat, int i, ref TVector sumG, ref TVector sumGXhat)
        where T : unmanaged, IFloatingPointIeee754<T> where TWeight : ICoefficient<T>, allows ref struct where TVector : struct, ISimdVector<TVector, T>
    {
        TVector d = Load<T, TVector>(dy, i), h = TVector.MultiplyAdd(Load<T, TVector>(x, i) - center, scale, shift), g = d * weight.VectorAt<TVector>(i);
        sumG += g;
        sumGXhat = TVector.MultiplyAdd(g, h, sumGXhat);
        if (!columnDy.IsEmpty) AccumulateColumns(columnDy, columnDyXhat, i, d, h);
    }

    /// <summary>
    /// <see cref="RowGradientSums{T, TWeight}"/> of two rows at once (row 0, then row 1 of the caller's column sums):
    /// the same sums added in the same order, so the results are those of the two calls one after the other, but
    /// each vector of γ and of the column sums is loaded once for both rows and the column sums are stored once, and
    /// the two rows' reductions are independent chains that overlap.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (double SumG0, double SumGXhat0, double SumG1, double SumGXhat1) RowPairGradientSums<T, TWeight>(
        ReadOnlySpan<T> dy0, ReadOnlySpan<T> x0, T center0, T scale0, T shift0, ReadOnlySpan<T> dy1, ReadOnlySpan<T> x1, T center1, T scale1, T shift1,
        TWeight weight, Span<T> columnDy, Span<T> columnDyXhat)
        where T : unmanaged, IFloatingPointIeee754<T> where TWeight : ICoefficient<T>, allows ref struct =>
        Vector512.IsHardwareAccelerated
            ? RowPairGradientSums<T, TWeight, Simd512<T>, Simd512<double>>(dy0, x0, center0, scale0, shift0, dy1, x1, center1, scale1, shift1, weight, columnDy, columnDyXhat)
        : Vector256.IsHardwareAccelerated
            ? RowPairGradientSums<T, TWeight, Simd256<T>, Simd256<double>>(dy0, x0, center0, scale0, shift0, dy1, x1, center1, scale1, shift1, weight, columnDy, columnDyXhat)
        : RowPairGradientSums<T, TWeight, Simd128<T>, Simd128<double>>(dy0, x0, center0, scale0, shift0, dy1, x1, center1, scale1, shift1, weight, columnDy, columnDyXhat);

    /// <inheritdoc cref="RowPairGradientSums{T, TWeight}(ReadOnlySpan{T}, ReadOnlySpan{T}, T, T, T, ReadOnlySpan{T}, ReadOnlySpan{T}, T, T, T, TWeight, Span{T}, Span{T})"/>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static (double SumG0, double SumGXhat0, double SumG1, double SumGXhat1) RowPairGradientSums<T, TWeight, TVector, TWide>(
        ReadOnlySpan<T> dy0, ReadOnlySpan<T> x0, T center0, T scale0, T shift0, ReadOnlySpan<T> dy1, ReadOnlySpan<T> x1, T center1, T scale1, T shift1,
        TWeight weight, Span<T> columnDy, Span<T> columnDyXhat)
        where T : unmanaged, IFloatingPointIeee754<T> where TWeight : ICoefficient<T>, allows ref struct
        where TVector : struct, IWideningVector<TVector, T, TWide> where TWide : struct, ISimdVector<TWide, double>
    {
        int width = TVector.Count, length = dy0.Length;
        if (length < width)
        {
            var (sumG0, sumGXhat0) = RowGradientSums<T, TWeight, TVector, TWide>(dy0, x0, weight, center0, scale0, shift0, columnDy, columnDyXhat);
            var (sumG1, sumGXhat1) = RowGradientSums<T, TWeight, TVector, TWide>(dy1, x1, weight, center1, scale1, shift1, columnDy, columnDyXhat);
            return (sumG0, sumGXhat0, sumG1, sumGXhat1);
        }
        var xhat0 = new ShiftScale<T, Uniform<T>>(x0, new(center0), new(scale0), new(shift0));
        var xhat1 = new ShiftScale<T, Uniform<T>>(x1, new(center1), new(scale1), new(shift1));
        // The coefficients as vectors once, not once per vector: the JIT does not move a broadcast out of a loop.
        TVector c0 = TVector.Create(center0), k0 = TVector.Create(scale0), b0 = TVector.Create(shift0);
        TVector c1 = TVector.Create(center1), k1 = TVector.Create(scale1), b1 = TVector.Create(shift1);
        TWide sum0 = TWide.Zero, products0 = sum0, sum1 = sum0, products1 = sum0;
        int whole = length - length % width;
        for (int block = 0; block < whole; block += BlockVectors * width)
        {
            // Per row the two pairs of accumulators of RowGradientSums, taking the same vectors.
            TVector s0 = TVector.Zero, m0 = s0, otherS0 = s0, otherM0 = s0, s1 = s0, m1 = s0, otherS1 = s0, otherM1 = s0;
            int i = block, end = Math.Min(whole, block + BlockVectors * width);
            for (; i < end - width; i += 2 * width)
            {
                RowPairGradientStep(dy0, x0, c0, k0, b0, dy1, x1, c1, k1, b1, weight, columnDy, columnDyXhat, i, ref s0, ref m0, ref s1, ref m1);
                RowPairGradientStep(dy0, x0, c0, k0, b0, dy1, x1, c1, k1, b1, weight, columnDy, columnDyXhat, i + width,
                    ref otherS0, ref otherM0, ref otherS1, ref otherM1);
            }
            if (i < end) RowPairGradientStep(dy0, x0, c0, k0, b0, dy1, x1, c1, k1, b1, weight, columnDy, columnDyXhat, i, ref s0, ref m0, ref s1, ref m1);
            sum0 += Widened<T, TVector, TWide>(s0 + otherS0);
            products0 += Widened<T, TVector, TWide>(m0 + otherM0);
            sum1 += Widened<T, TVector, TWide>(s1 + otherS1);
            products1 += Widened<T, TVector, TWide>(m1 + otherM1);
        }
        if (whole < length)
        {
            int last = length - width;
            TVector lanes = TVector.LanesFrom(whole - last), w = weight.VectorAt<TVector>(last);
            TVector d0 = TVector.ConditionalSelect(lanes, Load<T, TVector>(dy0, last), TVector.Zero), h0 = xhat0.VectorAt<TVector>(last), g0 = d0 * w;
            TVector d1 = TVector.ConditionalSelect(lanes, Load<T, TVector>(dy1, last), TVector.Zero), h1 = xhat1.VectorAt<TVector>(last), g1 = d1 * w;
            sum0 += Widened<T, TVector, TWide>(g0);
            products0 += Widened<T, TVector, TWide>(g0 * h0);
            sum1 += Widened<T, TVector, TWide>(g1);
            products1 += Widened<T, TVector, TWide>(g1 * h1);
            if (!columnDy.IsEmpty) AccumulateColumns(columnDy, columnDyXhat, last, d0, h0, d1, h1);
        }
        return (TWide.Sum(sum0), TWide.Sum(products0), TWide.Sum(sum1), TWide.Sum(products1));
    }

    /// <summary>One vector of <see cref="RowPairGradientSums{T, TWeight}"/>: <see cref="RowGradientStep"/> for both
    /// rows, with γ and the column sums loaded once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RowPairGradientStep<T, TWeight, TVector>(ReadOnlySpan<T> dy0, ReadOnlySpan<T> x0, TVector center0, TVector scale0, TVector shift0,
        ReadOnlySpan<T> dy1, ReadOnlySpan<T> x1, TVector center1, TVector scale1, TVector shift1, in TWeight weight, Span<T> columnDy, Span<T> columnDyXhat, int i,
        ref TVector sumG0, ref TVector sumGXhat0, ref TVector sumG1, ref TVector sumGXhat1)
        where T : unmanaged, IFloatingPointIeee754<T> where TWeight : ICoefficient<T>, allows ref struct where TVector : struct, ISimdVector<TVector, T>
    {
        TVector w = weight.VectorAt<TVector>(i);
        TVector d0 = Load<T, TVector>(dy0, i), h0 = TVector.MultiplyAdd(Load<T, TVector>(x0, i) - center0, scale0, shift0), g0 = d0 * w;
        TVector d1 = Load<T, TVector>(dy1, i), h1 = TVector.MultiplyAdd(Load<T, TVector>(x1, i) - center1, scale1, shift1), g1 = d1 * w;
        sumG0 += g0;
        sumGXhat0 = TVector.MultiplyAdd(g0, h0, sumGXhat0);
        sumG1 += g1;
        sumGXhat1 = TVector.MultiplyAdd(g1, h1, sumGXhat1);
        if (!columnDy.IsEmpty) AccumulateColumns(columnDy, columnDyXhat, i, d0, h0, d1, h1);
    }

    /// <summary>columnDy += dy₀, then += dy₁, and columnDyXhat += dy₀·x̂₀, then += dy₁·x̂₁: two rows' shares in the
    /// order of two <see cref="AccumulateColumns{T, TVector}(Span{T}, Span{T}, int, TVector, TVector)"/>, with one
    /// load and one store of each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AccumulateColumns<T, TVector>(Span<T> columnDy, Span<T> columnDyXhat, int i, TVector dy0, TVector xhat0, TVector dy1, TVector xhat1)
        where T : unmanaged where TVector : struct, ISimdVector<TVector, T>
    {
        ref T c = ref MemoryMarshal.GetReference(columnDy);
        ref T cx = ref MemoryMarshal.GetReference(columnDyXhat);
        (TVector.LoadUnsafe(in c, (nuint)i) + dy0 + dy1).StoreUnsafe(ref c, (nuint)i);
        TVector.MultiplyAdd(dy1, xhat1, TVector.MultiplyAdd(dy0, xhat0, TVector.LoadUnsafe(in cx, (nuint)i))).StoreUnsafe(ref cx, (nuint)i);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AccumulateColumns<T, TVector>(Span<T> columnDy, Span<T> columnDyXhat, int i, TVector dy, TVector xhat)
        where T : unmanaged where TVector : struct, ISimdVector<TVector, T>
    {
        ref T c = ref MemoryMarshal.GetReference(columnDy);
        ref T cx = ref MemoryMarshal.GetReference(columnDyXhat);
        (TVector.LoadUnsafe(in c, (nuint)i) + dy).StoreUnsafe(ref c, (nuint)i);
        TVector.MultiplyAdd(dy, xhat, TVector.LoadUnsafe(in cx, (nuint)i)).StoreUnsafe(ref cx, (nuint)i);
    }

    /// <summary>
    /// Σ dy and Σ dy·(x − c) of each of the <paramref name="sumDy"/>.Length consecutive runs of
    /// <paramref name="length"/> elements that <paramref name="dy"/> and <paramref name="x"/> hold (a GroupNorm
    /// group's channels; an InstanceNorm channel is a group of one): the backward pass's two reductions per
    /// affine channel, <see cref="CenteredSums{T}"/>'s arithmetic in one call per group instead of one per channel.
    /// A channel of a 14×14 image is only two dozen 256-bit vectors, so the per-call work (the block set-up, the
    /// tail's lane mask, a call) was as large as the sums themselves; here the mask is made once, and two pairs of
    /// accumulators each take every other vector. With AVX-512 it still runs 256-bit vectors (the results are those
    /// of the 256-bit width): a run of 14×14 floats is 784 bytes, so most runs start off a 64-byte boundary even though
    /// the tensor does (<see cref="Storage.Start"/>), and every 512-bit load of such a run straddles two cache lines
    /// where half the 256-bit ones do. The whole GroupNorm backward pass (32x256x14x14 and 32x256x16x16, one thread,
    /// thread CPU time on a loaded AMD EPYC) measured 28–38 % faster so, before tensors were aligned; re-measured with
    /// aligned tensors, 512-bit vectors in this kernel and <see cref="SegmentGradient{T}"/> still made GroupNorm's
    /// forward + backward 3–12 % slower (one and two threads, alternating rounds under load).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SegmentGradientSums<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, T center, int length, Span<double> sumDy, Span<double> sumDyCentered)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (Vector256.IsHardwareAccelerated) SegmentGradientSums<T, Simd256<T>, Simd256<double>>(dy, x, center, length, sumDy, sumDyCentered);
        else SegmentGradientSums<T, Simd128<T>, Simd128<double>>(dy, x, center, length, sumDy, sumDyCentered);
    }

    /// <inheritdoc cref="SegmentGradientSums{T}(ReadOnlySpan{T}, ReadOnlySpan{T}, T, int, Span{double}, Span{double})"/>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SegmentGradientSums<T, TVector, TWide>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, T center, int length, Span<double> sumDy, Span<double> sumDyCentered)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TVector : struct, IWideningVector<TVector, T, TWide> where TWide : struct, ISimdVector<TWide, double>
    {
        int width = TVector.Count, segments = sumDy.Length;
        if (length < width)
        {
            for (int s = 0; s < segments; s++)
            {
                double sum = 0, products = 0;
                for (int i = s * length; i < (s + 1) * length; i++)
                {
                    double d = Wide(dy[i]);
                    sum += d;
                    products += d * Wide(x[i] - center);
                }
                (sumDy[s], sumDyCentered[s]) = (sum, products);
            }
            return;
        }
        int whole = length - length % width;
        TVector c = TVector.Create(center), tailLanes = TVector.LanesFrom(width - length % width);
        for (int s = 0, start = 0; s < segments; s++, start += length)
        {
            TWide sum = TWide.Zero, products = sum;
            for (int block = 0; block < whole; block += BlockVectors * width)
            {
                int i = start + block, end = start + Math.Min(whole, block + BlockVectors * width);
                TVector s0 = TVector.Zero, s1 = s0, m0 = s0, m1 = s0;
                for (; i <= end - 2 * width; i += 2 * width)
                {
                    TVector d0 = Load<T, TVector>(dy, i), d1 = Load<T, TVector>(dy, i + width);
                    s0 += d0;
                    s1 += d1;
                    m0 = TVector.MultiplyAdd(d0, Load<T, TVector>(x, i) - c, m0);
                    m1 = TVector.MultiplyAdd(d1, Load<T, TVector>(x, i + width) - c, m1);
                }
                if (i < end)
                {
                    TVector d0 = Load<T, TVector>(dy, i);
                    s0 += d0;
                    m0 = TVector.MultiplyAdd(d0, Load<T, TVector>(x, i) - c, m0);
                }
                sum += Widened<T, TVector, TWide>(s0 + s1);
                products += Widened<T, TVector, TWide>(m0 + m1);
            }
            if (whole < length)
            {
                // The vector that ends the run, its lanes already counted set to zero.
                int last = start + length - width;
                TVector d = TVector.ConditionalSelect(tailLanes, Load<T, TVector>(dy, last), TVector.Zero);
                sum += Widened<T, TVector, TWide>(d);
                products += Widened<T, TVector, TWide>(d * (Load<T, TVector>(x, last) - c));
            }
            (sumDy[s], sumDyCentered[s]) = (TWide.Sum(sum), TWide.Sum(products));
        }
    }

    /// <summary>dx = dy·a[s] + (x − center)·k + l over each of the <paramref name="a"/>.Length consecutive runs of
    /// <paramref name="length"/> elements (<see cref="GradientFromSums{T, TCoefficient}"/>'s arithmetic with a
    /// channel's a per run and one center, k and l for the group, as in GroupNorm), in one call per group. Each run
    /// ends with the vector that ends it, formed before the run's other stores, so dx may be dy or x. 256-bit vectors
    /// with AVX-512 too, as in <see cref="SegmentGradientSums{T}"/>; stores aligned to the vector (the first and
    /// last of a run unaligned) measured 5–15 % slower than these plain ones at each width.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SegmentGradient<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, Span<T> dx, int length, ReadOnlySpan<T> a, T center, T k, T l)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (Vector256.IsHardwareAccelerated) SegmentGradient<T, Simd256<T>>(dy, x, dx, length, a, center, k, l);
        else SegmentGradient<T, Simd128<T>>(dy, x, dx, length, a, center, k, l);
    }

    /// <inheritdoc cref="SegmentGradient{T}(ReadOnlySpan{T}, ReadOnlySpan{T}, Span{T}, int, ReadOnlySpan{T}, T, T, T)"/>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SegmentGradient<T, TVector>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, Span<T> dx, int length, ReadOnlySpan<T> a, T center, T k, T l)
        where T : unmanaged, IFloatingPointIeee754<T> where TVector : struct, ISimdVector<TVector, T>
    {
        int width = TVector.Count;
        if (length < width)
        {
            for (int s = 0; s < a.Length; s++)
                for (int i = s * length; i < (s + 1) * length; i++)
                    dx[i] = T.MultiplyAddEstimate(dy[i], a[s], T.MultiplyAddEstimate(x[i] - center, k, l));
            return;
        }
        TVector c = TVector.Create(center), kv = TVector.Create(k), lv = TVector.Create(l);
        ref T o = ref MemoryMarshal.GetReference(dx);
        for (int s = 0, start = 0; s < a.Length; s++, start += length)
        {
            TVector av = TVector.Create(a[s]);
            int last = start + length - width, i = start;
            TVector end = TVector.MultiplyAdd(Load<T, TVector>(dy, last), av, TVector.MultiplyAdd(Load<T, TVector>(x, last) - c, kv, lv));
            for (; i <= last - width; i += 2 * width)
            {
                TVector.MultiplyAdd(Load<T, TVector>(dy, i), av, TVector.MultiplyAdd(Load<T, TVector>(x, i) - c, kv, lv)).StoreUnsafe(ref o, (nuint)i);
                TVector.MultiplyAdd(Load<T, TVector>(dy, i + width), av, TVector.MultiplyAdd(Load<T, TVector>(x, i + width) - c, kv, lv)).StoreUnsafe(ref o, (nuint)(i + width));
            }
            if (i < last) TVector.MultiplyAdd(Load<T, TVector>(dy, i), av, TVector.MultiplyAdd(Load<T, TVector>(x, i) - c, kv, lv)).StoreUnsafe(ref o, (nuint)i);
            end.StoreUnsafe(ref o, (nuint)last);
        }
    }

    /// <summary>y = (x − center)·scale[s] + shift[s] over each of the <paramref name="scale"/>.Length consecutive runs
    /// of <paramref name="length"/> elements (a GroupNorm group's channels; <see cref="ShiftScale{T, TCoefficient}"/>'s
    /// arithmetic), through the cache, in one call per group instead of one per channel, at the widest width the
    /// machine has. Unlike the backward's reductions (<see cref="SegmentGradientSums{T}"/>, which keep 256-bit vectors
    /// with AVX-512), 512-bit vectors are faster here even though most 14×14 runs start off a cache line: with tensors
    /// aligned (<see cref="Storage.Start"/>), the training forward of GroupNorm(32) and InstanceNorm2d on 32x256x14x14
    /// ran 13–20 % faster on one thread and 15–28 % on two than with 256-bit vectors (process CPU time, alternating
    /// rounds under load, AMD EPYC Zen 5), while the backward's two kernels at 512 bits were 3–12 % slower. Each
    /// element is one fused multiply-add, so the width does not change the result. Each run ends with the vector that
    /// ends it, formed before the run's other stores, so y may be x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SegmentShiftScale<T>(ReadOnlySpan<T> x, Span<T> y, int length, T center, ReadOnlySpan<T> scale, ReadOnlySpan<T> shift)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (Vector512.IsHardwareAccelerated) SegmentShiftScale<T, Simd512<T>>(x, y, length, center, scale, shift);
        else if (Vector256.IsHardwareAccelerated) SegmentShiftScale<T, Simd256<T>>(x, y, length, center, scale, shift);
        else SegmentShiftScale<T, Simd128<T>>(x, y, length, center, scale, shift);
    }

    /// <inheritdoc cref="SegmentShiftScale{T}(ReadOnlySpan{T}, Span{T}, int, T, ReadOnlySpan{T}, ReadOnlySpan{T})"/>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SegmentShiftScale<T, TVector>(ReadOnlySpan<T> x, Span<T> y, int length, T center, ReadOnlySpan<T> scale, ReadOnlySpan<T> shift)
        where T : unmanaged, IFloatingPointIeee754<T> where TVector : struct, ISimdVector<TVector, T>
    {
        int width = TVector.Count;
        if (length < width)
        {
            for (int s = 0; s < scale.Length; s++)
                for (int i = s * length; i < (s + 1) * length; i++)
                    y[i] = T.MultiplyAddEstimate(x[i] - center, scale[s], shift[s]);
            return;
        }
        TVector c = TVector.Create(center);
        ref T o = ref MemoryMarshal.GetReference(y);
        for (int s = 0, start = 0; s < scale.Length; s++, start += length)
        {
            TVector k = TVector.Create(scale[s]), b = TVector.Create(shift[s]);
            int last = start + length - width, i = start;
            TVector end = TVector.MultiplyAdd(Load<T, TVector>(x, last) - c, k, b);
            for (; i <= last - width; i += 2 * width)
            {
                TVector.MultiplyAdd(Load<T, TVector>(x, i) - c, k, b).StoreUnsafe(ref o, (nuint)i);
                TVector.MultiplyAdd(Load<T, TVector>(x, i + width) - c, k, b).StoreUnsafe(ref o, (nuint)(i + width));
            }
            if (i < last) TVector.MultiplyAdd(Load<T, TVector>(x, i) - c, k, b).StoreUnsafe(ref o, (nuint)i);
            end.StoreUnsafe(ref o, (nuint)last);
        }
    }

    /// <summary>total[j] += partial[j] in float64 for every column j: a few rows' column sums, kept in the element
    /// type, moved to the wide sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void AddWidened<T>(ReadOnlySpan<T> partial, Span<double> total) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (Vector512.IsHardwareAccelerated) AddWidened<T, Simd512<T>, Simd512<double>>(partial, total);
        else if (Vector256.IsHardwareAccelerated) AddWidened<T, Simd256<T>, Simd256<double>>(partial, total);
        else AddWidened<T, Simd128<T>, Simd128<double>>(partial, total);
    }

    /// <inheritdoc cref="AddWidened{T}(ReadOnlySpan{T}, Span{double})"/>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AddWidened<T, TVector, TWide>(ReadOnlySpan<T> partial, Span<double> total) where T : unmanaged, IFloatingPointIeee754<T>
        where TVector : struct, IWideningVector<TVector, T, TWide> where TWide : struct, ISimdVector<TWide, double>
    {
        int j = 0;
        for (; j <= partial.Length - TVector.Count; j += TVector.Count) AddWidened<T, TVector, TWide>(total, j, Load<T, TVector>(partial, j));
        for (; j < partial.Length; j++) total[j] += Wide(partial[j]);
    }

    /// <summary>
    /// Per-column (Σₙ (a[n, j] − p_j), Σₙ (a[n, j] − p_j)·(b[n, j] − q_j)) added into <paramref name="sum"/> and
    /// <paramref name="products"/> for the columns of a strip of a (rows, stride) matrix (the spans start at the
    /// strip's first column; its width is sum.Length). The column path's counterpart of
    /// <see cref="CenteredSums{T}"/>: four vectors hold one row's part of four vectors' worth of neighbouring columns
    /// and walk down the rows together, adding BlockRows rows in the element type before widening, so each element
    /// costs one add and one fused multiply-add and each row visit reads whole cache lines. An empty
    /// <paramref name="products"/> skips the second sum.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ColumnCenteredSums<T, TCenterA, TCenterB>(ReadOnlySpan<T> a, TCenterA centerA, ReadOnlySpan<T> b, TCenterB centerB,
        int rows, int stride, Span<double> sum, Span<double> products)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TCenterA : ICoefficient<T>, allows ref struct where TCenterB : ICoefficient<T>, allows ref struct
    {
        if (Vector512.IsHardwareAccelerated)
            ColumnCenteredSums<T, TCenterA, TCenterB, Simd512<T>, Simd512<double>>(a, centerA, b, centerB, rows, stride, sum, products);
        else if (Vector256.IsHardwareAccelerated)
            ColumnCenteredSums<T, TCenterA, TCenterB, Simd256<T>, Simd256<double>>(a, centerA, b, centerB, rows, stride, sum, products);
        else ColumnCenteredSums<T, TCenterA, TCenterB, Simd128<T>, Simd128<double>>(a, centerA, b, centerB, rows, stride, sum, products);
    }

    /// <inheritdoc cref="ColumnCenteredSums{T, TCenterA, TCenterB}(ReadOnlySpan{T}, TCenterA, ReadOnlySpan{T}, TCenterB, int, int, Span{double}, Span{double})"/>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ColumnCenteredSums<T, TCenterA, TCenterB, TVector, TWide>(ReadOnlySpan<T> a, TCenterA centerA, ReadOnlySpan<T> b, TCenterB centerB,
        int rows, int stride, Span<double> sum, Span<double> products)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TCenterA : ICoefficient<T>, allows ref struct where TCenterB : ICoefficient<T>, allows ref struct
        where TVector : struct, IWideningVector<TVector, T, TWide> where TWide : struct, ISimdVector<TWide, double> =>
        ColumnSums<T, TCenterA, TCenterB, No, TVector, TWide>(a, centerA, b, centerB, rows, stride, sum, products);

    /// <summary><see cref="ColumnCenteredSums{T, TCenterA, TCenterB, TVector, TWide}"/>, or when
    /// <typeparamref name="TSquares"/> is <see cref="Yes"/> the sums Σ(a − p) and Σ(a − p)² (b and q unused), which
    /// read each element once. The choice is a type so that the JIT compiles each loop without the other's branch.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ColumnSums<T, TCenterA, TCenterB, TSquares, TVector, TWide>(ReadOnlySpan<T> a, TCenterA centerA, ReadOnlySpan<T> b, TCenterB centerB,
        int rows, int stride, Span<double> sum, Span<double> products)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TCenterA : ICoefficient<T>, allows ref struct where TCenterB : ICoefficient<T>, allows ref struct where TSquares : struct
        where TVector : struct, IWideningVector<TVector, T, TWide> where TWide : struct, ISimdVector<TWide, double>
    {
        bool squares = typeof(TSquares) == typeof(Yes);
        int width = TVector.Count, columns = sum.Length;
        bool wantProducts = !products.IsEmpty;
        if (columns < width)
        {
            for (int n = 0; n < rows; n++)
                for (int j = 0; j < columns; j++)
                {
                    double aj = Wide(a[n * stride + j] - centerA.At(j));
                    sum[j] += aj;
                    if (wantProducts) products[j] += aj * (squares ? aj : Wide(b[n * stride + j] - centerB.At(j)));
                }
            return;
        }
        for (int first = 0; first < columns; first += 4 * width)
        {
            // A vector that would pass the strip's end ends with it instead; its lanes that another vector covers
            // (all of them, for a strip narrower than four vectors) add nothing.
            int last = columns - width;
            int j0 = Math.Min(first, last), j1 = Math.Min(first + width, last), j2 = Math.Min(first + 2 * width, last), j3 = Math.Min(first + 3 * width, last);
            TVector p0 = centerA.VectorAt<TVector>(j0), p1 = centerA.VectorAt<TVector>(j1), p2 = centerA.VectorAt<TVector>(j2), p3 = centerA.VectorAt<TVector>(j3);
            TVector q0 = typeof(TSquares) == typeof(Yes) ? p0 : centerB.VectorAt<TVector>(j0), q1 = typeof(TSquares) == typeof(Yes) ? p1 : centerB.VectorAt<TVector>(j1);
            TVector q2 = typeof(TSquares) == typeof(Yes) ? p2 : centerB.VectorAt<TVector>(j2), q3 = typeof(TSquares) == typeof(Yes) ? p3 : centerB.VectorAt<TVector>(j3);
            for (int block = 0; block < rows; block += BlockRows)
            {
                TVector s0 = TVector.Zero, s1 = s0, s2 = s0, s3 = s0, m0 = s0, m1 = s0, m2 = s0, m3 = s0;
                for (int n = block, end = Math.Min(rows, block + BlockRows); n < end; n++)
                {
                    int row = n * stride;
                    TVector d0 = Load<T, TVector>(a, row + j0) - p0, d1 = Load<T, TVector>(a, row + j1) - p1;
                    TVector d2 = Load<T, TVector>(a, row + j2) - p2, d3 = Load<T, TVector>(a, row + j3) - p3;
                    s0 += d0;
                    s1 += d1;
                    s2 += d2;
                    s3 += d3;
                    if (!wantProducts) continue;
                    if (typeof(TSquares) == typeof(Yes))
                    {
                        m0 = TVector.MultiplyAdd(d0, d0, m0);
                        m1 = TVector.MultiplyAdd(d1, d1, m1);
                        m2 = TVector.MultiplyAdd(d2, d2, m2);
                        m3 = TVector.MultiplyAdd(d3, d3, m3);
                        continue;
                    }
                    m0 = TVector.MultiplyAdd(d0, Load<T, TVector>(b, row + j0) - q0, m0);
                    m1 = TVector.MultiplyAdd(d1, Load<T, TVector>(b, row + j1) - q1, m1);
                    m2 = TVector.MultiplyAdd(d2, Load<T, TVector>(b, row + j2) - q2, m2);
                    m3 = TVector.MultiplyAdd(d3, Load<T, TVector>(b, row + j3) - q3, m3);
                }
                AddColumnSums<T, TVector, TWide>(sum, products, j0, first - j0, s0, m0);
                AddColumnSums<T, TVector, TWide>(sum, products, j1, first + width - j1, s1, m1);
                AddColumnSums<T, TVector, TWide>(sum, products, j2, first + 2 * width - j2, s2, m2);
                AddColumnSums<T, TVector, TWide>(sum, products, j3, first + 3 * width - j3, s3, m3);
            }
        }
    }

    /// <summary>
    /// Mean and M₂ = Σ(x − mean)² of every column of a strip of a (rows, stride) matrix (the span starts at the
    /// strip's first column; its width is mean.Length), in one pass when it can: the group path's shifted-data
    /// algorithm (Chan, Golub &amp; LeVeque 1983, section 3) column by column, with S₁ = Σ(x − c) and
    /// S₂ = Σ(x − c)² about a pilot c per column (the mean of its first <see cref="PilotRows"/> rows, rounded to T),
    /// mean = c + S₁/n and M₂ = S₂ − S₁²/n; when some column's pilot lies more than one standard deviation from its
    /// mean the sums are taken again about the means found (the second pass of the corrected two-pass algorithm), so
    /// the result stays exact however large the mean is against the spread, and a constant column gives exactly 0.
    /// The sums walk down the rows as in <see cref="ColumnCenteredSums{T, TCenterA, TCenterB}"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ColumnMeanAndM2<T>(ReadOnlySpan<T> x, int rows, int stride, Span<double> mean, Span<double> m2)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (Vector512.IsHardwareAccelerated) ColumnMeanAndM2<T, Simd512<T>, Simd512<double>>(x, rows, stride, mean, m2);
        else if (Vector256.IsHardwareAccelerated) ColumnMeanAndM2<T, Simd256<T>, Simd256<double>>(x, rows, stride, mean, m2);
        else ColumnMeanAndM2<T, Simd128<T>, Simd128<double>>(x, rows, stride, mean, m2);
    }

    /// <summary>Rows whose mean is a column's pilot centre in <see cref="ColumnMeanAndM2{T}"/>.</summary>
    private const int PilotRows = 16;

    /// <inheritdoc cref="ColumnMeanAndM2{T}(ReadOnlySpan{T}, int, int, Span{double}, Span{double})"/>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ColumnMeanAndM2<T, TVector, TWide>(ReadOnlySpan<T> x, int rows, int stride, Span<double> mean, Span<double> m2)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TVector : struct, IWideningVector<TVector, T, TWide> where TWide : struct, ISimdVector<TWide, double>
    {
        int columns = mean.Length, pilotRows = Math.Min(rows, PilotRows);
        T[]? rented = columns > MaxStackColumns ? BufferPool<T>.Shared.Rent(columns) : null;
        Span<T> center = rented is null ? stackalloc T[MaxStackColumns] : rented;
        center = center[..columns];
        // The pilot: row 0 plus the mean of (x − row 0) over the first rows, in float64, rounded to T.
        ReadOnlySpan<T> first = x[..columns];
        mean.Clear();
        ColumnSums<T, PerElement<T>, PerElement<T>, No, TVector, TWide>(x, new(first), x, new(first), pilotRows, stride, mean, default);
        for (int j = 0; j < columns; j++) center[j] = T.CreateTruncating(Wide(first[j]) + mean[j] / pilotRows);
        for (int pass = 0; ; pass++)
        {
            // mean and m2 hold S₁ and S₂ about the centres until the end.
            mean.Clear();
            m2.Clear();
            ColumnSums<T, PerElement<T>, PerElement<T>, Yes, TVector, TWide>(x, new(center), x, new(center), rows, stride, mean, m2);
            bool far = false;
            for (int j = 0; j < columns && !far; j++) far = mean[j] / rows * (mean[j] / rows) > m2[j] / rows / 2;
            if (!far || pass == 1) break;
            for (int j = 0; j < columns; j++) center[j] = T.CreateTruncating(Wide(center[j]) + mean[j] / rows);
        }
        for (int j = 0; j < columns; j++)
        {
            double shift = mean[j] / rows;
            m2[j] = Math.Max(m2[j] - mean[j] * shift, 0);
            mean[j] = Wide(center[j]) + shift;
        }
        if (rented is not null) BufferPool<T>.Shared.Return(rented);
    }

    /// <summary>Columns whose centres <see cref="ColumnMeanAndM2{T}"/> keeps on the stack.</summary>
    private const int MaxStackColumns = 256;

    /// <summary>Adds the lanes from <paramref name="firstLane"/> on of one vector's column sums (and products,
    /// unless that span is empty) into the float64 totals at column <paramref name="j"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddColumnSums<T, TVector, TWide>(Span<double> sum, Span<double> products, int j, int firstLane, TVector s, TVector m)
        where T : unmanaged where TVector : struct, IWideningVector<TVector, T, TWide> where TWide : struct, ISimdVector<TWide, double>
    {
        if (firstLane >= TVector.Count) return;
        TVector lanes = TVector.LanesFrom(firstLane);
        AddWidened<T, TVector, TWide>(sum, j, TVector.ConditionalSelect(lanes, s, TVector.Zero));
        if (!products.IsEmpty) AddWidened<T, TVector, TWide>(products, j, TVector.ConditionalSelect(lanes, m, TVector.Zero));
    }

    /// <summary>Rows of a (rows, columns) matrix that <see cref="WriteRows{T, TOp, TVector}"/> takes together.</summary>
    private const int RowBlock = 4;

    /// <summary>y[n, j] = (x[n, j] − center[j])·scale[j] + shift[j] over the rows of a (rows, columns) matrix (the
    /// column path's <see cref="ShiftScale{T, TCoefficient}"/>, written by <see cref="WriteRows{T, TOp, TVector}"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ShiftScaleRows<T>(ReadOnlySpan<T> x, Span<T> y, int columns, ReadOnlySpan<T> center, ReadOnlySpan<T> scale, ReadOnlySpan<T> shift)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var op = new ShiftScaleColumns<T>(x, center, scale, shift);
        if (Vector512.IsHardwareAccelerated) WriteRows<T, ShiftScaleColumns<T>, Simd512<T>>(y, y.Length / columns, columns, columns, op);
        else if (Vector256.IsHardwareAccelerated) WriteRows<T, ShiftScaleColumns<T>, Simd256<T>>(y, y.Length / columns, columns, columns, op);
        else WriteRows<T, ShiftScaleColumns<T>, Simd128<T>>(y, y.Length / columns, columns, columns, op);
    }

    /// <summary>dx[n, j] = dy[n, j]·a[j] + (x[n, j] − center[j])·k[j] + l[j] over the rows of a (rows, columns) matrix
    /// (the column path's <see cref="GradientFromSums{T, TCoefficient}"/>, written by
    /// <see cref="WriteRows{T, TOp, TVector}"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void GradientRows<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, Span<T> dx, int columns, ReadOnlySpan<T> a, ReadOnlySpan<T> center, ReadOnlySpan<T> k, ReadOnlySpan<T> l)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var op = new GradientColumns<T>(dy, x, a, center, k, l);
        if (Vector512.IsHardwareAccelerated) WriteRows<T, GradientColumns<T>, Simd512<T>>(dx, dx.Length / columns, columns, columns, op);
        else if (Vector256.IsHardwareAccelerated) WriteRows<T, GradientColumns<T>, Simd256<T>>(dx, dx.Length / columns, columns, columns, op);
        else WriteRows<T, GradientColumns<T>, Simd128<T>>(dx, dx.Length / columns, columns, columns, op);
    }

    /// <summary>Writes out[n·stride + j] = op(n·stride + j, j) for j &lt; <paramref name="width"/> over
    /// <paramref name="rows"/> rows <paramref name="stride"/> elements apart, with coefficients per column: whole rows
    /// (width = stride) or a strip of columns (the output and the op's spans start at the strip's first column),
    /// through the cache, <see cref="RowBlock"/> rows at a time so that each column's coefficient vectors
    /// are loaded once per block instead of once per row, which leaves each element little more than the loads of its
    /// data; and when every row starts at the same misalignment (a stride that is a multiple of the vector) the stores
    /// start on a boundary of the vector's size, as in <see cref="WriteCached"/>. Against <see cref="Write{T, TOp}"/> row by
    /// row (256x1024, one thread, thread CPU time on a loaded AMD EPYC) the evaluation forward's writes measured
    /// 17–36 % faster and the backward's dx 14–25 %, at each of the three widths. The first and last vectors of each
    /// row, which overlap the others, are formed before the block's stores, so the output may be an input; a width
    /// under one vector is written element by element. Results are those of <see cref="Write{T, TOp}"/> row by row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void WriteRows<T, TOp, TVector>(Span<T> output, int rows, int stride, int width, TOp op)
        where T : unmanaged, IFloatingPointIeee754<T> where TOp : IColumnwise<T>, allows ref struct where TVector : struct, ISimdVector<TVector, T>
    {
        int vector = TVector.Count, n = 0;
        if (width < vector)
        {
            for (; n < rows; n++)
                for (int j = 0; j < width; j++) output[n * stride + j] = op.At(n * stride + j, j);
            return;
        }
        // Every store below ends within the last row's width.
        if (rows > 0 && (long)(rows - 1) * stride + width > output.Length)
            throw new ArgumentException($"{rows} rows of {width} columns, {stride} apart, run past an output of {output.Length}.", nameof(output));
        fixed (T* pinned = &MemoryMarshal.GetReference(output)) // the alignment found below must hold for the whole loop
        {
            ref T o = ref *pinned;
            int misalignment = stride % vector == 0 ? (int)((nuint)pinned % (nuint)(vector * sizeof(T))) / sizeof(T) : 0;
            nuint head = misalignment == 0 ? 0 : (nuint)(vector - misalignment), last = (nuint)(width - vector), step = (nuint)stride;
            for (; n <= rows - RowBlock; n += RowBlock)
            {
                nuint r0 = (nuint)n * step, r1 = r0 + step, r2 = r1 + step, r3 = r2 + step;
                ColumnCoefficients<TVector> c = op.CoefficientsAt<TVector>(last);
                TVector e0 = op.VectorAt(r0 + last, c), e1 = op.VectorAt(r1 + last, c), e2 = op.VectorAt(r2 + last, c), e3 = op.VectorAt(r3 + last, c);
                TVector f0 = default, f1 = default, f2 = default, f3 = default;
                if (head != 0)
                {
                    c = op.CoefficientsAt<TVector>(0);
                    (f0, f1, f2, f3) = (op.VectorAt(r0, c), op.VectorAt(r1, c), op.VectorAt(r2, c), op.VectorAt(r3, c));
                }
                for (nuint j = head; j < last; j += (nuint)vector)
                {
                    c = op.CoefficientsAt<TVector>(j);
                    op.VectorAt(r0 + j, c).StoreUnsafe(ref o, r0 + j);
                    op.VectorAt(r1 + j, c).StoreUnsafe(ref o, r1 + j);
                    op.VectorAt(r2 + j, c).StoreUnsafe(ref o, r2 + j);
                    op.VectorAt(r3 + j, c).StoreUnsafe(ref o, r3 + j);
                }
                if (head != 0)
                {
                    f0.StoreUnsafe(ref o, r0);
                    f1.StoreUnsafe(ref o, r1);
                    f2.StoreUnsafe(ref o, r2);
                    f3.StoreUnsafe(ref o, r3);
                }
                e0.StoreUnsafe(ref o, r0 + last);
                e1.StoreUnsafe(ref o, r1 + last);
                e2.StoreUnsafe(ref o, r2 + last);
                e3.StoreUnsafe(ref o, r3 + last);
            }
            for (; n < rows; n++)
            {
                nuint r = (nuint)n * step;
                TVector first = op.VectorAt(r, op.CoefficientsAt<TVector>(0)), end = op.VectorAt(r + last, op.CoefficientsAt<TVector>(last));
                for (nuint j = head; j < last; j += (nuint)vector) op.VectorAt(r + j, op.CoefficientsAt<TVector>(j)).StoreUnsafe(ref o, r + j);
                first.StoreUnsafe(ref o, r);
                end.StoreUnsafe(ref o, r + last);
            }
        }
    }

    /// <summary>y = (x − center)·scale + shift over one run with the same coefficients throughout (a channel's run in
    /// evaluation mode, or in the training forward's output pass), with the results of <see cref="Write{T, TOp}"/>
    /// and <see cref="ShiftScale{T, TCoefficient}"/>, through the cache or, with <paramref name="streaming"/>, past it
    /// at 256 and 512 bits: with 128-bit vectors its cached stores took BatchNorm2d 64x64x56x56's evaluation forward
    /// from 104 % to 118 % of the copy bandwidth on one thread and from 98 % to 114 % on two (AMD EPYC,
    /// DOTNET_EnableAVX2=0, alternating rounds under load; see also <see cref="Write{T, TOp, TVector}"/>).
    /// At 128 and 256 bits it runs <see cref="WriteRun"/>'s loop; through the cache that loop's first form measured
    /// 15–20 % faster than the generic driver at 128 bits (BatchNorm2d 128x32x28x28 evaluation forward, one thread,
    /// AMD EPYC), and at 256 bits, once storage started on a cache line, 1.32–1.35× libtorch instead of 1.15–1.22×
    /// (128x32x28x28), 1.68–1.91× instead of 1.42–1.61× (128x64x14x14) and 1.68–1.83× instead of 1.40–1.48×
    /// (32x256x14x14), one thread, three alternating idle runs of each build. Streaming at 256 bits it took BatchNorm2d
    /// 64x64x56x56's output pass from 3.20–3.31 to 2.71–2.82 ms (one thread, same-process alternating rounds under
    /// load). At 512 bits it was slower through the cache (128x32x28x28, one thread: 0.385–0.442 against
    /// 0.335–0.345 ms) and no faster streaming, so that width keeps the generic driver. Through the cache, BatchNorm's
    /// evaluation forward now writes all of a thread's runs with <see cref="ShiftScaleRuns{T}"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ShiftScaleRun<T>(ReadOnlySpan<T> x, Span<T> y, T center, T scale, T shift, bool streaming = false)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (Vector512.IsHardwareAccelerated) Write<T, ShiftScale<T, Uniform<T>>, Simd512<T>>(y, new(x, new(center), new(scale), new(shift)), streaming);
        else if (Vector256.IsHardwareAccelerated) ShiftScaleRun<T, Simd256<T>>(x, y, center, scale, shift, streaming);
        else ShiftScaleRun<T, Simd128<T>>(x, y, center, scale, shift, streaming);
    }

    /// <summary><see cref="ShiftScaleRun{T}(ReadOnlySpan{T}, Span{T}, T, T, T, bool)"/> at any width, always by
    /// <see cref="WriteRun"/> (streaming only with vectors of 256 bits or more); y may be x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ShiftScaleRun<T, TVector>(ReadOnlySpan<T> x, Span<T> y, T center, T scale, T shift, bool streaming = false)
        where T : unmanaged, IFloatingPointIeee754<T> where TVector : struct, ISimdVector<TVector, T> =>
        WriteRun<T, ShiftScaleStep<T, TVector>, TVector>(y, new(x, center, scale, shift), streaming && StreamsAtWidth<T, TVector>());

    /// <summary>dx = dy·a + (x − center)·k + l over one run with the same coefficients throughout (a channel's run in
    /// the batch path's backward pass), with the results of <see cref="GradientFromSums{T, TCoefficient}"/>, through
    /// the cache or, with <paramref name="streaming"/>, past it, at every width: unlike the output pass, which reads
    /// one stream, this one reads two, and streaming 128-bit stores took BatchNorm2d 64x64x56x56's dx pass from
    /// 5.2–5.8 to 4.6–5.1 ms (one thread, same-process alternating rounds under load, AMD EPYC, DOTNET_EnableAVX2=0).
    /// At 128 and 256 bits by <see cref="WriteRun"/>'s loop (at 256 bits 1–7 % faster than the generic driver); at 512
    /// bits by the generic driver, against which that loop measured 2–4 % slower (4.45–4.72 against 4.34–4.55 ms).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void GradientRun<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, Span<T> dx, T a, T center, T k, T l, bool streaming)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (Vector512.IsHardwareAccelerated)
            Write<T, GradientFromSums<T, Uniform<T>>, Simd512<T>>(dx, new(dy, x, new(a), new(center), new(k), new(l)), streaming);
        else if (Vector256.IsHardwareAccelerated) GradientRun<T, Simd256<T>>(dy, x, dx, a, center, k, l, streaming);
        else GradientRun<T, Simd128<T>>(dy, x, dx, a, center, k, l, streaming);
    }

    /// <summary><see cref="GradientRun{T}(ReadOnlySpan{T}, ReadOnlySpan{T}, Span{T}, T, T, T, T, bool)"/> at any
    /// width, always by <see cref="WriteRun"/>; dx may be dy or x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void GradientRun<T, TVector>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, Span<T> dx, T a, T center, T k, T l, bool streaming)
        where T : unmanaged, IFloatingPointIeee754<T> where TVector : struct, ISimdVector<TVector, T> =>
        WriteRun<T, GradientStep<T, TVector>, TVector>(dx, new(dy, x, a, center, k, l), streaming);

    /// <summary>Vectors that <see cref="WriteRun"/> forms and stores a turn: two measured faster than one and than
    /// four at 128 and 256 bits (BatchNorm2d 64x64x56x56's output and dx passes, one thread).</summary>
    private const int RunUnroll = 2;

    /// <summary>Writes out[i] = step(i) for every i of one run whose coefficients are the same throughout, with the
    /// results of <see cref="Write{T, TOp}"/>: the stores start on a boundary of the vector or, with
    /// <paramref name="streaming"/>, the whole cache lines are stored past the cache after the partial lines at the
    /// two ends have been written with plain stores (as in <see cref="WriteStreamed"/>, without masked stores); the
    /// vectors that overlap others are formed before any store, so the output may be an input. Its step holds the
    /// coefficient vectors made once and loads at a native-sized offset: the generic driver's op copied each
    /// coefficient vector anew for every vector and sign-extended each load's index, 23 instructions for each cache
    /// line of BatchNorm's output pass at 256 bits where this loop takes 11.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void WriteRun<T, TStep, TVector>(Span<T> output, TStep step, bool streaming)
        where T : unmanaged, IFloatingPointIeee754<T> where TStep : IRunStep<T, TVector>, allows ref struct where TVector : struct, ISimdVector<TVector, T>
    {
        int width = TVector.Count, length = output.Length;
        if (length < width)
        {
            for (int i = 0; i < length; i++) output[i] = step.At(i);
            return;
        }
        fixed (T* pinned = &MemoryMarshal.GetReference(output)) // the alignment found below must hold for the whole loop
        {
            // Streaming: the whole cache lines from the first line boundary; a run without one is written through the cache.
            int line = CacheLineBytes / sizeof(T), toLine = (int)((CacheLineBytes - (nuint)pinned % CacheLineBytes) % CacheLineBytes) / sizeof(T);
            streaming = streaming && length - toLine >= line;
            int misalignment = (int)((nuint)pinned % (nuint)(width * sizeof(T))) / sizeof(T);
            nuint head = (nuint)(streaming ? toLine : misalignment == 0 ? 0 : width - misalignment);
            nuint body = streaming ? head + (nuint)((length - toLine) / line * line) : (nuint)length;
            if (streaming)
            {
                // The partial lines at the two ends, with plain stores only, before any streaming store.
                WriteRunPiece<T, TStep, TVector>(pinned, 0, (int)head, step);
                WriteRunPiece<T, TStep, TVector>(pinned, (int)body, length, step);
                WriteRunBody<T, TStep, TVector>(pinned, head, body, step, streaming: true);
                return;
            }
            WriteCachedRun<T, TStep, TVector>(pinned, length, head, step);
        }
    }

    /// <summary><see cref="WriteRun"/> through the cache, for a pinned output of at least one vector whose first
    /// <paramref name="head"/> elements precede its first vector boundary.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void WriteCachedRun<T, TStep, TVector>(T* output, int length, nuint head, in TStep step)
        where T : unmanaged where TStep : IRunStep<T, TVector>, allows ref struct where TVector : struct, ISimdVector<TVector, T>
    {
        TVector first = step.VectorAt(0), last = step.VectorAt((nuint)(length - TVector.Count));
        WriteRunBody<T, TStep, TVector>(output, head, (nuint)length, step, streaming: false);
        first.StoreUnsafe(ref *output, 0);
        last.StoreUnsafe(ref *output, (nuint)(length - TVector.Count));
    }

    /// <summary>y = (x − c)·scale + shift over consecutive runs of <paramref name="length"/> elements through the
    /// cache, the i-th run with the coefficients of unit (<paramref name="firstUnit"/> + i) mod <paramref name="units"/>
    /// (centres, scales and shifts side by side in <paramref name="coefficients"/>, each <paramref name="units"/>
    /// long): BatchNorm's evaluation forward over a thread's part of (N, C, H, W). The results of
    /// <see cref="ShiftScaleRun{T}(ReadOnlySpan{T}, Span{T}, T, T, T, bool)"/> on each run; y may be x. One call for
    /// all of a thread's runs, each run's vectors stored from a vector boundary as <see cref="WriteRun"/> stores
    /// them: a call per run cost BatchNorm2d 128x64x14x14 (runs of 196 elements) 1.5× the time of a loop written out
    /// by hand, while a plain copy of the same bytes took 0.9× of that loop (256 bits, one thread, idle AMD EPYC Zen 5).
    /// Runs a stride apart are <see cref="ShiftScaleStridedRuns{T}"/>'s: with a stride in this loop as well, the JIT's
    /// code for it took 1.06–1.19× as long here (BatchNorm2d 64x64x28x28, 512 bits) and one run counter fewer 1.2–1.6×
    /// as long at 128 bits.</summary>
    public static void ShiftScaleRuns<T>(ReadOnlySpan<T> x, Span<T> y, int length, int firstUnit, ReadOnlySpan<T> coefficients, int units)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (Vector512.IsHardwareAccelerated) ShiftScaleRuns<T, Simd512<T>>(x, y, length, firstUnit, coefficients, units);
        else if (Vector256.IsHardwareAccelerated) ShiftScaleRuns<T, Simd256<T>>(x, y, length, firstUnit, coefficients, units);
        else ShiftScaleRuns<T, Simd128<T>>(x, y, length, firstUnit, coefficients, units);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void ShiftScaleRuns<T, TVector>(ReadOnlySpan<T> x, Span<T> y, int length, int firstUnit, ReadOnlySpan<T> coefficients, int units)
        where T : unmanaged, IFloatingPointIeee754<T> where TVector : struct, ISimdVector<TVector, T>
    {
        if (x.Length != y.Length || y.Length % length != 0 || coefficients.Length < 3 * units)
            throw new ArgumentException($"ShiftScaleRuns: runs of {length} over x of {x.Length} and y of {y.Length} elements, {coefficients.Length} coefficients for {units} units.");
        int runs = y.Length / length;
        fixed (T* input = x, output = y, c = coefficients)
        {
            T* xr = input, yr = output;
            for (int r = 0, u = firstUnit; r < runs; r++, u = u + 1 == units ? 0 : u + 1, xr += length, yr += length)
                WriteCachedRun<T, ShiftScaleStep<T, TVector>, TVector>(yr, length,
                    new ShiftScaleStep<T, TVector>(new ReadOnlySpan<T>(xr, length), c[u], c[units + u], c[2 * units + u]));
        }
    }

    /// <summary>y = (x − center)·scale + shift over <paramref name="runs"/> runs of <paramref name="length"/> elements
    /// that start <paramref name="stride"/> elements apart (x and y start with the first), all with the same
    /// coefficients, through the cache: one channel's runs in BatchNorm's training forward over short runs (14×14
    /// maps), in one call as <see cref="ShiftScaleRuns{T}"/> writes the evaluation forward's. The results of
    /// <see cref="ShiftScaleRun{T}(ReadOnlySpan{T}, Span{T}, T, T, T, bool)"/> on each run; y may be x.</summary>
    public static void ShiftScaleStridedRuns<T>(ReadOnlySpan<T> x, Span<T> y, int runs, int length, int stride, T center, T scale, T shift)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (Vector512.IsHardwareAccelerated) ShiftScaleStridedRuns<T, Simd512<T>>(x, y, runs, length, stride, center, scale, shift);
        else if (Vector256.IsHardwareAccelerated) ShiftScaleStridedRuns<T, Simd256<T>>(x, y, runs, length, stride, center, scale, shift);
        else ShiftScaleStridedRuns<T, Simd128<T>>(x, y, runs, length, stride, center, scale, shift);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void ShiftScaleStridedRuns<T, TVector>(ReadOnlySpan<T> x, Span<T> y, int runs, int length, int stride, T center, T scale, T shift)
        where T : unmanaged, IFloatingPointIeee754<T> where TVector : struct, ISimdVector<TVector, T>
    {
        long extent = runs == 0 ? 0 : (long)(runs - 1) * stride + length;
        if (x.Length < extent || y.Length < extent || stride < length)
            throw new ArgumentException($"ShiftScaleStridedRuns: {runs} runs of {length}, {stride} apart, over x of {x.Length} and y of {y.Length} elements.");
        fixed (T* input = x, output = y)
            for (nint offset = 0, end = (nint)runs * stride; offset < end; offset += stride)
                WriteCachedRun<T, ShiftScaleStep<T, TVector>, TVector>(output + offset, length,
                    new ShiftScaleStep<T, TVector>(new ReadOnlySpan<T>(input + offset, length), center, scale, shift));
    }

    /// <summary>One run of <see cref="WriteRun"/> through the cache, pinned, of any length: its vectors stored from a
    /// vector boundary, or element by element when it is shorter than a vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void WriteCachedRun<T, TStep, TVector>(T* output, int length, in TStep step)
        where T : unmanaged where TStep : IRunStep<T, TVector>, allows ref struct where TVector : struct, ISimdVector<TVector, T>
    {
        int width = TVector.Count;
        if (length < width)
        {
            for (int i = 0; i < length; i++) output[i] = step.At(i);
            return;
        }
        int misalignment = (int)((nuint)output % (nuint)(width * sizeof(T))) / sizeof(T);
        WriteCachedRun<T, TStep, TVector>(output, length, (nuint)(misalignment == 0 ? 0 : width - misalignment), step);
    }

    /// <summary>The aligned vectors of <see cref="WriteRun"/> from <paramref name="start"/> to <paramref name="end"/>,
    /// <see cref="RunUnroll"/> a turn. Called with a constant <paramref name="streaming"/>, so that the JIT compiles
    /// each loop with its own store instead of testing the flag at every store.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void WriteRunBody<T, TStep, TVector>(T* output, nuint start, nuint end, in TStep step, bool streaming)
        where T : unmanaged where TStep : IRunStep<T, TVector>, allows ref struct where TVector : struct, ISimdVector<TVector, T>
    {
        nuint vector = (nuint)TVector.Count, i = start;
        for (; i + RunUnroll * vector <= end; i += RunUnroll * vector)
        {
            TVector v0 = step.VectorAt(i), v1 = step.VectorAt(i + vector);
            v0.StoreAligned(output + i, streaming);
            v1.StoreAligned(output + i + vector, streaming);
        }
        if (i + vector <= end) step.VectorAt(i).StoreAligned(output + i, streaming);
    }

    /// <summary>Elements [start, end) of a run, shorter than a cache line, with plain stores that stay inside it:
    /// whole vectors (the last one ending with the piece, formed before the others are stored) or, below one vector,
    /// single elements.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void WriteRunPiece<T, TStep, TVector>(T* output, int start, int end, in TStep step)
        where T : unmanaged where TStep : IRunStep<T, TVector>, allows ref struct where TVector : struct, ISimdVector<TVector, T>
    {
        int width = TVector.Count;
        if (end - start < width)
        {
            for (int i = start; i < end; i++) output[i] = step.At(i);
            return;
        }
        TVector lastOfPiece = step.VectorAt((nuint)(end - width));
        for (int i = start; i <= end - width; i += width) step.VectorAt((nuint)i).StoreUnsafe(ref *output, (nuint)i);
        lastOfPiece.StoreUnsafe(ref *output, (nuint)(end - width));
    }

    /// <summary>Writes out[i] = op(i) for every i, at the widest vector width the machine has.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write<T, TOp>(Span<T> output, TOp op, bool streaming = false)
        where T : unmanaged, IFloatingPointIeee754<T> where TOp : IElementwise<T>, allows ref struct
    {
        if (Vector512.IsHardwareAccelerated) Write<T, TOp, Simd512<T>>(output, op, streaming);
        else if (Vector256.IsHardwareAccelerated) Write<T, TOp, Simd256<T>>(output, op, streaming);
        else Write<T, TOp, Simd128<T>>(output, op, streaming);
    }

    /// <summary>Writes out[i] = op(i) for every i, through the cache (<see cref="WriteCached"/>) or, with
    /// <paramref name="streaming"/>, past it (<see cref="WriteStreamed"/>). Every vector is formed before any store
    /// that covers its inputs, so the output may be the input. The two are separate methods, each the only user of
    /// its op: a loop in a method that also hands its op to another kept the JIT from holding the op's spans in
    /// registers, and ran up to six times slower.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write<T, TOp, TVector>(Span<T> output, TOp op, bool streaming = false)
        where T : unmanaged, IFloatingPointIeee754<T> where TOp : IElementwise<T>, allows ref struct where TVector : struct, ISimdVector<TVector, T>
    {
        if (streaming && StreamsAtWidth<T, TVector>()) WriteStreamed<T, TOp, TVector>(output, op);
        else WriteCached<T, TOp, TVector>(output, op);
    }

    /// <summary>Whether an output asked to stream past the cache does so at this width: 128-bit streaming stores
    /// measured a third slower than cached ones on an AMD EPYC (BatchNorm2d 64x64x56x56 evaluation forward, one input
    /// stream), where 256- and 512-bit ones are faster, so narrow vectors do not stream. The one exception is
    /// <see cref="GradientRun{T}(ReadOnlySpan{T}, ReadOnlySpan{T}, Span{T}, T, T, T, T, bool)"/>, whose two input
    /// streams measured faster with streaming 128-bit stores.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool StreamsAtWidth<T, TVector>() where T : unmanaged where TVector : struct, ISimdVector<TVector, T> =>
        TVector.Count * Unsafe.SizeOf<T>() >= 32;

    /// <summary>Writes out[i] = op(i) with plain stores. The whole vectors start on a boundary of the vector's size
    /// (a store that straddles two cache lines costs about twice as much); the first and last vectors of the span are
    /// stored whole, overlapping the aligned ones (the same lanes get the same values).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void WriteCached<T, TOp, TVector>(Span<T> output, TOp op)
        where T : unmanaged, IFloatingPointIeee754<T> where TOp : IElementwise<T>, allows ref struct where TVector : struct, ISimdVector<TVector, T>
    {
        int width = TVector.Count, length = output.Length;
        if (length < width)
        {
            for (int i = 0; i < length; i++) output[i] = op.At(i);
            return;
        }
        fixed (T* pinned = &MemoryMarshal.GetReference(output)) // the alignment found below must hold for the whole loop
        {
            int bytes = width * sizeof(T), misalignment = (int)((nuint)pinned % (nuint)bytes);
            // The first and last vectors are formed before and stored after the aligned ones (an in-place output
            // would otherwise feed them written lanes); a span too short for an aligned vector is covered by them.
            TVector first = op.VectorAt<TVector>(0), last = op.VectorAt<TVector>(length - width);
            for (int i = misalignment == 0 ? 0 : (bytes - misalignment) / sizeof(T); i <= length - width; i += width)
                op.VectorAt<TVector>(i).StoreAligned(pinned + i, streaming: false);
            first.StoreUnsafe(ref *pinned, 0);
            last.StoreUnsafe(ref *pinned, (nuint)(length - width));
        }
    }

    /// <summary>Writes out[i] = op(i) with the span's whole cache lines stored past the cache (an output larger than
    /// the cache is not read back soon, and this saves reading each line before writing it). Only whole lines
    /// stream: a line that a streaming store has partly written and a plain store then touches costs a round trip
    /// to memory, so the partial lines at the two ends are written first with plain stores alone: one masked vector
    /// each where a vector is a whole line and masked stores are single instructions (AVX-512), otherwise whole
    /// vectors (the last one ending with the piece, formed before the others are stored) and, for a piece shorter
    /// than a vector, single elements. AVX2's masked stores are not used: on AMD processors they are microcoded,
    /// and a 256-bit vmaskmovps measured ten times as long as a plain store. A span without a whole line is written
    /// as by <see cref="WriteCached"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void WriteStreamed<T, TOp, TVector>(Span<T> output, TOp op)
        where T : unmanaged, IFloatingPointIeee754<T> where TOp : IElementwise<T>, allows ref struct where TVector : struct, ISimdVector<TVector, T>
    {
        int width = TVector.Count, length = output.Length;
        fixed (T* pinned = &MemoryMarshal.GetReference(output))
        {
            int line = CacheLineBytes / sizeof(T), misalignment = (int)((nuint)pinned % CacheLineBytes);
            int head = misalignment == 0 ? 0 : (CacheLineBytes - misalignment) / sizeof(T), body = head + Math.Max(length - head, 0) / line * line;
            if (body == head)
            {
                // No whole line: the cached driver's stores, or single elements below one vector.
                if (length < width)
                    for (int i = 0; i < length; i++) pinned[i] = op.At(i);
                else
                {
                    TVector firstOfSpan = op.VectorAt<TVector>(0), lastOfSpan = op.VectorAt<TVector>(length - width);
                    for (int i = width; i < length - width; i += width) op.VectorAt<TVector>(i).StoreUnsafe(ref *pinned, (nuint)i);
                    firstOfSpan.StoreUnsafe(ref *pinned, 0);
                    lastOfSpan.StoreUnsafe(ref *pinned, (nuint)(length - width));
                }
                return;
            }
            for (int piece = 0; piece < 2; piece++)
            {
                int start = piece == 0 ? 0 : body, end = piece == 0 ? head : length, count = end - start;
                if (count == 0) continue;
                if (TVector.HasMaskStore && line == width)
                {
                    // The vector that starts (ends) the span, its lanes moved onto the piece's line.
                    if (piece == 0) TVector.MoveLanes(op.VectorAt<TVector>(0), width - count).MaskStore(pinned + end - width, TVector.LanesFrom(width - count));
                    else TVector.MoveLanes(op.VectorAt<TVector>(end - width), count - width).MaskStore(pinned + start, ~TVector.LanesFrom(count));
                }
                else if (count < width)
                    for (int i = start; i < end; i++) pinned[i] = op.At(i);
                else
                {
                    TVector lastOfPiece = op.VectorAt<TVector>(end - width);
                    for (int i = start; i <= end - width; i += width) op.VectorAt<TVector>(i).StoreUnsafe(ref *pinned, (nuint)i);
                    lastOfPiece.StoreUnsafe(ref *pinned, (nuint)(end - width));
                }
            }
            for (int i = head; i < body; i += width) op.VectorAt<TVector>(i).StoreAligned(pinned + i, streaming: true);
        }
    }

    /// <summary>The bytes of a cache line on every x86 and ARM64 processor .NET runs on.</summary>
    private const int CacheLineBytes = 64;
}
