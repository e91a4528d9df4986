using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace NormSharp.Kernels;

// The width-generic shape of the SIMD kernels. .NET's own ISimdVector<TSelf, T> is not public, so the kernels are
// written once against this small interface and instantiated with Simd512, Simd256 or Simd128, thin wrappers that
// the JIT compiles to the bare Vector512/256/128 instructions (AVX-512, AVX2, SSE on x86; AdvSimd on ARM64). Each
// public kernel picks the widest width the machine accelerates; tests instantiate every width on any machine
// (unaccelerated widths run in software, with the same results). Multiply-adds use MultiplyAddEstimate, fused where
// the hardware has FMA and a multiply then an add where it has not (x86 without AVX2), so that a vector lane and the
// scalar form of the same step round alike on every machine.
//
// Kernels with long loops are [MethodImpl(AggressiveOptimization)]: compiled optimized at their first call, with no
// tier-0 code and no on-stack replacement. Tiered, their optimized code arrives only after the call counts and a
// background compile; in a process on one CPU that thread shares the CPU with the work, and the seed CNN's conv2
// forward took 17 ms for its first 2 s against 5 ms (ReLU with its mask 0.16 ms for 4 s against 0.09). They give up
// dynamic PGO, which has nothing to guard in them (no virtual calls); same-process A/B of a kernel compiled both ways,
// steady state: ReLU and Adam as fast or faster (1.00-1.07x).

/// <summary>One SIMD vector of <typeparamref name="T"/>, of a width fixed by the implementing type.</summary>
internal interface ISimdVector<TSelf, T> where TSelf : struct, ISimdVector<TSelf, T> where T : unmanaged
{
    /// <summary>Lanes per vector.</summary>
    static abstract int Count { get; }

    /// <summary>Whether this width runs in hardware here (otherwise it is emulated, correct but slow).</summary>
    static abstract bool IsHardwareAccelerated { get; }

    /// <summary>Whether <see cref="MaskStore"/> and <see cref="MoveLanes"/> are single instructions here (AVX-512,
    /// AVX2), which lets a span's first and last elements be written by one masked vector store each.</summary>
    static abstract bool HasMaskStore { get; }

    static abstract TSelf Zero { get; }

    static abstract TSelf Create(T value);

    static abstract TSelf LoadUnsafe(ref readonly T source, nuint index);

    void StoreUnsafe(ref T destination, nuint index);

    /// <summary>Stores at an address aligned to the vector's size, past the cache when <paramref name="streaming"/>
    /// and the hardware has non-temporal stores.</summary>
    unsafe void StoreAligned(T* destination, bool streaming);

    /// <summary>Stores the lanes where <paramref name="mask"/> is set, leaving the others untouched.</summary>
    unsafe void MaskStore(T* destination, TSelf mask);

    static abstract TSelf operator +(TSelf left, TSelf right);

    static abstract TSelf operator -(TSelf left, TSelf right);

    static abstract TSelf operator *(TSelf left, TSelf right);

    static abstract TSelf operator ~(TSelf mask);

    /// <summary>Lane-wise division, correctly rounded as the scalar division is.</summary>
    static abstract TSelf operator /(TSelf left, TSelf right);

    /// <summary>Lane-wise square root, correctly rounded as the scalar square root is.</summary>
    static abstract TSelf Sqrt(TSelf v);

    /// <summary>a·b + c, fused where the hardware has FMA (as T.MultiplyAddEstimate is).</summary>
    static abstract TSelf MultiplyAdd(TSelf a, TSelf b, TSelf c);

    static abstract TSelf ConditionalSelect(TSelf mask, TSelf whenTrue, TSelf whenFalse);

    /// <summary>A mask of the lanes from <paramref name="first"/> on.</summary>
    static abstract TSelf LanesFrom(int first);

    /// <summary>The lanes moved up by <paramref name="shift"/> (down when negative): lane k takes lane k − shift.</summary>
    static abstract TSelf MoveLanes(TSelf v, int shift);

    static abstract T Sum(TSelf v);

    /// <summary>The larger of each pair of lanes (NaN when either is NaN).</summary>
    static abstract TSelf Max(TSelf left, TSelf right);

    /// <summary>A mask of the lanes where <paramref name="left"/> &lt; <paramref name="right"/>.</summary>
    static abstract TSelf LessThan(TSelf left, TSelf right);

    /// <summary>A mask of the lanes where <paramref name="left"/> ≤ <paramref name="right"/>.</summary>
    static abstract TSelf LessThanOrEqual(TSelf left, TSelf right);

