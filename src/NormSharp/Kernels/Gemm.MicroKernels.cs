using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace NormSharp.Kernels;

/// <summary>Which micro-kernel computes the register tiles. All three compute every element of C as the same chain of
/// fused multiply-adds over k, so they give bitwise-identical results; only their speed differs.</summary>
internal enum GemmKernelPath
{
    /// <summary>One 12×32 tile held in 24 Vector512 accumulators (AVX-512).</summary>
    Vector512,
    /// <summary>Four 6×16 quarter tiles, each in 12 Vector256 accumulators (AVX2 + FMA).</summary>
    Vector256,
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
        : GemmKernelPath.Scalar;

    /// <summary>C tile (rows × 32, row stride ldc) = (loadC ? C : 0) + Σ_p a[p]ᵀ·b[p], the sum taken from zero, over
    /// one packed A panel (k-major, <see cref="TileRows"/> values per step, of which the first <paramref name="rows"/>
    /// are used) and one packed B panel (k-major, <see cref="TileCols"/> values per step).</summary>
    private static unsafe void Tile(GemmKernelPath path, int rows, int kc, float* a, float* b, float* c, nint ldc, bool loadC)
    {
        // The kernels sum from zero and touch C only at the end, so these lines arrive while the FMAs run.
        if (Sse.IsSupported)
            for (int i = 0; i < rows; i++)
            {
                Sse.Prefetch0(c + i * ldc);
                Sse.Prefetch0(c + i * ldc + TileCols - 1);
            }
        switch (path)
        {
            case GemmKernelPath.Vector512: Tile512(rows, kc, a, b, c, ldc, loadC); break;
            case GemmKernelPath.Vector256:
                // The 12×32 tile as four 6×16 quarters: AVX2 has 16 ymm registers, a quarter needs 15.
                for (int half = 0; half < TileCols; half += 16)
                {
                    Quarter256(Math.Min(rows, 6), kc, a, b + half, c + half, ldc, loadC);
                    if (rows > 6) Quarter256(rows - 6, kc, a + 6, b + half, c + 6 * ldc + half, ldc, loadC);
                }
                break;
            default: TileScalar(rows, kc, a, b, c, ldc, loadC); break;
        }
    }

    private static unsafe void Tile512(int rows, int kc, float* a, float* b, float* c, nint ldc, bool loadC)
    {
        switch (rows)
        {
            case 1: Tile512<Rows1>(kc, a, b, c, ldc, loadC); break;
            case 2: Tile512<Rows2>(kc, a, b, c, ldc, loadC); break;
            case 3: Tile512<Rows3>(kc, a, b, c, ldc, loadC); break;
            case 4: Tile512<Rows4>(kc, a, b, c, ldc, loadC); break;
            case 5: Tile512<Rows5>(kc, a, b, c, ldc, loadC); break;
            case 6: Tile512<Rows6>(kc, a, b, c, ldc, loadC); break;
            case 7: Tile512<Rows7>(kc, a, b, c, ldc, loadC); break;
            case 8: Tile512<Rows8>(kc, a, b, c, ldc, loadC); break;
            case 9: Tile512<Rows9>(kc, a, b, c, ldc, loadC); break;
            case 10: Tile512<Rows10>(kc, a, b, c, ldc, loadC); break;
            case 11: Tile512<Rows11>(kc, a, b, c, ldc, loadC); break;
            case 12: Tile512<Rows12>(kc, a, b, c, ldc, loadC); break;
        }
    }

    private static unsafe void Quarter256(int rows, int kc, float* a, float* b, float* c, nint ldc, bool loadC)
    {
        switch (rows)
        {
            case 1: Quarter256<Rows1>(kc, a, b, c, ldc, loadC); break;
            case 2: Quarter256<Rows2>(kc, a, b, c, ldc, loadC); break;
            case 3: Quarter256<Rows3>(kc, a, b, c, ldc, loadC); break;
            case 4: Quarter256<Rows4>(kc, a, b, c, ldc, loadC); break;
            case 5: Quarter256<Rows5>(kc, a, b, c, ldc, loadC); break;
            case 6: Quarter256<Rows6>(kc, a, b, c, ldc, loadC); break;
        }
    }

