using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace NormSharp.Kernels;

// The implicit forward's register tile with 512-bit vectors, reading its B operand straight from the staged image
// rather than from a packed panel: patch row p = t·channels + c of 32 positions is staged channel row c read at tap t's
// offset, 32 consecutive floats, under tap t's mask. With the patch rows tap-major, one tap's two mask vectors stay in
// registers while its channels stream past (24 accumulators, 2 masks, 2 B vectors and a broadcast: 29 of the 32 zmm
// registers), so zeroing the padding costs one AND per B vector and no load. The 32 positions of a tile touch a few
// KiB of each staged row, which stay in L1, where a packed panel (32 × 576 floats) did not fit; the packing pass
// (8 % of the seed CNN's conv3 input gradient) is gone.
internal static partial class Convolution
{
    /// <summary>Whether the implicit forward of <paramref name="g"/> runs <see cref="ShiftedTile"/>: 512-bit vectors,
    /// every row panel of the weight 4, 8 or 12 rows, and at least <see cref="ShiftedTileMinChannels"/> input channels.</summary>
    private static bool RunsShiftedTile(ConvGeometry g) =>
        Vector512.IsHardwareAccelerated && g.OutChannels % 4 == 0 && g.InChannels >= ShiftedTileMinChannels;

    /// <summary>Fewest input channels (steps per tap) for <see cref="ShiftedTile"/>: each tap loads its two mask vectors
    /// once for its channels, which one channel does not amortize (the seed CNN's conv1, one channel: 0.78× the
    /// packed panel in a same-process A/B).</summary>
    private const int ShiftedTileMinChannels = 16;

    /// <summary>C tile (rows × 32, row stride ldc) = (loadC ? C : 0) + Σ_p a[p]ᵀ·b[p] over patch rows
    /// [<paramref name="depthStart"/>, <paramref name="depthStart"/> + <paramref name="depth"/>), each element one
    /// multiply-add chain in p's order, as <see cref="Gemm.Tile"/> computes it from a packed panel: a is the weight's
    /// packed A panel (12 values per step); b[p] for p = t·<paramref name="channels"/> + c &lt; <paramref name="patch"/>
    /// is staged[c·rowStride + offsets[t] + j] where masks[t·maskStride + j] is set, else 0, and b[patch] (the bias's
    /// row) is ones. <paramref name="staged"/> and <paramref name="masks"/> point at the tile's first position.</summary>
    private static unsafe void ShiftedTile(int rows, int depthStart, int depth, int channels, int patch, float* a,
        float* staged, nint rowStride, int* offsets, float* masks, nint maskStride, float* c, nint ldc, bool loadC)
    {
        // The tile sums from zero and touches C only at the end, so these lines arrive while the FMAs run.
        if (Sse.IsSupported)
            for (int i = 0; i < rows; i++)
            {
                Sse.Prefetch0(c + i * ldc);
                Sse.Prefetch0(c + i * ldc + Gemm.TileCols - 1);
            }
        var operand = new ShiftedOperand(depthStart, depth, channels, patch, staged, rowStride, offsets, masks, maskStride);
        switch (rows)
        {
            case 12: ShiftedTile<TwelveRows>(operand, a, c, ldc, loadC); break;
            case 8: ShiftedTile<EightRows>(operand, a, c, ldc, loadC); break;
            case 4: ShiftedTile<FourRows>(operand, a, c, ldc, loadC); break;
            default: throw new ArgumentOutOfRangeException(nameof(rows), rows, "The shifted tile runs 4, 8 or 12 rows.");
        }
    }

    /// <summary>The B operand of <see cref="ShiftedTile"/> (see there).</summary>
    private readonly unsafe struct ShiftedOperand(int depthStart, int depth, int channels, int patch, float* staged,
        nint rowStride, int* offsets, float* masks, nint maskStride)
    {
        public readonly int DepthStart = depthStart, Depth = depth, Channels = channels, Patch = patch;
        public readonly float* Staged = staged, Masks = masks;
        public readonly nint RowStride = rowStride, MaskStride = maskStride;
        public readonly int* Offsets = offsets;
    }

