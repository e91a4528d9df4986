using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace NormSharp.Kernels;

// Implicit GEMM for the convolutions whose output plane is the input plane shifted (unit stride and dilation, "same"
// padding: every convolution of the seed CNN). The GEMM's B panels (32 output positions × a depth block of patch
// rows) are packed straight from the image, so the column matrix is never written: for tap (i, j) the patch row is
// the channel plane read at offset d = (i − padTop)·W + (j − padLeft) (Im2Col.IsShiftedPlane), and the positions whose
// tap reads padding are zeroed by a mask that depends on the tap and the position only, built once per panel and
// applied to every channel. The register tile (Gemm.Tile) writes straight into the NCHW output. Each output element is
// the bias plus one fused multiply-add chain per depth block, the blocks fixed by the patch size alone, so the result
// does not depend on how images are grouped or on the thread count.
internal static partial class Convolution
{
    /// <summary>Largest depth block of the implicit GEMM: one B panel (32 × 256 floats, 32 KiB) is reused by every
    /// row panel of the weight while it stays in L1; the weight's packed panels stream from L2.</summary>
    private const int ImplicitDepthBlock = 256;

    /// <summary>Images share one implicit GEMM until they hold about this many output positions, so that the
    /// 32-column tiles are full (one 7×7 image alone fills two tiles at 77 %); the positions of all the group's
    /// images lie end to end and a tile that straddles two images goes through a scratch tile.</summary>
    private const int ImplicitGroupPositions = 512;

    /// <summary>Whether the float32 passes run as implicit GEMMs: a shifted-plane geometry that is not pointwise (a
    /// pointwise convolution already multiplies the image in place).</summary>
    internal static bool RunsImplicitly<T>(ConvGeometry g) =>
        typeof(T) == typeof(float) && !g.IsPointwise && Im2Col.IsShiftedPlane(g.Rows, g.Cols);

    /// <summary>y = W ⋆ x + b as an implicit GEMM (see the file's comment); an empty bias means none.</summary>
    private static unsafe void ForwardImplicit(ConvGeometry g, ArraySegment<float> input, ReadOnlySpan<float> weight,
        ArraySegment<float> bias, ArraySegment<float> output)
    {
        int depth = Gemm.EqualParts(g.PatchSize, 1, ImplicitDepthBlock);
        int rowPanels = (g.OutChannels + Gemm.TileRows - 1) / Gemm.TileRows;
        float[] packed = BufferPool<float>.Shared.Rent(rowPanels * Gemm.TileRows * g.PatchSize + Gemm.AlignmentSlack);
        try
        {
            fixed (float* raw = packed, w = weight)
            {
                float* panels = Gemm.AlignTo64(raw);
                PackWeightPanels(w, g.OutChannels, g.PatchSize, depth, panels);
                int images = Math.Clamp(ImplicitGroupPositions / g.OutPlane, 1, Math.Max(1, g.Batch));
                var body = new ImplicitForwardGroups(g, input, bias, output, panels, depth, images);
                Parallelism.For((g.Batch + images - 1) / images, body, workPerItem: g.MultiplyAddsPerImage * images);
            }
        }
        finally
        {
            BufferPool<float>.Shared.Return(packed);
        }
    }

