using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace NormSharp.Kernels;

/// <summary>Which micro-kernel computes the register tiles. All of them compute every element of C as the same chain of
/// multiply-adds over k (fused where the CPU has FMA), so they give bitwise-identical results; only their speed
/// differs.</summary>
internal enum GemmKernelPath
{
    /// <summary>One 12×32 tile held in 24 Vector512 accumulators (AVX-512).</summary>
    Vector512,
    /// <summary>Four 6×16 quarter tiles, each in 12 Vector256 accumulators (AVX2 + FMA).</summary>
    Vector256,
    /// <summary>Eight 6×8 strips, each in 12 Vector128 accumulators (SSE, or AdvSimd on ARM64).</summary>
    Vector128,
    /// <summary>Scalar fused multiply-adds, element by element.</summary>
    Scalar,
}

internal static partial class Gemm
{
    /// <summary>Rows of the register tile: each k step broadcasts this many values of op(A).</summary>
    internal const int TileRows = 12;

    /// <summary>Columns of the register tile: each k step loads this many values of op(B) (two Vector512).</summary>
    internal const int TileCols = 32;

    /// <summary>The fastest path this CPU runs.</summary>
    internal static GemmKernelPath BestPath =>
        Vector512.IsHardwareAccelerated ? GemmKernelPath.Vector512
        : Vector256.IsHardwareAccelerated && Fma.IsSupported ? GemmKernelPath.Vector256
        : Vector128.IsHardwareAccelerated ? GemmKernelPath.Vector128
        : GemmKernelPath.Scalar;

    /// <summary>C tile (rows × 32, row stride ldc) = (loadC ? C : 0) + Σ_p a[p]ᵀ·b[p], the sum taken from zero, over
    /// one packed A panel (k-major, <see cref="TileRows"/> values per step, of which the first <paramref name="rows"/>
    /// are used) and one packed B panel (k-major, <see cref="TileCols"/> values per step).</summary>
    internal static unsafe void Tile(GemmKernelPath path, int rows, int kc, float* a, float* b, float* c, nint ldc, bool loadC)
    {
        // The kernels sum from zero and touch C only at the end, so these lines arrive while the FMAs run. A row's
        // 128 bytes span three cache lines when C is not 64-byte aligned; its middle one is fetched too (left out, a
        // C misaligned by 16 bytes made 2048³ 4 % slower on one thread, Zen 5, 256-bit vectors).
        if (Sse.IsSupported)
            for (int i = 0; i < rows; i++)
            {
                Sse.Prefetch0(c + i * ldc);
                Sse.Prefetch0(c + i * ldc + TileCols / 2);
                Sse.Prefetch0(c + i * ldc + TileCols - 1);
            }
        switch (path)
        {
            case GemmKernelPath.Vector512: Tile<Simd512<float>>(rows, kc, a, b, c, ldc, loadC); break;
            case GemmKernelPath.Vector256: TileInStrips<Simd256<float>>(rows, kc, a, b, c, ldc, loadC); break;
            case GemmKernelPath.Vector128: TileInStrips<Simd128<float>>(rows, kc, a, b, c, ldc, loadC); break;
            default: TileScalar(rows, kc, a, b, c, ldc, loadC); break;
        }
    }

    /// <summary>The 12×32 tile as strips of at most 6 rows × two vectors: with 16 vector registers (AVX2, SSE) a strip
    /// needs 15, its 12 accumulators, two vectors of B and a broadcast of A.</summary>
    private static unsafe void TileInStrips<TVector>(int rows, int kc, float* a, float* b, float* c, nint ldc, bool loadC)
        where TVector : struct, ISimdVector<TVector, float>
    {
        for (int column = 0; column < TileCols; column += 2 * TVector.Count)
        {
            Tile<TVector>(Math.Min(rows, 6), kc, a, b + column, c + column, ldc, loadC);
            if (rows > 6) Tile<TVector>(rows - 6, kc, a + 6, b + column, c + 6 * ldc + column, ldc, loadC);
        }
    }