    /// <summary>The tile for R rows, the accumulators named as in <see cref="Gemm.Tile"/>'s kernel: cIL, cIH for row I's
    /// two vectors of columns. R is a type so that the JIT compiles one straight-line kernel per row count.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void ShiftedTile<R>(ShiftedOperand operand, float* a, float* c, nint ldc, bool loadC)
        where R : struct, IShiftedTileRows
    {
        int rows = R.Value;
        const int w = 16;
        Vector512<float> c0L = default, c0H = default, c1L = default, c1H = default, c2L = default, c2H = default, c3L = default, c3H = default,
            c4L = default, c4H = default, c5L = default, c5H = default, c6L = default, c6H = default, c7L = default, c7H = default,
            c8L = default, c8H = default, c9L = default, c9H = default, c10L = default, c10H = default, c11L = default, c11H = default;
        int end = operand.DepthStart + operand.Depth, patchEnd = Math.Min(end, operand.Patch);
        for (int p = operand.DepthStart; p < patchEnd;)
        {
            // Tap t's channels [channel, stop − p + channel) of this block, under tap t's mask.
            int t = p / operand.Channels, channel = p - t * operand.Channels, stop = Math.Min(patchEnd, (t + 1) * operand.Channels);
            float* mask = operand.Masks + t * operand.MaskStride;
            Vector512<float> keepL = Vector512.Load(mask), keepH = Vector512.Load(mask + w);
            float* b = operand.Staged + operand.Offsets[t] + channel * operand.RowStride;
            for (; p < stop; p++, b += operand.RowStride, a += Gemm.TileRows)
            {
                Vector512<float> bL = Vector512.Load(b) & keepL, bH = Vector512.Load(b + w) & keepH;
                { var ai = Vector512.Create(a[0]); c0L = Vector512.FusedMultiplyAdd(ai, bL, c0L); c0H = Vector512.FusedMultiplyAdd(ai, bH, c0H); }
                { var ai = Vector512.Create(a[1]); c1L = Vector512.FusedMultiplyAdd(ai, bL, c1L); c1H = Vector512.FusedMultiplyAdd(ai, bH, c1H); }
                { var ai = Vector512.Create(a[2]); c2L = Vector512.FusedMultiplyAdd(ai, bL, c2L); c2H = Vector512.FusedMultiplyAdd(ai, bH, c2H); }
                { var ai = Vector512.Create(a[3]); c3L = Vector512.FusedMultiplyAdd(ai, bL, c3L); c3H = Vector512.FusedMultiplyAdd(ai, bH, c3H); }
                if (rows > 4) { var ai = Vector512.Create(a[4]); c4L = Vector512.FusedMultiplyAdd(ai, bL, c4L); c4H = Vector512.FusedMultiplyAdd(ai, bH, c4H); }
                if (rows > 5) { var ai = Vector512.Create(a[5]); c5L = Vector512.FusedMultiplyAdd(ai, bL, c5L); c5H = Vector512.FusedMultiplyAdd(ai, bH, c5H); }
                if (rows > 6) { var ai = Vector512.Create(a[6]); c6L = Vector512.FusedMultiplyAdd(ai, bL, c6L); c6H = Vector512.FusedMultiplyAdd(ai, bH, c6H); }
                if (rows > 7) { var ai = Vector512.Create(a[7]); c7L = Vector512.FusedMultiplyAdd(ai, bL, c7L); c7H = Vector512.FusedMultiplyAdd(ai, bH, c7H); }
                if (rows > 8) { var ai = Vector512.Create(a[8]); c8L = Vector512.FusedMultiplyAdd(ai, bL, c8L); c8H = Vector512.FusedMultiplyAdd(ai, bH, c8H); }
                if (rows > 9) { var ai = Vector512.Create(a[9]); c9L = Vector512.FusedMultiplyAdd(ai, bL, c9L); c9H = Vector512.FusedMultiplyAdd(ai, bH, c9H); }
                if (rows > 10) { var ai = Vector512.Create(a[10]); c10L = Vector512.FusedMultiplyAdd(ai, bL, c10L); c10H = Vector512.FusedMultiplyAdd(ai, bH, c10H); }
                if (rows > 11) { var ai = Vector512.Create(a[11]); c11L = Vector512.FusedMultiplyAdd(ai, bL, c11L); c11H = Vector512.FusedMultiplyAdd(ai, bH, c11H); }
            }
        }
        if (patchEnd < end)
        {
            // The bias's row of ones: a·1 + c, exactly the sum a + c.
            { var ai = Vector512.Create(a[0]); c0L += ai; c0H += ai; }
            { var ai = Vector512.Create(a[1]); c1L += ai; c1H += ai; }
            { var ai = Vector512.Create(a[2]); c2L += ai; c2H += ai; }
            { var ai = Vector512.Create(a[3]); c3L += ai; c3H += ai; }
            if (rows > 4) { var ai = Vector512.Create(a[4]); c4L += ai; c4H += ai; }
            if (rows > 5) { var ai = Vector512.Create(a[5]); c5L += ai; c5H += ai; }
            if (rows > 6) { var ai = Vector512.Create(a[6]); c6L += ai; c6H += ai; }
            if (rows > 7) { var ai = Vector512.Create(a[7]); c7L += ai; c7H += ai; }
            if (rows > 8) { var ai = Vector512.Create(a[8]); c8L += ai; c8H += ai; }
            if (rows > 9) { var ai = Vector512.Create(a[9]); c9L += ai; c9H += ai; }
            if (rows > 10) { var ai = Vector512.Create(a[10]); c10L += ai; c10H += ai; }
            if (rows > 11) { var ai = Vector512.Create(a[11]); c11L += ai; c11H += ai; }
        }
        if (loadC)
        {
            { c0L += Vector512.Load(c + 0 * ldc); c0H += Vector512.Load(c + 0 * ldc + w); }
            { c1L += Vector512.Load(c + 1 * ldc); c1H += Vector512.Load(c + 1 * ldc + w); }
            { c2L += Vector512.Load(c + 2 * ldc); c2H += Vector512.Load(c + 2 * ldc + w); }
            { c3L += Vector512.Load(c + 3 * ldc); c3H += Vector512.Load(c + 3 * ldc + w); }
            if (rows > 4) { c4L += Vector512.Load(c + 4 * ldc); c4H += Vector512.Load(c + 4 * ldc + w); }
            if (rows > 5) { c5L += Vector512.Load(c + 5 * ldc); c5H += Vector512.Load(c + 5 * ldc + w); }
            if (rows > 6) { c6L += Vector512.Load(c + 6 * ldc); c6H += Vector512.Load(c + 6 * ldc + w); }
            if (rows > 7) { c7L += Vector512.Load(c + 7 * ldc); c7H += Vector512.Load(c + 7 * ldc + w); }
            if (rows > 8) { c8L += Vector512.Load(c + 8 * ldc); c8H += Vector512.Load(c + 8 * ldc + w); }
            if (rows > 9) { c9L += Vector512.Load(c + 9 * ldc); c9H += Vector512.Load(c + 9 * ldc + w); }
            if (rows > 10) { c10L += Vector512.Load(c + 10 * ldc); c10H += Vector512.Load(c + 10 * ldc + w); }
            if (rows > 11) { c11L += Vector512.Load(c + 11 * ldc); c11H += Vector512.Load(c + 11 * ldc + w); }
        }
        { c0L.Store(c + 0 * ldc); c0H.Store(c + 0 * ldc + w); }
        { c1L.Store(c + 1 * ldc); c1H.Store(c + 1 * ldc + w); }
        { c2L.Store(c + 2 * ldc); c2H.Store(c + 2 * ldc + w); }
        { c3L.Store(c + 3 * ldc); c3H.Store(c + 3 * ldc + w); }
        if (rows > 4) { c4L.Store(c + 4 * ldc); c4H.Store(c + 4 * ldc + w); }
        if (rows > 5) { c5L.Store(c + 5 * ldc); c5H.Store(c + 5 * ldc + w); }
        if (rows > 6) { c6L.Store(c + 6 * ldc); c6H.Store(c + 6 * ldc + w); }
        if (rows > 7) { c7L.Store(c + 7 * ldc); c7H.Store(c + 7 * ldc + w); }
        if (rows > 8) { c8L.Store(c + 8 * ldc); c8H.Store(c + 8 * ldc + w); }
        if (rows > 9) { c9L.Store(c + 9 * ldc); c9H.Store(c + 9 * ldc + w); }
        if (rows > 10) { c10L.Store(c + 10 * ldc); c10H.Store(c + 10 * ldc + w); }
        if (rows > 11) { c11L.Store(c + 11 * ldc); c11H.Store(c + 11 * ldc + w); }
    }

    /// <summary>A row count of <see cref="ShiftedTile"/> known to the JIT as a constant.</summary>
    private interface IShiftedTileRows
    {
        static abstract int Value { get; }
    }

    private readonly struct FourRows : IShiftedTileRows { public static int Value => 4; }
    private readonly struct EightRows : IShiftedTileRows { public static int Value => 8; }
    private readonly struct TwelveRows : IShiftedTileRows { public static int Value => 12; }
}