    /// <summary>dx = Fold(Wᵀ·dy) + b for a shifted-plane geometry, as the forward implicit GEMM of the same size with
    /// the weight transposed over its channels and flipped over its taps, W'[c, o, kh−1−i, kw−1−j] = W[o, c, i, j], and
    /// the padding mirrored (kh − 1 − padTop before): dx[c, h, w] = Σ W[o, c, i, j]·dy[o, h − i + padTop, w − j + padLeft]
    /// is a correlation of dy with W'. No column matrix is written and none is folded.</summary>
    private static void BackwardDataImplicit(ConvGeometry g, ArraySegment<float> gradOutput, ArraySegment<float> weight,
        ArraySegment<float> bias, ArraySegment<float> gradInput)
    {
        int kh = g.Rows.Kernel, kw = g.Cols.Kernel, taps = kh * kw;
        float[] flipped = BufferPool<float>.Shared.Rent(g.OutChannels * g.PatchSize);
        try
        {
            ReadOnlySpan<float> w = weight.AsSpan(0, g.OutChannels * g.PatchSize);
            for (int o = 0; o < g.OutChannels; o++)
                for (int c = 0; c < g.InChannels; c++)
                    for (int t = 0; t < taps; t++)
                        flipped[(c * g.OutChannels + o) * taps + taps - 1 - t] = w[(o * g.InChannels + c) * taps + t];
            var mirrored = new ConvGeometry(g.Batch, g.OutChannels, g.InChannels,
                g.Rows with { PadBefore = kh - 1 - g.Rows.PadBefore }, g.Cols with { PadBefore = kw - 1 - g.Cols.PadBefore });
            ForwardImplicit(mirrored, gradOutput, flipped.AsSpan(0, g.OutChannels * g.PatchSize), bias, gradInput);
        }
        finally
        {
            BufferPool<float>.Shared.Return(flipped);
        }
    }

    /// <summary>Packs the weight (rows × depth, row-major) as the GEMM packs op(A): per depth block of at most
    /// <paramref name="depthMax"/>, panels of 12 rows, k-major (element (i, p) at p·12 + i); rows past the last are
    /// left unset (the tile for a short panel does not read them).</summary>
    private static unsafe void PackWeightPanels(float* weight, int rows, int depth, int depthMax, float* panels)
    {
        int rowPanels = (rows + Gemm.TileRows - 1) / Gemm.TileRows;
        for (int start = 0; start < depth; start += depthMax)
        {
            int block = Math.Min(depthMax, depth - start);
            float* blockPanels = panels + (nint)start * rowPanels * Gemm.TileRows;
            for (int r = 0; r < rows; r++)
            {
                float* source = weight + (nint)r * depth + start;
                float* target = blockPanels + (nint)(r / Gemm.TileRows) * Gemm.TileRows * block + r % Gemm.TileRows;
                for (int p = 0; p < block; p++) target[p * Gemm.TileRows] = source[p];
            }
        }
    }