    /// <summary>v·2ⁿ for lanes n holding whole numbers, by adding n to the exponent field: exact while the result is a
    /// normal number. n is converted with the hardware's own instruction (one, where the saturating conversion takes
    /// four), so a lane whose n is out of the integer range or NaN is unspecified: the caller masks it.</summary>
    static abstract TSelf MultiplyByPowerOfTwo(TSelf v, TSelf n);

    /// <summary>The values at even positions of the 2·Count values <paramref name="low"/> then
    /// <paramref name="high"/> (the first and second half of a row loaded as two vectors), in order.</summary>
    static abstract TSelf EvenLanes(TSelf low, TSelf high);

    /// <summary>The values at odd positions of the 2·Count values <paramref name="low"/> then
    /// <paramref name="high"/>, in order.</summary>
    static abstract TSelf OddLanes(TSelf low, TSelf high);

    /// <summary>Bit k set where lane k of the mask <paramref name="mask"/> is set (its sign bit).</summary>
    static abstract uint LaneBits(TSelf mask);

    /// <summary>A mask of the lanes k for which bit k of <paramref name="bits"/> is set (the bits from
    /// <see cref="Count"/> on are ignored).</summary>
    static abstract TSelf LanesOf(uint bits);

    /// <summary>The inverse of <see cref="EvenLanes"/> and <see cref="OddLanes"/>: the 2·Count values
    /// <paramref name="evens"/>[0], <paramref name="odds"/>[0], <paramref name="evens"/>[1], ... as two vectors, the
    /// first half then the second.</summary>
    static abstract (TSelf Low, TSelf High) Interleave(TSelf evens, TSelf odds);
}

/// <summary>A vector of float32 or float64 and the float64 vector of the same width its lanes widen to (float32
/// widens exactly; a float64 vector is its own wide form).</summary>
internal interface IWideningVector<TSelf, T, TWide> : ISimdVector<TSelf, T>
    where TSelf : struct, IWideningVector<TSelf, T, TWide> where T : unmanaged where TWide : struct, ISimdVector<TWide, double>
{
    /// <summary>The lower lanes widened (all lanes of a float64 vector).</summary>
    static abstract TWide WidenLower(TSelf v);

    /// <summary>The upper lanes widened (float32 only).</summary>
    static abstract TWide WidenUpper(TSelf v);
}

