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
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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
            case GemmKernelPath.Vector512: Tile<Lanes512, Vector512<float>>(rows, kc, a, b, c, ldc, loadC); break;
            case GemmKernelPath.Vector256: TileInStrips<Lanes256, Vector256<float>>(rows, kc, a, b, c, ldc, loadC); break;
            case GemmKernelPath.Vector128: TileInStrips<Lanes128, Vector128<float>>(rows, kc, a, b, c, ldc, loadC); break;
            default: TileScalar(rows, kc, a, b, c, ldc, loadC); break;
        }
    }

    /// <summary>The 12×32 tile as strips of at most 6 rows × two vectors: with 16 vector registers (AVX2, SSE) a strip
    /// needs 15, its 12 accumulators, two vectors of B and a broadcast of A.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void TileInStrips<TLanes, TVector>(int rows, int kc, float* a, float* b, float* c, nint ldc, bool loadC)
        where TLanes : struct, ITileLanes<TVector> where TVector : struct
    {
        for (int column = 0; column < TileCols; column += 2 * TLanes.Count)
        {
            Tile<TLanes, TVector>(Math.Min(rows, 6), kc, a, b + column, c + column, ldc, loadC);
            if (rows > 6) Tile<TLanes, TVector>(rows - 6, kc, a + 6, b + column, c + 6 * ldc + column, ldc, loadC);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Tile<TLanes, TVector>(int rows, int kc, float* a, float* b, float* c, nint ldc, bool loadC)
        where TLanes : struct, ITileLanes<TVector> where TVector : struct
    {
        switch (rows)
        {
            case 1: Tile<Rows1, TLanes, TVector>(kc, a, b, c, ldc, loadC); break;
            case 2: Tile<Rows2, TLanes, TVector>(kc, a, b, c, ldc, loadC); break;
            case 3: Tile<Rows3, TLanes, TVector>(kc, a, b, c, ldc, loadC); break;
            case 4: Tile<Rows4, TLanes, TVector>(kc, a, b, c, ldc, loadC); break;
            case 5: Tile<Rows5, TLanes, TVector>(kc, a, b, c, ldc, loadC); break;
            case 6: Tile<Rows6, TLanes, TVector>(kc, a, b, c, ldc, loadC); break;
            case 7: Tile<Rows7, TLanes, TVector>(kc, a, b, c, ldc, loadC); break;
            case 8: Tile<Rows8, TLanes, TVector>(kc, a, b, c, ldc, loadC); break;
            case 9: Tile<Rows9, TLanes, TVector>(kc, a, b, c, ldc, loadC); break;
            case 10: Tile<Rows10, TLanes, TVector>(kc, a, b, c, ldc, loadC); break;
            case 11: Tile<Rows11, TLanes, TVector>(kc, a, b, c, ldc, loadC); break;
            case 12: Tile<Rows12, TLanes, TVector>(kc, a, b, c, ldc, loadC); break;
        }
    }

    /// <summary>The register tile: R ≤ 12 rows × two vectors of columns as 2·R accumulators, one broadcast of op(A)
    /// feeding two multiply-adds per row and k step, reading the packed panels with the full tile's strides. With
    /// 512-bit vectors it is the whole 12×32 tile in 24 of the 32 zmm registers; narrower widths run it as strips of
    /// at most 6 rows (see <see cref="TileInStrips"/>). R is a type so that the JIT compiles one straight-line kernel
    /// per row count and width, with the unused rows removed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Tile<R, TLanes, TVector>(int kc, float* a, float* b, float* c, nint ldc, bool loadC)
        where R : struct, IRowCount where TLanes : struct, ITileLanes<TVector> where TVector : struct
    {
        int rows = R.Value, w = TLanes.Count;
        // cIL, cIH: row I of the tile, its first and second vector of columns.
        TVector c0L = default, c0H = default, c1L = default, c1H = default, c2L = default, c2H = default, c3L = default, c3H = default,
            c4L = default, c4H = default, c5L = default, c5H = default, c6L = default, c6H = default, c7L = default, c7H = default,
            c8L = default, c8H = default, c9L = default, c9H = default, c10L = default, c10H = default, c11L = default, c11H = default;
        for (int p = 0; p < kc; p++)
        {
            TVector bL = TLanes.Load(b), bH = TLanes.Load(b + w);
            { var ai = TLanes.Broadcast(a + 0); c0L = TLanes.MultiplyAdd(ai, bL, c0L); c0H = TLanes.MultiplyAdd(ai, bH, c0H); }
            if (rows > 1) { var ai = TLanes.Broadcast(a + 1); c1L = TLanes.MultiplyAdd(ai, bL, c1L); c1H = TLanes.MultiplyAdd(ai, bH, c1H); }
            if (rows > 2) { var ai = TLanes.Broadcast(a + 2); c2L = TLanes.MultiplyAdd(ai, bL, c2L); c2H = TLanes.MultiplyAdd(ai, bH, c2H); }
            if (rows > 3) { var ai = TLanes.Broadcast(a + 3); c3L = TLanes.MultiplyAdd(ai, bL, c3L); c3H = TLanes.MultiplyAdd(ai, bH, c3H); }
            if (rows > 4) { var ai = TLanes.Broadcast(a + 4); c4L = TLanes.MultiplyAdd(ai, bL, c4L); c4H = TLanes.MultiplyAdd(ai, bH, c4H); }
            if (rows > 5) { var ai = TLanes.Broadcast(a + 5); c5L = TLanes.MultiplyAdd(ai, bL, c5L); c5H = TLanes.MultiplyAdd(ai, bH, c5H); }
            if (rows > 6) { var ai = TLanes.Broadcast(a + 6); c6L = TLanes.MultiplyAdd(ai, bL, c6L); c6H = TLanes.MultiplyAdd(ai, bH, c6H); }
            if (rows > 7) { var ai = TLanes.Broadcast(a + 7); c7L = TLanes.MultiplyAdd(ai, bL, c7L); c7H = TLanes.MultiplyAdd(ai, bH, c7H); }
            if (rows > 8) { var ai = TLanes.Broadcast(a + 8); c8L = TLanes.MultiplyAdd(ai, bL, c8L); c8H = TLanes.MultiplyAdd(ai, bH, c8H); }
            if (rows > 9) { var ai = TLanes.Broadcast(a + 9); c9L = TLanes.MultiplyAdd(ai, bL, c9L); c9H = TLanes.MultiplyAdd(ai, bH, c9H); }
            if (rows > 10) { var ai = TLanes.Broadcast(a + 10); c10L = TLanes.MultiplyAdd(ai, bL, c10L); c10H = TLanes.MultiplyAdd(ai, bH, c10H); }
            if (rows > 11) { var ai = TLanes.Broadcast(a + 11); c11L = TLanes.MultiplyAdd(ai, bL, c11L); c11H = TLanes.MultiplyAdd(ai, bH, c11H); }
            a += TileRows;
            b += TileCols;
        }
        if (loadC)
        {
            { c0L = TLanes.Add(c0L, TLanes.Load(c + 0 * ldc)); c0H = TLanes.Add(c0H, TLanes.Load(c + 0 * ldc + w)); }
            if (rows > 1) { c1L = TLanes.Add(c1L, TLanes.Load(c + 1 * ldc)); c1H = TLanes.Add(c1H, TLanes.Load(c + 1 * ldc + w)); }
            if (rows > 2) { c2L = TLanes.Add(c2L, TLanes.Load(c + 2 * ldc)); c2H = TLanes.Add(c2H, TLanes.Load(c + 2 * ldc + w)); }
            if (rows > 3) { c3L = TLanes.Add(c3L, TLanes.Load(c + 3 * ldc)); c3H = TLanes.Add(c3H, TLanes.Load(c + 3 * ldc + w)); }
            if (rows > 4) { c4L = TLanes.Add(c4L, TLanes.Load(c + 4 * ldc)); c4H = TLanes.Add(c4H, TLanes.Load(c + 4 * ldc + w)); }
            if (rows > 5) { c5L = TLanes.Add(c5L, TLanes.Load(c + 5 * ldc)); c5H = TLanes.Add(c5H, TLanes.Load(c + 5 * ldc + w)); }
            if (rows > 6) { c6L = TLanes.Add(c6L, TLanes.Load(c + 6 * ldc)); c6H = TLanes.Add(c6H, TLanes.Load(c + 6 * ldc + w)); }
            if (rows > 7) { c7L = TLanes.Add(c7L, TLanes.Load(c + 7 * ldc)); c7H = TLanes.Add(c7H, TLanes.Load(c + 7 * ldc + w)); }
            if (rows > 8) { c8L = TLanes.Add(c8L, TLanes.Load(c + 8 * ldc)); c8H = TLanes.Add(c8H, TLanes.Load(c + 8 * ldc + w)); }
            if (rows > 9) { c9L = TLanes.Add(c9L, TLanes.Load(c + 9 * ldc)); c9H = TLanes.Add(c9H, TLanes.Load(c + 9 * ldc + w)); }
            if (rows > 10) { c10L = TLanes.Add(c10L, TLanes.Load(c + 10 * ldc)); c10H = TLanes.Add(c10H, TLanes.Load(c + 10 * ldc + w)); }
            if (rows > 11) { c11L = TLanes.Add(c11L, TLanes.Load(c + 11 * ldc)); c11H = TLanes.Add(c11H, TLanes.Load(c + 11 * ldc + w)); }
        }
        { TLanes.Store(c0L, c + 0 * ldc); TLanes.Store(c0H, c + 0 * ldc + w); }
        if (rows > 1) { TLanes.Store(c1L, c + 1 * ldc); TLanes.Store(c1H, c + 1 * ldc + w); }
        if (rows > 2) { TLanes.Store(c2L, c + 2 * ldc); TLanes.Store(c2H, c + 2 * ldc + w); }
        if (rows > 3) { TLanes.Store(c3L, c + 3 * ldc); TLanes.Store(c3H, c + 3 * ldc + w); }
        if (rows > 4) { TLanes.Store(c4L, c + 4 * ldc); TLanes.Store(c4H, c + 4 * ldc + w); }
        if (rows > 5) { TLanes.Store(c5L, c + 5 * ldc); TLanes.Store(c5H, c + 5 * ldc + w); }
        if (rows > 6) { TLanes.Store(c6L, c + 6 * ldc); TLanes.Store(c6H, c + 6 * ldc + w); }
        if (rows > 7) { TLanes.Store(c7L, c + 7 * ldc); TLanes.Store(c7H, c + 7 * ldc + w); }
        if (rows > 8) { TLanes.Store(c8L, c + 8 * ldc); TLanes.Store(c8H, c + 8 * ldc + w); }
        if (rows > 9) { TLanes.Store(c9L, c + 9 * ldc); TLanes.Store(c9H, c + 9 * ldc + w); }
        if (rows > 10) { TLanes.Store(c10L, c + 10 * ldc); TLanes.Store(c10H, c + 10 * ldc + w); }
        if (rows > 11) { TLanes.Store(c11L, c + 11 * ldc); TLanes.Store(c11H, c + 11 * ldc + w); }
    }

    /// <summary>The operations the register tile needs, on the bare Vector512/256/128 of float. The tile is written
    /// against these rather than the <see cref="ISimdVector{TSelf, T}"/> wrappers: with the wrappers, the JIT kept
    /// each row's second accumulator in the broadcast's register and copied it back, one register move per row and
    /// k step in the 15-of-16-register strips (6 per 12 multiply-adds). Measured on the Zen 5 VM, a 6×16 strip on
    /// L1-resident panels: 105 GFLOP/s either way on one core, but 98 against 110 on the other, which is slower
    /// whenever its host core is shared (2048³ one-thread 256-bit: 172 ms on the first core, 217 on the second).</summary>
    internal interface ITileLanes<TVector> where TVector : struct
    {
        static abstract int Count { get; }
        static abstract unsafe TVector Load(float* source);
        /// <summary>*<paramref name="value"/> in every lane, loaded straight from memory.</summary>
        static abstract unsafe TVector Broadcast(float* value);
        static abstract TVector MultiplyAdd(TVector a, TVector b, TVector c);
        static abstract TVector Add(TVector a, TVector b);
        static abstract unsafe void Store(TVector value, float* destination);
    }

    // Multiply-adds are MultiplyAddEstimate, as in ISimdVector: fused where the hardware has FMA.
    internal readonly struct Lanes512 : ITileLanes<Vector512<float>>
    {
        public static int Count => Vector512<float>.Count;
        public static unsafe Vector512<float> Load(float* source) => Vector512.Load(source);
        public static unsafe Vector512<float> Broadcast(float* value) => Vector512.Create(*value);
        public static Vector512<float> MultiplyAdd(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.MultiplyAddEstimate(a, b, c);
        public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
        public static unsafe void Store(Vector512<float> value, float* destination) => value.Store(destination);
    }

    internal readonly struct Lanes256 : ITileLanes<Vector256<float>>
    {
        public static int Count => Vector256<float>.Count;
        public static unsafe Vector256<float> Load(float* source) => Vector256.Load(source);
        public static unsafe Vector256<float> Broadcast(float* value) => Vector256.Create(*value);
        public static Vector256<float> MultiplyAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.MultiplyAddEstimate(a, b, c);
        public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
        public static unsafe void Store(Vector256<float> value, float* destination) => value.Store(destination);
    }

    internal readonly struct Lanes128 : ITileLanes<Vector128<float>>
    {
        public static int Count => Vector128<float>.Count;
        public static unsafe Vector128<float> Load(float* source) => Vector128.Load(source);

        /// <summary>Vector128.Create(float) compiles to a load and a shuffle, and the shuffles share the
        /// floating-point ports with the multiplies and adds: taking 6 broadcasts per 24 arithmetic instructions off
        /// those ports made the SSE strip about 25 % faster.</summary>
        public static unsafe Vector128<float> Broadcast(float* value) =>
            Avx.IsSupported ? Avx.BroadcastScalarToVector128(value)
            : AdvSimd.IsSupported ? AdvSimd.LoadAndReplicateToVector128(value)
            : Vector128.Create(*value);

        public static Vector128<float> MultiplyAdd(Vector128<float> a, Vector128<float> b, Vector128<float> c) => Vector128.MultiplyAddEstimate(a, b, c);
        public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;
        public static unsafe void Store(Vector128<float> value, float* destination) => value.Store(destination);
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