    private static unsafe void Tile<TVector>(int rows, int kc, float* a, float* b, float* c, nint ldc, bool loadC)
        where TVector : struct, ISimdVector<TVector, float>
    {
        switch (rows)
        {
            case 1: Tile<Rows1, TVector>(kc, a, b, c, ldc, loadC); break;
            case 2: Tile<Rows2, TVector>(kc, a, b, c, ldc, loadC); break;
            case 3: Tile<Rows3, TVector>(kc, a, b, c, ldc, loadC); break;
            case 4: Tile<Rows4, TVector>(kc, a, b, c, ldc, loadC); break;
            case 5: Tile<Rows5, TVector>(kc, a, b, c, ldc, loadC); break;
            case 6: Tile<Rows6, TVector>(kc, a, b, c, ldc, loadC); break;
            case 7: Tile<Rows7, TVector>(kc, a, b, c, ldc, loadC); break;
            case 8: Tile<Rows8, TVector>(kc, a, b, c, ldc, loadC); break;
            case 9: Tile<Rows9, TVector>(kc, a, b, c, ldc, loadC); break;
            case 10: Tile<Rows10, TVector>(kc, a, b, c, ldc, loadC); break;
            case 11: Tile<Rows11, TVector>(kc, a, b, c, ldc, loadC); break;
            case 12: Tile<Rows12, TVector>(kc, a, b, c, ldc, loadC); break;
        }
    }