/// <summary>512-bit vectors (AVX-512).</summary>
internal readonly struct Simd512<T>(Vector512<T> value) : IWideningVector<Simd512<T>, T, Simd512<double>> where T : unmanaged
{
    public readonly Vector512<T> Value = value;

    public static int Count => Vector512<T>.Count;
    public static bool IsHardwareAccelerated => Vector512.IsHardwareAccelerated;
    public static bool HasMaskStore => Avx512F.IsSupported;
    public static Simd512<T> Zero => default;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512<T> Create(T value) => new(Vector512.Create(value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512<T> LoadUnsafe(ref readonly T source, nuint index) => new(Vector512.LoadUnsafe(in source, index));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void StoreUnsafe(ref T destination, nuint index) => Value.StoreUnsafe(ref destination, index);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe void StoreAligned(T* destination, bool streaming)
    {
        if (!streaming || !Avx512F.IsSupported) Value.StoreAligned(destination);
        else if (typeof(T) == typeof(float)) Avx512F.StoreAlignedNonTemporal((float*)destination, Value.AsSingle());
        else Avx512F.StoreAlignedNonTemporal((double*)destination, Value.AsDouble());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe void MaskStore(T* destination, Simd512<T> mask)
    {
        if (typeof(T) == typeof(float)) Avx512F.MaskStore((float*)destination, mask.Value.AsSingle(), Value.AsSingle());
        else Avx512F.MaskStore((double*)destination, mask.Value.AsDouble(), Value.AsDouble());
    }

    public static Simd512<T> operator +(Simd512<T> left, Simd512<T> right) => new(left.Value + right.Value);
    public static Simd512<T> operator -(Simd512<T> left, Simd512<T> right) => new(left.Value - right.Value);
    public static Simd512<T> operator *(Simd512<T> left, Simd512<T> right) => new(left.Value * right.Value);
    public static Simd512<T> operator ~(Simd512<T> mask) => new(~mask.Value);
    public static Simd512<T> operator /(Simd512<T> left, Simd512<T> right) => new(left.Value / right.Value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512<T> Sqrt(Simd512<T> v) => new(Vector512.Sqrt(v.Value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512<T> MultiplyAdd(Simd512<T> a, Simd512<T> b, Simd512<T> c)
    {
        if (typeof(T) == typeof(float)) return new(Vector512.MultiplyAddEstimate(a.Value.AsSingle(), b.Value.AsSingle(), c.Value.AsSingle()).As<float, T>());
        return new(Vector512.MultiplyAddEstimate(a.Value.AsDouble(), b.Value.AsDouble(), c.Value.AsDouble()).As<double, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512<T> ConditionalSelect(Simd512<T> mask, Simd512<T> whenTrue, Simd512<T> whenFalse) =>
        new(Vector512.ConditionalSelect(mask.Value, whenTrue.Value, whenFalse.Value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512<T> LanesFrom(int first)
    {
        if (typeof(T) == typeof(float)) return new(Vector512.GreaterThanOrEqual(Vector512<int>.Indices, Vector512.Create(first)).As<int, T>());
        return new(Vector512.GreaterThanOrEqual(Vector512<long>.Indices, Vector512.Create((long)first)).As<long, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512<T> MoveLanes(Simd512<T> v, int shift)
    {
        if (typeof(T) == typeof(float)) return new(Vector512.Shuffle(v.Value.AsSingle(), Vector512<int>.Indices - Vector512.Create(shift)).As<float, T>());
        return new(Vector512.Shuffle(v.Value.AsDouble(), Vector512<long>.Indices - Vector512.Create((long)shift)).As<double, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Sum(Simd512<T> v) => Vector512.Sum(v.Value);

    public static Simd512<T> Max(Simd512<T> left, Simd512<T> right) => new(Vector512.Max(left.Value, right.Value));

    public static Simd512<T> LessThan(Simd512<T> left, Simd512<T> right) => new(Vector512.LessThan(left.Value, right.Value));

    public static Simd512<T> LessThanOrEqual(Simd512<T> left, Simd512<T> right) => new(Vector512.LessThanOrEqual(left.Value, right.Value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512<T> MultiplyByPowerOfTwo(Simd512<T> v, Simd512<T> n)
    {
        if (typeof(T) == typeof(float)) return new((v.Value.AsInt32() + (Vector512.ConvertToInt32Native(n.Value.AsSingle()) << 23)).As<int, T>());
        return new((v.Value.AsInt64() + (Vector512.ConvertToInt64Native(n.Value.AsDouble()) << 52)).As<long, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512<double> WidenLower(Simd512<T> v) =>
        new(typeof(T) == typeof(float) ? Vector512.WidenLower(v.Value.AsSingle()) : v.Value.AsDouble());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512<double> WidenUpper(Simd512<T> v) => new(Vector512.WidenUpper(v.Value.AsSingle()));

    // A constant permutation of each vector (shufps / vpermps / vpermpd) puts its even or odd lanes in both halves; one
    // blend takes the lower half from the first and the upper from the second.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Simd512<T> UpperHalf() => LanesFrom(Count / 2);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512<T> EvenLanes(Simd512<T> low, Simd512<T> high) => PairLanes(low, high, Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14), Vector512.Create(0L, 2, 4, 6, 0, 2, 4, 6));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512<T> OddLanes(Simd512<T> low, Simd512<T> high) => PairLanes(low, high, Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 1, 3, 5, 7, 9, 11, 13, 15), Vector512.Create(1L, 3, 5, 7, 1, 3, 5, 7));

    /// <summary>The lanes of <paramref name="low"/> at the lower half of the indices, then those of
    /// <paramref name="high"/> at the upper half (float32 lanes by <paramref name="floatLanes"/>, float64 by
    /// <paramref name="doubleLanes"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Simd512<T> PairLanes(Simd512<T> low, Simd512<T> high, Vector512<int> floatLanes, Vector512<long> doubleLanes)
    {
        if (typeof(T) == typeof(float))
            return new(Vector512.ConditionalSelect(UpperHalf().Value.AsSingle(), Vector512.Shuffle(high.Value.AsSingle(), floatLanes), Vector512.Shuffle(low.Value.AsSingle(), floatLanes)).As<float, T>());
        return new(Vector512.ConditionalSelect(UpperHalf().Value.AsDouble(), Vector512.Shuffle(high.Value.AsDouble(), doubleLanes), Vector512.Shuffle(low.Value.AsDouble(), doubleLanes)).As<double, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint LaneBits(Simd512<T> mask) => (uint)Vector512.ExtractMostSignificantBits(mask.Value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd512<T> LanesOf(uint bits)
    {
        if (typeof(T) == typeof(float))
        {
            Vector512<int> lanes = Vector512.Create(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768);
            return new(Vector512.Equals(Vector512.Create((int)bits) & lanes, lanes).As<int, T>());
        }
        Vector512<long> wideLanes = Vector512.Create(1L, 2, 4, 8, 16, 32, 64, 128);
        return new(Vector512.Equals(Vector512.Create((long)bits) & wideLanes, wideLanes).As<long, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Simd512<T> Low, Simd512<T> High) Interleave(Simd512<T> evens, Simd512<T> odds)
    {
        // One two-source permutation (vpermt2ps / vpermt2pd) for each half.
        if (Avx512F.IsSupported && typeof(T) == typeof(float))
            return (new(Avx512F.PermuteVar16x32x2(evens.Value.AsSingle(), Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), odds.Value.AsSingle()).As<float, T>()),
                new(Avx512F.PermuteVar16x32x2(evens.Value.AsSingle(), Vector512.Create(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), odds.Value.AsSingle()).As<float, T>()));
        if (Avx512F.IsSupported)
            return (new(Avx512F.PermuteVar8x64x2(evens.Value.AsDouble(), Vector512.Create(0L, 8, 1, 9, 2, 10, 3, 11), odds.Value.AsDouble()).As<double, T>()),
                new(Avx512F.PermuteVar8x64x2(evens.Value.AsDouble(), Vector512.Create(4L, 12, 5, 13, 6, 14, 7, 15), odds.Value.AsDouble()).As<double, T>()));
        return (ZipLanes(evens, odds, Vector512.Create(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7), Vector512.Create(0L, 0, 1, 1, 2, 2, 3, 3)),
            ZipLanes(evens, odds, Vector512.Create(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15), Vector512.Create(4L, 4, 5, 5, 6, 6, 7, 7)));
    }

    /// <summary>Lane k from <paramref name="evens"/> (k even) or <paramref name="odds"/> (k odd), each permuted by the
    /// lane indices (float32 by <paramref name="floatLanes"/>, float64 by <paramref name="doubleLanes"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Simd512<T> ZipLanes(Simd512<T> evens, Simd512<T> odds, Vector512<int> floatLanes, Vector512<long> doubleLanes)
    {
        if (typeof(T) == typeof(float))
            return new(Vector512.ConditionalSelect(Vector512.Equals(Vector512<int>.Indices & Vector512<int>.One, Vector512<int>.One).AsSingle(),
                Vector512.Shuffle(odds.Value.AsSingle(), floatLanes), Vector512.Shuffle(evens.Value.AsSingle(), floatLanes)).As<float, T>());
        return new(Vector512.ConditionalSelect(Vector512.Equals(Vector512<long>.Indices & Vector512<long>.One, Vector512<long>.One).AsDouble(),
            Vector512.Shuffle(odds.Value.AsDouble(), doubleLanes), Vector512.Shuffle(evens.Value.AsDouble(), doubleLanes)).As<double, T>());
    }
}

/// <summary>256-bit vectors (AVX2).</summary>
internal readonly struct Simd256<T>(Vector256<T> value) : IWideningVector<Simd256<T>, T, Simd256<double>> where T : unmanaged
{
    public readonly Vector256<T> Value = value;

    public static int Count => Vector256<T>.Count;
    public static bool IsHardwareAccelerated => Vector256.IsHardwareAccelerated;
    public static bool HasMaskStore => Avx2.IsSupported;
    public static Simd256<T> Zero => default;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256<T> Create(T value) => new(Vector256.Create(value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256<T> LoadUnsafe(ref readonly T source, nuint index) => new(Vector256.LoadUnsafe(in source, index));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void StoreUnsafe(ref T destination, nuint index) => Value.StoreUnsafe(ref destination, index);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe void StoreAligned(T* destination, bool streaming)
    {
        if (!streaming || !Avx.IsSupported) Value.StoreAligned(destination);
        else if (typeof(T) == typeof(float)) Avx.StoreAlignedNonTemporal((float*)destination, Value.AsSingle());
        else Avx.StoreAlignedNonTemporal((double*)destination, Value.AsDouble());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe void MaskStore(T* destination, Simd256<T> mask)
    {
        if (typeof(T) == typeof(float)) Avx.MaskStore((float*)destination, mask.Value.AsSingle(), Value.AsSingle());
        else Avx.MaskStore((double*)destination, mask.Value.AsDouble(), Value.AsDouble());
    }

    public static Simd256<T> operator +(Simd256<T> left, Simd256<T> right) => new(left.Value + right.Value);
    public static Simd256<T> operator -(Simd256<T> left, Simd256<T> right) => new(left.Value - right.Value);
    public static Simd256<T> operator *(Simd256<T> left, Simd256<T> right) => new(left.Value * right.Value);
    public static Simd256<T> operator ~(Simd256<T> mask) => new(~mask.Value);
    public static Simd256<T> operator /(Simd256<T> left, Simd256<T> right) => new(left.Value / right.Value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256<T> Sqrt(Simd256<T> v) => new(Vector256.Sqrt(v.Value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256<T> MultiplyAdd(Simd256<T> a, Simd256<T> b, Simd256<T> c)
    {
        if (typeof(T) == typeof(float)) return new(Vector256.MultiplyAddEstimate(a.Value.AsSingle(), b.Value.AsSingle(), c.Value.AsSingle()).As<float, T>());
        return new(Vector256.MultiplyAddEstimate(a.Value.AsDouble(), b.Value.AsDouble(), c.Value.AsDouble()).As<double, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256<T> ConditionalSelect(Simd256<T> mask, Simd256<T> whenTrue, Simd256<T> whenFalse) =>
        new(Vector256.ConditionalSelect(mask.Value, whenTrue.Value, whenFalse.Value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256<T> LanesFrom(int first)
    {
        if (typeof(T) == typeof(float)) return new(Vector256.GreaterThanOrEqual(Vector256<int>.Indices, Vector256.Create(first)).As<int, T>());
        return new(Vector256.GreaterThanOrEqual(Vector256<long>.Indices, Vector256.Create((long)first)).As<long, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256<T> MoveLanes(Simd256<T> v, int shift)
    {
        if (typeof(T) == typeof(float)) return new(Vector256.Shuffle(v.Value.AsSingle(), Vector256<int>.Indices - Vector256.Create(shift)).As<float, T>());
        return new(Vector256.Shuffle(v.Value.AsDouble(), Vector256<long>.Indices - Vector256.Create((long)shift)).As<double, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Sum(Simd256<T> v) => Vector256.Sum(v.Value);

    public static Simd256<T> Max(Simd256<T> left, Simd256<T> right) => new(Vector256.Max(left.Value, right.Value));

    public static Simd256<T> LessThan(Simd256<T> left, Simd256<T> right) => new(Vector256.LessThan(left.Value, right.Value));

    public static Simd256<T> LessThanOrEqual(Simd256<T> left, Simd256<T> right) => new(Vector256.LessThanOrEqual(left.Value, right.Value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256<T> MultiplyByPowerOfTwo(Simd256<T> v, Simd256<T> n)
    {
        if (typeof(T) == typeof(float)) return new((v.Value.AsInt32() + (Vector256.ConvertToInt32Native(n.Value.AsSingle()) << 23)).As<int, T>());
        return new((v.Value.AsInt64() + (Vector256.ConvertToInt64Native(n.Value.AsDouble()) << 52)).As<long, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256<double> WidenLower(Simd256<T> v) =>
        new(typeof(T) == typeof(float) ? Vector256.WidenLower(v.Value.AsSingle()) : v.Value.AsDouble());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256<double> WidenUpper(Simd256<T> v) => new(Vector256.WidenUpper(v.Value.AsSingle()));

    // A constant permutation of each vector (shufps / vpermps / vpermpd) puts its even or odd lanes in both halves; one
    // blend takes the lower half from the first and the upper from the second.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Simd256<T> UpperHalf() => LanesFrom(Count / 2);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256<T> EvenLanes(Simd256<T> low, Simd256<T> high) => PairLanes(low, high, Vector256.Create(0, 2, 4, 6, 0, 2, 4, 6), Vector256.Create(0L, 2, 0, 2));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256<T> OddLanes(Simd256<T> low, Simd256<T> high) => PairLanes(low, high, Vector256.Create(1, 3, 5, 7, 1, 3, 5, 7), Vector256.Create(1L, 3, 1, 3));

    /// <summary>The lanes of <paramref name="low"/> at the lower half of the indices, then those of
    /// <paramref name="high"/> at the upper half (float32 lanes by <paramref name="floatLanes"/>, float64 by
    /// <paramref name="doubleLanes"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Simd256<T> PairLanes(Simd256<T> low, Simd256<T> high, Vector256<int> floatLanes, Vector256<long> doubleLanes)
    {
        if (typeof(T) == typeof(float))
            return new(Vector256.ConditionalSelect(UpperHalf().Value.AsSingle(), Vector256.Shuffle(high.Value.AsSingle(), floatLanes), Vector256.Shuffle(low.Value.AsSingle(), floatLanes)).As<float, T>());
        return new(Vector256.ConditionalSelect(UpperHalf().Value.AsDouble(), Vector256.Shuffle(high.Value.AsDouble(), doubleLanes), Vector256.Shuffle(low.Value.AsDouble(), doubleLanes)).As<double, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint LaneBits(Simd256<T> mask) => Vector256.ExtractMostSignificantBits(mask.Value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd256<T> LanesOf(uint bits)
    {
        if (typeof(T) == typeof(float))
        {
            Vector256<int> lanes = Vector256.Create(1, 2, 4, 8, 16, 32, 64, 128);
            return new(Vector256.Equals(Vector256.Create((int)bits) & lanes, lanes).As<int, T>());
        }
        Vector256<long> wideLanes = Vector256.Create(1L, 2, 4, 8);
        return new(Vector256.Equals(Vector256.Create((long)bits) & wideLanes, wideLanes).As<long, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Simd256<T> Low, Simd256<T> High) Interleave(Simd256<T> evens, Simd256<T> odds)
    {
        // unpcklps / unpckhps interleave within each 128-bit half; vperm2f128 puts the halves in order.
        if (Avx.IsSupported && typeof(T) == typeof(float))
        {
            Vector256<float> low = Avx.UnpackLow(evens.Value.AsSingle(), odds.Value.AsSingle()), high = Avx.UnpackHigh(evens.Value.AsSingle(), odds.Value.AsSingle());
            return (new(Avx.Permute2x128(low, high, 0x20).As<float, T>()), new(Avx.Permute2x128(low, high, 0x31).As<float, T>()));
        }
        if (Avx.IsSupported)
        {
            Vector256<double> low = Avx.UnpackLow(evens.Value.AsDouble(), odds.Value.AsDouble()), high = Avx.UnpackHigh(evens.Value.AsDouble(), odds.Value.AsDouble());
            return (new(Avx.Permute2x128(low, high, 0x20).As<double, T>()), new(Avx.Permute2x128(low, high, 0x31).As<double, T>()));
        }
        return (ZipLanes(evens, odds, Vector256.Create(0, 0, 1, 1, 2, 2, 3, 3), Vector256.Create(0L, 0, 1, 1)),
            ZipLanes(evens, odds, Vector256.Create(4, 4, 5, 5, 6, 6, 7, 7), Vector256.Create(2L, 2, 3, 3)));
    }

    /// <summary>Lane k from <paramref name="evens"/> (k even) or <paramref name="odds"/> (k odd), each permuted by the
    /// lane indices (float32 by <paramref name="floatLanes"/>, float64 by <paramref name="doubleLanes"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Simd256<T> ZipLanes(Simd256<T> evens, Simd256<T> odds, Vector256<int> floatLanes, Vector256<long> doubleLanes)
    {
        if (typeof(T) == typeof(float))
            return new(Vector256.ConditionalSelect(Vector256.Equals(Vector256<int>.Indices & Vector256<int>.One, Vector256<int>.One).AsSingle(),
                Vector256.Shuffle(odds.Value.AsSingle(), floatLanes), Vector256.Shuffle(evens.Value.AsSingle(), floatLanes)).As<float, T>());
        return new(Vector256.ConditionalSelect(Vector256.Equals(Vector256<long>.Indices & Vector256<long>.One, Vector256<long>.One).AsDouble(),
            Vector256.Shuffle(odds.Value.AsDouble(), doubleLanes), Vector256.Shuffle(evens.Value.AsDouble(), doubleLanes)).As<double, T>());
    }
}

/// <summary>128-bit vectors (SSE on x86, AdvSimd on ARM64).</summary>
internal readonly struct Simd128<T>(Vector128<T> value) : IWideningVector<Simd128<T>, T, Simd128<double>> where T : unmanaged
{
    public readonly Vector128<T> Value = value;

    public static int Count => Vector128<T>.Count;
    public static bool IsHardwareAccelerated => Vector128.IsHardwareAccelerated;
    public static bool HasMaskStore => false;
    public static Simd128<T> Zero => default;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd128<T> Create(T value) => new(Vector128.Create(value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd128<T> LoadUnsafe(ref readonly T source, nuint index) => new(Vector128.LoadUnsafe(in source, index));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void StoreUnsafe(ref T destination, nuint index) => Value.StoreUnsafe(ref destination, index);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe void StoreAligned(T* destination, bool streaming)
    {
        if (!streaming || !Sse2.IsSupported) Value.StoreAligned(destination);
        else if (typeof(T) == typeof(float)) Sse.StoreAlignedNonTemporal((float*)destination, Value.AsSingle());
        else Sse2.StoreAlignedNonTemporal((double*)destination, Value.AsDouble());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe void MaskStore(T* destination, Simd128<T> mask)
    {
        if (Avx.IsSupported && typeof(T) == typeof(float)) Avx.MaskStore((float*)destination, mask.Value.AsSingle(), Value.AsSingle());
        else if (Avx.IsSupported) Avx.MaskStore((double*)destination, mask.Value.AsDouble(), Value.AsDouble());
        else
            for (int k = 0; k < Count; k++)
                if (mask.Value.AsInt32()[k * sizeof(T) / sizeof(int)] != 0) destination[k] = Value[k];
    }

    public static Simd128<T> operator +(Simd128<T> left, Simd128<T> right) => new(left.Value + right.Value);
    public static Simd128<T> operator -(Simd128<T> left, Simd128<T> right) => new(left.Value - right.Value);
    public static Simd128<T> operator *(Simd128<T> left, Simd128<T> right) => new(left.Value * right.Value);
    public static Simd128<T> operator ~(Simd128<T> mask) => new(~mask.Value);
    public static Simd128<T> operator /(Simd128<T> left, Simd128<T> right) => new(left.Value / right.Value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd128<T> Sqrt(Simd128<T> v) => new(Vector128.Sqrt(v.Value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd128<T> MultiplyAdd(Simd128<T> a, Simd128<T> b, Simd128<T> c)
    {
        if (typeof(T) == typeof(float)) return new(Vector128.MultiplyAddEstimate(a.Value.AsSingle(), b.Value.AsSingle(), c.Value.AsSingle()).As<float, T>());
        return new(Vector128.MultiplyAddEstimate(a.Value.AsDouble(), b.Value.AsDouble(), c.Value.AsDouble()).As<double, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd128<T> ConditionalSelect(Simd128<T> mask, Simd128<T> whenTrue, Simd128<T> whenFalse) =>
        new(Vector128.ConditionalSelect(mask.Value, whenTrue.Value, whenFalse.Value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd128<T> LanesFrom(int first)
    {
        if (typeof(T) == typeof(float)) return new(Vector128.GreaterThanOrEqual(Vector128<int>.Indices, Vector128.Create(first)).As<int, T>());
        return new(Vector128.GreaterThanOrEqual(Vector128<long>.Indices, Vector128.Create((long)first)).As<long, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd128<T> MoveLanes(Simd128<T> v, int shift)
    {
        if (typeof(T) == typeof(float)) return new(Vector128.Shuffle(v.Value.AsSingle(), Vector128<int>.Indices - Vector128.Create(shift)).As<float, T>());
        return new(Vector128.Shuffle(v.Value.AsDouble(), Vector128<long>.Indices - Vector128.Create((long)shift)).As<double, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Sum(Simd128<T> v) => Vector128.Sum(v.Value);

    public static Simd128<T> Max(Simd128<T> left, Simd128<T> right) => new(Vector128.Max(left.Value, right.Value));

    public static Simd128<T> LessThan(Simd128<T> left, Simd128<T> right) => new(Vector128.LessThan(left.Value, right.Value));

    public static Simd128<T> LessThanOrEqual(Simd128<T> left, Simd128<T> right) => new(Vector128.LessThanOrEqual(left.Value, right.Value));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd128<T> MultiplyByPowerOfTwo(Simd128<T> v, Simd128<T> n)
    {
        if (typeof(T) == typeof(float)) return new((v.Value.AsInt32() + (Vector128.ConvertToInt32Native(n.Value.AsSingle()) << 23)).As<int, T>());
        return new((v.Value.AsInt64() + (Vector128.ConvertToInt64Native(n.Value.AsDouble()) << 52)).As<long, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd128<double> WidenLower(Simd128<T> v) =>
        new(typeof(T) == typeof(float) ? Vector128.WidenLower(v.Value.AsSingle()) : v.Value.AsDouble());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd128<double> WidenUpper(Simd128<T> v) => new(Vector128.WidenUpper(v.Value.AsSingle()));

    // A constant permutation of each vector (shufps / vpermps / vpermpd) puts its even or odd lanes in both halves; one
    // blend takes the lower half from the first and the upper from the second.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Simd128<T> UpperHalf() => LanesFrom(Count / 2);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd128<T> EvenLanes(Simd128<T> low, Simd128<T> high) => PairLanes(low, high, Vector128.Create(0, 2, 0, 2), Vector128.Create(0L, 0));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd128<T> OddLanes(Simd128<T> low, Simd128<T> high) => PairLanes(low, high, Vector128.Create(1, 3, 1, 3), Vector128.Create(1L, 1));

    /// <summary>The lanes of <paramref name="low"/> at the lower half of the indices, then those of
    /// <paramref name="high"/> at the upper half (float32 lanes by <paramref name="floatLanes"/>, float64 by
    /// <paramref name="doubleLanes"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Simd128<T> PairLanes(Simd128<T> low, Simd128<T> high, Vector128<int> floatLanes, Vector128<long> doubleLanes)
    {
        if (typeof(T) == typeof(float))
            return new(Vector128.ConditionalSelect(UpperHalf().Value.AsSingle(), Vector128.Shuffle(high.Value.AsSingle(), floatLanes), Vector128.Shuffle(low.Value.AsSingle(), floatLanes)).As<float, T>());
        return new(Vector128.ConditionalSelect(UpperHalf().Value.AsDouble(), Vector128.Shuffle(high.Value.AsDouble(), doubleLanes), Vector128.Shuffle(low.Value.AsDouble(), doubleLanes)).As<double, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint LaneBits(Simd128<T> mask) => Vector128.ExtractMostSignificantBits(mask.Value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Simd128<T> LanesOf(uint bits)
    {
        if (typeof(T) == typeof(float))
        {
            Vector128<int> lanes = Vector128.Create(1, 2, 4, 8);
            return new(Vector128.Equals(Vector128.Create((int)bits) & lanes, lanes).As<int, T>());
        }
        Vector128<long> wideLanes = Vector128.Create(1L, 2);
        return new(Vector128.Equals(Vector128.Create((long)bits) & wideLanes, wideLanes).As<long, T>());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Simd128<T> Low, Simd128<T> High) Interleave(Simd128<T> evens, Simd128<T> odds)
    {
        if (Sse.IsSupported && typeof(T) == typeof(float))
            return (new(Sse.UnpackLow(evens.Value.AsSingle(), odds.Value.AsSingle()).As<float, T>()), new(Sse.UnpackHigh(evens.Value.AsSingle(), odds.Value.AsSingle()).As<float, T>()));
        if (Sse2.IsSupported)
            return (new(Sse2.UnpackLow(evens.Value.AsDouble(), odds.Value.AsDouble()).As<double, T>()), new(Sse2.UnpackHigh(evens.Value.AsDouble(), odds.Value.AsDouble()).As<double, T>()));
        return (ZipLanes(evens, odds, Vector128.Create(0, 0, 1, 1), Vector128.Create(0L, 0)), ZipLanes(evens, odds, Vector128.Create(2, 2, 3, 3), Vector128.Create(1L, 1)));
    }

    /// <summary>Lane k from <paramref name="evens"/> (k even) or <paramref name="odds"/> (k odd), each permuted by the
    /// lane indices (float32 by <paramref name="floatLanes"/>, float64 by <paramref name="doubleLanes"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Simd128<T> ZipLanes(Simd128<T> evens, Simd128<T> odds, Vector128<int> floatLanes, Vector128<long> doubleLanes)
    {
        if (typeof(T) == typeof(float))
            return new(Vector128.ConditionalSelect(Vector128.Equals(Vector128<int>.Indices & Vector128<int>.One, Vector128<int>.One).AsSingle(),
                Vector128.Shuffle(odds.Value.AsSingle(), floatLanes), Vector128.Shuffle(evens.Value.AsSingle(), floatLanes)).As<float, T>());
        return new(Vector128.ConditionalSelect(Vector128.Equals(Vector128<long>.Indices & Vector128<long>.One, Vector128<long>.One).AsDouble(),
            Vector128.Shuffle(odds.Value.AsDouble(), doubleLanes), Vector128.Shuffle(evens.Value.AsDouble(), doubleLanes)).As<double, T>());
    }
}