    /// <summary>The register tile: R rows × 32 columns as 2·R Vector512 accumulators (24 of the 32 zmm registers at
    /// R = 12), one broadcast of op(A) feeding two FMAs per row and k step. R is a type so that the JIT compiles one
    /// straight-line kernel per row count, with the unused rows removed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Tile512<R>(int kc, float* a, float* b, float* c, nint ldc, bool loadC) where R : struct, IRowCount
    {
        int rows = R.Value;
        // cIL, cIH: row I of the tile, columns 0–15 and 16–31.
        Vector512<float> c0L = default, c0H = default, c1L = default, c1H = default, c2L = default, c2H = default, c3L = default, c3H = default,
            c4L = default, c4H = default, c5L = default, c5H = default, c6L = default, c6H = default, c7L = default, c7H = default,
            c8L = default, c8H = default, c9L = default, c9H = default, c10L = default, c10H = default, c11L = default, c11H = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> bL = Vector512.Load(b), bH = Vector512.Load(b + 16);
            { var ai = Vector512.Create(a[0]); c0L = Vector512.FusedMultiplyAdd(ai, bL, c0L); c0H = Vector512.FusedMultiplyAdd(ai, bH, c0H); }
            if (rows > 1) { var ai = Vector512.Create(a[1]); c1L = Vector512.FusedMultiplyAdd(ai, bL, c1L); c1H = Vector512.FusedMultiplyAdd(ai, bH, c1H); }
            if (rows > 2) { var ai = Vector512.Create(a[2]); c2L = Vector512.FusedMultiplyAdd(ai, bL, c2L); c2H = Vector512.FusedMultiplyAdd(ai, bH, c2H); }
            if (rows > 3) { var ai = Vector512.Create(a[3]); c3L = Vector512.FusedMultiplyAdd(ai, bL, c3L); c3H = Vector512.FusedMultiplyAdd(ai, bH, c3H); }
            if (rows > 4) { var ai = Vector512.Create(a[4]); c4L = Vector512.FusedMultiplyAdd(ai, bL, c4L); c4H = Vector512.FusedMultiplyAdd(ai, bH, c4H); }
            if (rows > 5) { var ai = Vector512.Create(a[5]); c5L = Vector512.FusedMultiplyAdd(ai, bL, c5L); c5H = Vector512.FusedMultiplyAdd(ai, bH, c5H); }
            if (rows > 6) { var ai = Vector512.Create(a[6]); c6L = Vector512.FusedMultiplyAdd(ai, bL, c6L); c6H = Vector512.FusedMultiplyAdd(ai, bH, c6H); }
            if (rows > 7) { var ai = Vector512.Create(a[7]); c7L = Vector512.FusedMultiplyAdd(ai, bL, c7L); c7H = Vector512.FusedMultiplyAdd(ai, bH, c7H); }
            if (rows > 8) { var ai = Vector512.Create(a[8]); c8L = Vector512.FusedMultiplyAdd(ai, bL, c8L); c8H = Vector512.FusedMultiplyAdd(ai, bH, c8H); }
            if (rows > 9) { var ai = Vector512.Create(a[9]); c9L = Vector512.FusedMultiplyAdd(ai, bL, c9L); c9H = Vector512.FusedMultiplyAdd(ai, bH, c9H); }
            if (rows > 10) { var ai = Vector512.Create(a[10]); c10L = Vector512.FusedMultiplyAdd(ai, bL, c10L); c10H = Vector512.FusedMultiplyAdd(ai, bH, c10H); }
            if (rows > 11) { var ai = Vector512.Create(a[11]); c11L = Vector512.FusedMultiplyAdd(ai, bL, c11L); c11H = Vector512.FusedMultiplyAdd(ai, bH, c11H); }
            a += TileRows;
            b += TileCols;
        }
        if (loadC)
        {
            { c0L += Vector512.Load(c + 0 * ldc); c0H += Vector512.Load(c + 0 * ldc + 16); }
            if (rows > 1) { c1L += Vector512.Load(c + 1 * ldc); c1H += Vector512.Load(c + 1 * ldc + 16); }
            if (rows > 2) { c2L += Vector512.Load(c + 2 * ldc); c2H += Vector512.Load(c + 2 * ldc + 16); }
            if (rows > 3) { c3L += Vector512.Load(c + 3 * ldc); c3H += Vector512.Load(c + 3 * ldc + 16); }
            if (rows > 4) { c4L += Vector512.Load(c + 4 * ldc); c4H += Vector512.Load(c + 4 * ldc + 16); }
            if (rows > 5) { c5L += Vector512.Load(c + 5 * ldc); c5H += Vector512.Load(c + 5 * ldc + 16); }
            if (rows > 6) { c6L += Vector512.Load(c + 6 * ldc); c6H += Vector512.Load(c + 6 * ldc + 16); }
            if (rows > 7) { c7L += Vector512.Load(c + 7 * ldc); c7H += Vector512.Load(c + 7 * ldc + 16); }
            if (rows > 8) { c8L += Vector512.Load(c + 8 * ldc); c8H += Vector512.Load(c + 8 * ldc + 16); }
            if (rows > 9) { c9L += Vector512.Load(c + 9 * ldc); c9H += Vector512.Load(c + 9 * ldc + 16); }
            if (rows > 10) { c10L += Vector512.Load(c + 10 * ldc); c10H += Vector512.Load(c + 10 * ldc + 16); }
            if (rows > 11) { c11L += Vector512.Load(c + 11 * ldc); c11H += Vector512.Load(c + 11 * ldc + 16); }
        }
        { c0L.Store(c + 0 * ldc); c0H.Store(c + 0 * ldc + 16); }
        if (rows > 1) { c1L.Store(c + 1 * ldc); c1H.Store(c + 1 * ldc + 16); }
        if (rows > 2) { c2L.Store(c + 2 * ldc); c2H.Store(c + 2 * ldc + 16); }
        if (rows > 3) { c3L.Store(c + 3 * ldc); c3H.Store(c + 3 * ldc + 16); }
        if (rows > 4) { c4L.Store(c + 4 * ldc); c4H.Store(c + 4 * ldc + 16); }
        if (rows > 5) { c5L.Store(c + 5 * ldc); c5H.Store(c + 5 * ldc + 16); }
        if (rows > 6) { c6L.Store(c + 6 * ldc); c6H.Store(c + 6 * ldc + 16); }
        if (rows > 7) { c7L.Store(c + 7 * ldc); c7H.Store(c + 7 * ldc + 16); }
        if (rows > 8) { c8L.Store(c + 8 * ldc); c8H.Store(c + 8 * ldc + 16); }
        if (rows > 9) { c9L.Store(c + 9 * ldc); c9H.Store(c + 9 * ldc + 16); }
        if (rows > 10) { c10L.Store(c + 10 * ldc); c10H.Store(c + 10 * ldc + 16); }
        if (rows > 11) { c11L.Store(c + 11 * ldc); c11H.Store(c + 11 * ldc + 16); }
    }

    /// <summary>A quarter tile: R ≤ 6 rows × 16 columns as 2·R Vector256 accumulators, reading the packed panels with
    /// the full tile's strides.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Quarter256<R>(int kc, float* a, float* b, float* c, nint ldc, bool loadC) where R : struct, IRowCount
    {
        int rows = R.Value;
        // cIL, cIH: row I of the tile, columns 0–7 and 8–15.
        Vector256<float> c0L = default, c0H = default, c1L = default, c1H = default, c2L = default, c2H = default, c3L = default, c3H = default,
            c4L = default, c4H = default, c5L = default, c5H = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> bL = Vector256.Load(b), bH = Vector256.Load(b + 8);
            { var ai = Vector256.Create(a[0]); c0L = Vector256.FusedMultiplyAdd(ai, bL, c0L); c0H = Vector256.FusedMultiplyAdd(ai, bH, c0H); }
            if (rows > 1) { var ai = Vector256.Create(a[1]); c1L = Vector256.FusedMultiplyAdd(ai, bL, c1L); c1H = Vector256.FusedMultiplyAdd(ai, bH, c1H); }
            if (rows > 2) { var ai = Vector256.Create(a[2]); c2L = Vector256.FusedMultiplyAdd(ai, bL, c2L); c2H = Vector256.FusedMultiplyAdd(ai, bH, c2H); }
            if (rows > 3) { var ai = Vector256.Create(a[3]); c3L = Vector256.FusedMultiplyAdd(ai, bL, c3L); c3H = Vector256.FusedMultiplyAdd(ai, bH, c3H); }
            if (rows > 4) { var ai = Vector256.Create(a[4]); c4L = Vector256.FusedMultiplyAdd(ai, bL, c4L); c4H = Vector256.FusedMultiplyAdd(ai, bH, c4H); }
            if (rows > 5) { var ai = Vector256.Create(a[5]); c5L = Vector256.FusedMultiplyAdd(ai, bL, c5L); c5H = Vector256.FusedMultiplyAdd(ai, bH, c5H); }
            a += TileRows;
            b += TileCols;
        }
        if (loadC)
        {
            { c0L += Vector256.Load(c + 0 * ldc); c0H += Vector256.Load(c + 0 * ldc + 8); }
            if (rows > 1) { c1L += Vector256.Load(c + 1 * ldc); c1H += Vector256.Load(c + 1 * ldc + 8); }
            if (rows > 2) { c2L += Vector256.Load(c + 2 * ldc); c2H += Vector256.Load(c + 2 * ldc + 8); }
            if (rows > 3) { c3L += Vector256.Load(c + 3 * ldc); c3H += Vector256.Load(c + 3 * ldc + 8); }
            if (rows > 4) { c4L += Vector256.Load(c + 4 * ldc); c4H += Vector256.Load(c + 4 * ldc + 8); }
            if (rows > 5) { c5L += Vector256.Load(c + 5 * ldc); c5H += Vector256.Load(c + 5 * ldc + 8); }
        }
        { c0L.Store(c + 0 * ldc); c0H.Store(c + 0 * ldc + 8); }
        if (rows > 1) { c1L.Store(c + 1 * ldc); c1H.Store(c + 1 * ldc + 8); }
        if (rows > 2) { c2L.Store(c + 2 * ldc); c2H.Store(c + 2 * ldc + 8); }
        if (rows > 3) { c3L.Store(c + 3 * ldc); c3H.Store(c + 3 * ldc + 8); }
        if (rows > 4) { c4L.Store(c + 4 * ldc); c4H.Store(c + 4 * ldc + 8); }
        if (rows > 5) { c5L.Store(c + 5 * ldc); c5H.Store(c + 5 * ldc + 8); }
    }

    /// <summary>The same fused multiply-add chain per element, without vectors.</summary>
    private static unsafe void TileScalar(int rows, int kc, float* a, float* b, float* c, nint ldc, bool loadC)
    {
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < TileCols; j++)
            {
                float sum = 0f;
                for (int p = 0; p < kc; p++)
                    sum = MathF.FusedMultiplyAdd(a[p * TileRows + i], b[p * TileCols + j], sum);
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