    /// <summary>The register tile: R ≤ 12 rows × two vectors of columns as 2·R accumulators, one broadcast of op(A)
    /// feeding two multiply-adds per row and k step, reading the packed panels with the full tile's strides. With
    /// 512-bit vectors it is the whole 12×32 tile in 24 of the 32 zmm registers; narrower widths run it as strips of
    /// at most 6 rows (see <see cref="TileInStrips"/>). R is a type so that the JIT compiles one straight-line kernel
    /// per row count and width, with the unused rows removed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Tile<R, TVector>(int kc, float* a, float* b, float* c, nint ldc, bool loadC)
        where R : struct, IRowCount where TVector : struct, ISimdVector<TVector, float>
    {
        int rows = R.Value, w = TVector.Count;
        // cIL, cIH: row I of the tile, its first and second vector of columns.
        TVector c0L = default, c0H = default, c1L = default, c1H = default, c2L = default, c2H = default, c3L = default, c3H = default,
            c4L = default, c4H = default, c5L = default, c5H = default, c6L = default, c6H = default, c7L = default, c7H = default,
            c8L = default, c8H = default, c9L = default, c9H = default, c10L = default, c10H = default, c11L = default, c11H = default;
        for (int p = 0; p < kc; p++)
        {
            TVector bL = TVector.LoadUnsafe(in *b, 0), bH = TVector.LoadUnsafe(in *b, (nuint)w);
            { var ai = Broadcast<TVector>(a + 0); c0L = TVector.MultiplyAdd(ai, bL, c0L); c0H = TVector.MultiplyAdd(ai, bH, c0H); }
            if (rows > 1) { var ai = Broadcast<TVector>(a + 1); c1L = TVector.MultiplyAdd(ai, bL, c1L); c1H = TVector.MultiplyAdd(ai, bH, c1H); }
            if (rows > 2) { var ai = Broadcast<TVector>(a + 2); c2L = TVector.MultiplyAdd(ai, bL, c2L); c2H = TVector.MultiplyAdd(ai, bH, c2H); }
            if (rows > 3) { var ai = Broadcast<TVector>(a + 3); c3L = TVector.MultiplyAdd(ai, bL, c3L); c3H = TVector.MultiplyAdd(ai, bH, c3H); }
            if (rows > 4) { var ai = Broadcast<TVector>(a + 4); c4L = TVector.MultiplyAdd(ai, bL, c4L); c4H = TVector.MultiplyAdd(ai, bH, c4H); }
            if (rows > 5) { var ai = Broadcast<TVector>(a + 5); c5L = TVector.MultiplyAdd(ai, bL, c5L); c5H = TVector.MultiplyAdd(ai, bH, c5H); }
            if (rows > 6) { var ai = Broadcast<TVector>(a + 6); c6L = TVector.MultiplyAdd(ai, bL, c6L); c6H = TVector.MultiplyAdd(ai, bH, c6H); }
            if (rows > 7) { var ai = Broadcast<TVector>(a + 7); c7L = TVector.MultiplyAdd(ai, bL, c7L); c7H = TVector.MultiplyAdd(ai, bH, c7H); }
            if (rows > 8) { var ai = Broadcast<TVector>(a + 8); c8L = TVector.MultiplyAdd(ai, bL, c8L); c8H = TVector.MultiplyAdd(ai, bH, c8H); }
            if (rows > 9) { var ai = Broadcast<TVector>(a + 9); c9L = TVector.MultiplyAdd(ai, bL, c9L); c9H = TVector.MultiplyAdd(ai, bH, c9H); }
            if (rows > 10) { var ai = Broadcast<TVector>(a + 10); c10L = TVector.MultiplyAdd(ai, bL, c10L); c10H = TVector.MultiplyAdd(ai, bH, c10H); }
            if (rows > 11) { var ai = Broadcast<TVector>(a + 11); c11L = TVector.MultiplyAdd(ai, bL, c11L); c11H = TVector.MultiplyAdd(ai, bH, c11H); }
            a += TileRows;
            b += TileCols;
        }
        if (loadC)
        {
            { c0L += TVector.LoadUnsafe(in c[0 * ldc], 0); c0H += TVector.LoadUnsafe(in c[0 * ldc], (nuint)w); }
            if (rows > 1) { c1L += TVector.LoadUnsafe(in c[1 * ldc], 0); c1H += TVector.LoadUnsafe(in c[1 * ldc], (nuint)w); }
            if (rows > 2) { c2L += TVector.LoadUnsafe(in c[2 * ldc], 0); c2H += TVector.LoadUnsafe(in c[2 * ldc], (nuint)w); }
            if (rows > 3) { c3L += TVector.LoadUnsafe(in c[3 * ldc], 0); c3H += TVector.LoadUnsafe(in c[3 * ldc], (nuint)w); }
            if (rows > 4) { c4L += TVector.LoadUnsafe(in c[4 * ldc], 0); c4H += TVector.LoadUnsafe(in c[4 * ldc], (nuint)w); }
            if (rows > 5) { c5L += TVector.LoadUnsafe(in c[5 * ldc], 0); c5H += TVector.LoadUnsafe(in c[5 * ldc], (nuint)w); }
            if (rows > 6) { c6L += TVector.LoadUnsafe(in c[6 * ldc], 0); c6H += TVector.LoadUnsafe(in c[6 * ldc], (nuint)w); }
            if (rows > 7) { c7L += TVector.LoadUnsafe(in c[7 * ldc], 0); c7H += TVector.LoadUnsafe(in c[7 * ldc], (nuint)w); }
            if (rows > 8) { c8L += TVector.LoadUnsafe(in c[8 * ldc], 0); c8H += TVector.LoadUnsafe(in c[8 * ldc], (nuint)w); }
            if (rows > 9) { c9L += TVector.LoadUnsafe(in c[9 * ldc], 0); c9H += TVector.LoadUnsafe(in c[9 * ldc], (nuint)w); }
            if (rows > 10) { c10L += TVector.LoadUnsafe(in c[10 * ldc], 0); c10H += TVector.LoadUnsafe(in c[10 * ldc], (nuint)w); }
            if (rows > 11) { c11L += TVector.LoadUnsafe(in c[11 * ldc], 0); c11H += TVector.LoadUnsafe(in c[11 * ldc], (nuint)w); }
        }
        { c0L.StoreUnsafe(ref c[0 * ldc], 0); c0H.StoreUnsafe(ref c[0 * ldc], (nuint)w); }
        if (rows > 1) { c1L.StoreUnsafe(ref c[1 * ldc], 0); c1H.StoreUnsafe(ref c[1 * ldc], (nuint)w); }
        if (rows > 2) { c2L.StoreUnsafe(ref c[2 * ldc], 0); c2H.StoreUnsafe(ref c[2 * ldc], (nuint)w); }
        if (rows > 3) { c3L.StoreUnsafe(ref c[3 * ldc], 0); c3H.StoreUnsafe(ref c[3 * ldc], (nuint)w); }
        if (rows > 4) { c4L.StoreUnsafe(ref c[4 * ldc], 0); c4H.StoreUnsafe(ref c[4 * ldc], (nuint)w); }
        if (rows > 5) { c5L.StoreUnsafe(ref c[5 * ldc], 0); c5H.StoreUnsafe(ref c[5 * ldc], (nuint)w); }
        if (rows > 6) { c6L.StoreUnsafe(ref c[6 * ldc], 0); c6H.StoreUnsafe(ref c[6 * ldc], (nuint)w); }
        if (rows > 7) { c7L.StoreUnsafe(ref c[7 * ldc], 0); c7H.StoreUnsafe(ref c[7 * ldc], (nuint)w); }
        if (rows > 8) { c8L.StoreUnsafe(ref c[8 * ldc], 0); c8H.StoreUnsafe(ref c[8 * ldc], (nuint)w); }
        if (rows > 9) { c9L.StoreUnsafe(ref c[9 * ldc], 0); c9H.StoreUnsafe(ref c[9 * ldc], (nuint)w); }
        if (rows > 10) { c10L.StoreUnsafe(ref c[10 * ldc], 0); c10H.StoreUnsafe(ref c[10 * ldc], (nuint)w); }
        if (rows > 11) { c11L.StoreUnsafe(ref c[11 * ldc], 0); c11H.StoreUnsafe(ref c[11 * ldc], (nuint)w); }
    }