    /// <summary>The implicit forward over groups of images [start, end), each thread with its own staging, panel and
    /// mask buffers.</summary>
    private readonly unsafe struct ImplicitForwardGroups(ConvGeometry g, ArraySegment<float> input, ArraySegment<float> bias,
        ArraySegment<float> output, float* weightPanels, int depthMax, int imagesPerGroup) : IChunkBody
    {
        private readonly int _taps = g.Rows.Kernel * g.Cols.Kernel;

        // Reads reach this far before and after a channel row of the staged images (the largest tap offset).
        private readonly int _guard = Math.Max(g.Rows.PadBefore, g.Rows.Kernel - 1 - g.Rows.PadBefore) * g.Cols.Input
            + Math.Max(g.Cols.PadBefore, g.Cols.Kernel - 1 - g.Cols.PadBefore);

        public void Run(int start, int end)
        {
            int rowPanels = (g.OutChannels + Gemm.TileRows - 1) / Gemm.TileRows, maskStride = imagesPerGroup * g.InPlane + Gemm.TileCols;
            float[] staged = BufferPool<float>.Shared.Rent(_guard + g.InChannels * imagesPerGroup * g.InPlane + Gemm.TileCols + _guard);
            float[] panel = BufferPool<float>.Shared.Rent(Gemm.TileCols * depthMax + Gemm.AlignmentSlack);
            float[] column = BufferPool<float>.Shared.Rent(rowPanels * Gemm.TileRows * Gemm.TileCols + Gemm.AlignmentSlack);
            int[] masks = BufferPool<int>.Shared.Rent(_taps * maskStride);
            int[] offsets = BufferPool<int>.Shared.Rent(_taps);
            try
            {
                for (int t = 0; t < _taps; t++)
                    offsets[t] = (t / g.Cols.Kernel - g.Rows.PadBefore) * g.Cols.Input + t % g.Cols.Kernel - g.Cols.PadBefore;
                fixed (float* stagedRaw = staged, panelRaw = panel, columnRaw = column, x = input.AsSpan(), y = output.AsSpan())
                fixed (int* maskBits = masks, tapOffsets = offsets)
                {
                    int maskedImages = 0;
                    for (int group = start; group < end; group++)
                    {
                        int first = group * imagesPerGroup, count = Math.Min(imagesPerGroup, g.Batch - first);
                        if (count != maskedImages) BuildMasks(count, maskStride, maskBits);
                        maskedImages = count;
                        var buffers = new ImplicitBuffers(stagedRaw + _guard, Gemm.AlignTo64(panelRaw), Gemm.AlignTo64(columnRaw), (float*)maskBits, maskStride, tapOffsets);
                        RunGroup(first, count, x, y, buffers);
                    }
                }
            }
            finally
            {
                BufferPool<float>.Shared.Return(staged);
                BufferPool<float>.Shared.Return(panel);
                BufferPool<float>.Shared.Return(column);
                BufferPool<int>.Shared.Return(masks);
                BufferPool<int>.Shared.Return(offsets);
            }
        }

        private void RunGroup(int first, int count, float* x, float* y, ImplicitBuffers buffers)
        {
            int plane = g.InPlane, positions = count * plane, k = g.PatchSize;
            int rowPanels = (g.OutChannels + Gemm.TileRows - 1) / Gemm.TileRows;
            // Channel c of the group's images end to end: row c of the staged data, positions long.
            for (int c = 0; c < g.InChannels; c++)
                for (int n = 0; n < count; n++)
                    new ReadOnlySpan<float>(x + ((nint)(first + n) * g.InChannels + c) * plane, plane)
                        .CopyTo(new Span<float>(buffers.Staged + (nint)c * positions + n * plane, plane));
            for (int n = 0; n < count; n++)
                FillChannels(output.AsSpan((first + n) * g.OutChannels * plane, g.OutChannels * plane), bias, g.OutChannels, plane);
            GemmKernelPath path = Gemm.BestPath;
            for (int j0 = 0; j0 < positions; j0 += Gemm.TileCols)
            {
                int columns = Math.Min(Gemm.TileCols, positions - j0), image = j0 / plane;
                // A full tile inside one image is written in place; the others (the last, and those that straddle two
                // images) go through a column of scratch tiles, moved in and out once for all depth blocks.
                bool inPlace = columns == Gemm.TileCols && (j0 + Gemm.TileCols - 1) / plane == image;
                float* c0 = inPlace ? y + (nint)(first + image) * g.OutChannels * plane + (j0 - image * plane) : buffers.Column;
                nint ldc = inPlace ? plane : Gemm.TileCols;
                if (!inPlace) MoveColumn(y, first, j0, columns, buffers.Column, toScratch: true);
                for (int depthStart = 0; depthStart < k; depthStart += depthMax)
                {
                    int depth = Math.Min(depthMax, k - depthStart);
                    PackImagePanel(buffers, positions, j0, depthStart, depth);
                    float* blockPanels = weightPanels + (nint)depthStart * rowPanels * Gemm.TileRows;
                    for (int r = 0; r < rowPanels; r++)
                        Gemm.Tile(path, Math.Min(Gemm.TileRows, g.OutChannels - r * Gemm.TileRows), depth,
                            blockPanels + (nint)r * Gemm.TileRows * depth, buffers.Panel, c0 + r * Gemm.TileRows * ldc, ldc, loadC: true);
                }
                if (!inPlace) MoveColumn(y, first, j0, columns, buffers.Column, toScratch: false);
            }
        }

        /// <summary>masks[t·stride + j] = all ones where tap t of position j (of <paramref name="count"/> images end
        /// to end) reads inside its image, else zero (also for the 32 positions past the last, which the last tile
        /// covers). A tap reads inside when both its row and its column do.</summary>
        private void BuildMasks(int count, int stride, int* masks)
        {
            int width = g.Cols.Input, height = g.Rows.Input, positions = count * g.InPlane;
            for (int t = 0; t < _taps; t++)
            {
                int rowShift = t / g.Cols.Kernel - g.Rows.PadBefore, columnShift = t % g.Cols.Kernel - g.Cols.PadBefore;
                int* mask = masks + (nint)t * stride;
                for (int n = 0, j = 0; n < count; n++)
                    for (int row = 0; row < height; row++)
                    {
                        bool rowInside = (uint)(row + rowShift) < (uint)height;
                        for (int column = 0; column < width; column++, j++)
                            mask[j] = rowInside && (uint)(column + columnShift) < (uint)width ? -1 : 0;
                    }
                new Span<int>(mask + positions, stride - positions).Clear();
            }
        }

        /// <summary>Packs the B panel of positions [j0, j0 + 32) for patch rows [depthStart, depthStart + depth): row
        /// p = (c, t) is staged channel row c read at tap t's offset, under tap t's mask.</summary>
        private void PackImagePanel(ImplicitBuffers buffers, int positions, int j0, int depthStart, int depth)
        {
            if (Vector512.IsHardwareAccelerated) PackImagePanel<Simd512<float>>(buffers, positions, j0, depthStart, depth);
            else if (Vector256.IsHardwareAccelerated) PackImagePanel<Simd256<float>>(buffers, positions, j0, depthStart, depth);
            else PackImagePanel<Simd128<float>>(buffers, positions, j0, depthStart, depth);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void PackImagePanel<TVector>(ImplicitBuffers buffers, int positions, int j0, int depthStart, int depth)
            where TVector : struct, ISimdVector<TVector, float>
        {
            int c = depthStart / _taps, t = depthStart - c * _taps;
            float* staged = buffers.Staged + j0, masks = buffers.Masks + j0, panel = buffers.Panel;
            for (int p = 0; p < depth; p++, panel += Gemm.TileCols)
            {
                float* source = staged + (nint)c * positions + buffers.Offsets[t], mask = masks + (nint)t * buffers.MaskStride;
                for (int lane = 0; lane < Gemm.TileCols; lane += TVector.Count)
                    TVector.ConditionalSelect(TVector.LoadUnsafe(in mask[lane], 0), TVector.LoadUnsafe(in source[lane], 0), TVector.Zero)
                        .StoreUnsafe(ref panel[lane], 0);
                if (++t == _taps) { t = 0; c++; }
            }
        }

        /// <summary>Moves every output channel × positions [j0, j0 + columns) between the NCHW output and the scratch
        /// column (row stride 32), one image's stretch at a time.</summary>
        private void MoveColumn(float* y, int first, int j0, int columns, float* scratch, bool toScratch)
        {
            int plane = g.InPlane;
            for (int position = j0, end = j0 + columns; position < end;)
            {
                int image = position / plane, stretch = Math.Min(end, (image + 1) * plane) - position;
                float* inOutput = y + (nint)(first + image) * g.OutChannels * plane + position - image * plane;
                for (int o = 0; o < g.OutChannels; o++)
                {
                    var outputRow = new Span<float>(inOutput + (nint)o * plane, stretch);
                    var scratchRow = new Span<float>(scratch + o * Gemm.TileCols + position - j0, stretch);
                    if (toScratch) outputRow.CopyTo(scratchRow);
                    else scratchRow.CopyTo(outputRow);
                }
                position += stretch;
            }
        }
    }

    /// <summary>One thread's buffers for the implicit GEMM: the staged images (at their first position, with room
    /// for the tap offsets either side), the B panel, the scratch column of tiles, the tap masks (one row of
    /// <see cref="MaskStride"/> per tap) and the tap offsets.</summary>
    private readonly unsafe struct ImplicitBuffers(float* staged, float* panel, float* column, float* masks, int maskStride, int* offsets)
    {
        public readonly float* Staged = staged, Panel = panel, Column = column, Masks = masks;
        public readonly int MaskStride = maskStride;
        public readonly int* Offsets = offsets;
    }
}