    /// <summary>*<paramref name="value"/> in every lane, loaded straight from memory. Vector128.Create(float) compiles to a
    /// load and a shuffle, and the shuffles share the floating-point ports with the multiplies and adds: taking
    /// 6 broadcasts per 24 arithmetic instructions off those ports made the SSE strip about 25 % faster.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe TVector Broadcast<TVector>(float* value) where TVector : struct, ISimdVector<TVector, float>
    {
        if (typeof(TVector) == typeof(Simd128<float>))
        {
            if (Avx.IsSupported) return (TVector)(object)new Simd128<float>(Avx.BroadcastScalarToVector128(value));
            if (AdvSimd.IsSupported) return (TVector)(object)new Simd128<float>(AdvSimd.LoadAndReplicateToVector128(value));
        }
        return TVector.Create(*value);
    }

    /// <summary>The same multiply-add chain per element, without vectors.</summary>
    private static unsafe void TileScalar(int rows, int kc, float* a, float* b, float* c, nint ldc, bool loadC)
    {
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < TileCols; j++)
            {
                float sum = 0f;
                for (int p = 0; p < kc; p++)
                    sum = float.MultiplyAddEstimate(a[p * TileRows + i], b[p * TileCols + j], sum);
                c[i * ldc + j] = loadC ? c[i * ldc + j] + sum : sum;
            }
    }

    /// <summary>A row count known to the JIT as a constant.</summary>
    private interface IRowCount
    {
        static abstract int Value { get; }
    }

    private readonly struct Rows1 : IRowCount { public static int Value => 1; }
    private readonly struct Rows2 : IRowCount { public static int Value => 2; }
    private readonly struct Rows3 : IRowCount { public static int Value => 3; }
    private readonly struct Rows4 : IRowCount { public static int Value => 4; }
    private readonly struct Rows5 : IRowCount { public static int Value => 5; }
    private readonly struct Rows6 : IRowCount { public static int Value => 6; }
    private readonly struct Rows7 : IRowCount { public static int Value => 7; }
    private readonly struct Rows8 : IRowCount { public static int Value => 8; }
    private readonly struct Rows9 : IRowCount { public static int Value => 9; }
    private readonly struct Rows10 : IRowCount { public static int Value => 10; }
    private readonly struct Rows11 : IRowCount { public static int Value => 11; }
    private readonly struct Rows12 : IRowCount { public static int Value => 12; }
}
