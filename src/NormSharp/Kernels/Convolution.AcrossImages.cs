using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace NormSharp.Kernels;

// The implicit forward with its 32 columns running across 32 images at one output position rather than along the
// positions of the images end to end (Convolution.Implicit.cs). All columns of a tile then share one place in the image,
// so the taps that read padding there are the same for every column and are skipped instead of multiplied by masked
// zeros: on a 7 × 7 plane under a 3 × 3 kernel 18 % of the multiply-adds ((19/21)² of them are kept). A chunk of 32
// images is staged (channels, positions, 32 images), each tile multiplies the weight's packed panels by the staged rows
// of its valid taps (Convolution.ShiftedTile, whose masks are then all set), and the tiles land (channels, positions,
// 32 images) in a scratch buffer that is transposed into the NCHW output. Each output element is one multiply-add
// chain per valid tap, whichever thread runs its chunk, so the result does not depend on the thread count.
internal static partial class Convolution
{
    /// <summary>Images per chunk: one register tile's columns.</summary>
    private const int AcrossImagesChunk = Gemm.TileCols;

    /// <summary>Most floats of a chunk's staged operands or output scratch (4 MiB each); larger planes keep the
    /// implicit GEMM, where the padding is a smaller share of the taps anyway.</summary>
    private const int AcrossImagesStageBudget = 1 << 20;

    /// <summary>Whether the implicit forward of <paramref name="g"/> (a shifted-plane geometry) runs across images: the
    /// 512-bit <see cref="ShiftedTile"/> runs it, the batch is whole chunks of 32 images, and a chunk's staged image
    /// and output fit <see cref="AcrossImagesStageBudget"/>. The input gradient takes it (<see cref="ForwardImplicit"/>) at odd
    /// planes, where Winograd does not run at 512 bits.</summary>
    private static bool RunsAcrossImages(ConvGeometry g) =>
        RunsShiftedTile(g) && g.Batch % AcrossImagesChunk == 0
        && (long)Math.Max(g.InChannels, g.OutChannels) * g.InPlane * AcrossImagesChunk <= AcrossImagesStageBudget;

    /// <summary>Chunks [start, end) of 32 images for <see cref="ForwardImplicit"/> across images, each thread with its
    /// own staged image and output scratch; the weight's panels are packed as one depth block of the patch rows.</summary>
    private readonly unsafe struct AcrossImagesChunks(ConvGeometry g, float* x, float* y, float* weightPanels, float* bias) : IChunkBody
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            int plane = g.InPlane, taps = g.Rows.Kernel * g.Cols.Kernel;
            float[] staged = BufferPool<float>.Shared.Rent(g.InChannels * plane * AcrossImagesChunk + Gemm.AlignmentSlack);
            float[] scratch = BufferPool<float>.Shared.Rent(g.OutChannels * plane * AcrossImagesChunk + Gemm.AlignmentSlack);
            int[] offsets = BufferPool<int>.Shared.Rent(taps);
            try
            {
                TapOffsets(g, offsets);
                for (int t = 0; t < taps; t++) offsets[t] *= AcrossImagesChunk;
                int* keepAll = stackalloc int[Gemm.TileCols];
                new Span<int>(keepAll, Gemm.TileCols).Fill(-1);
                float** rows = stackalloc float*[Math.Max(plane, AcrossImagesChunk)];
                fixed (float* stagedRaw = staged, scratchRaw = scratch)
                fixed (int* tapOffsets = offsets)
                {
                    float* stage = Gemm.AlignTo64(stagedRaw), products = Gemm.AlignTo64(scratchRaw);
                    for (int chunk = start; chunk < end; chunk++)
                    {
                        int first = chunk * AcrossImagesChunk;
                        Stage(first, stage, rows);
                        for (int position = 0; position < plane; position++)
                            MultiplyPosition(position, stage, tapOffsets, (float*)keepAll, products);
                        MoveOut(first, products, rows);
                    }
                }
            }
            finally
            {
                BufferPool<float>.Shared.Return(staged);
                BufferPool<float>.Shared.Return(scratch);
                BufferPool<int>.Shared.Return(offsets);
            }
        }

        /// <summary>stage[c, q, n] = x[first + n, c, q]: each channel's plane of the chunk's images, transposed.</summary>
        private void Stage(int first, float* stage, float** rows)
        {
            int plane = g.InPlane;
            for (int c = 0; c < g.InChannels; c++)
            {
                for (int n = 0; n < AcrossImagesChunk; n++) rows[n] = x + ((nint)(first + n) * g.InChannels + c) * plane;
                TransposeIntoPanel(rows, AcrossImagesChunk, plane, stage + (nint)c * plane * AcrossImagesChunk, AcrossImagesChunk);
            }
        }

        /// <summary>The tile of one output position: products[o, position, ·] for every output channel, summed over
        /// the taps that read inside the image there, a run of taps at a time over every row panel (a row of the
        /// kernel's taps, or all its valid rows where every column is valid: one run of the patch), so that the run's
        /// staged rows stay close while the weight's panels stream past; the bias (when there is one) starts the sum.
        /// Runs of one tap rather than rows of taps: 1.15× slower on the seed CNN's conv3 input gradient.</summary>
        private void MultiplyPosition(int position, float* stage, int* offsets, float* keepAll, float* products)
        {
            int plane = g.InPlane, width = g.Cols.Input, row = position / width, column = position - row * width, kw = g.Cols.Kernel;
            int rowPanels = (g.OutChannels + Gemm.TileRows - 1) / Gemm.TileRows, channels = g.InChannels, k = g.PatchSize;
            nint ldc = (nint)plane * AcrossImagesChunk;
            float* c0 = products + (nint)position * AcrossImagesChunk;
            if (bias != null)
                for (int o = 0; o < g.OutChannels; o++) new Span<float>(c0 + o * ldc, AcrossImagesChunk).Fill(bias[o]);
            // Tap (i, j) reads row + i − padTop and column + j − padLeft.
            int firstRow = Math.Max(0, g.Rows.PadBefore - row), endRow = Math.Min(g.Rows.Kernel, g.Rows.Input - row + g.Rows.PadBefore);
            int firstColumn = Math.Max(0, g.Cols.PadBefore - column), endColumn = Math.Min(kw, width - column + g.Cols.PadBefore);
            bool wholeRows = firstColumn == 0 && endColumn == kw, written = bias != null;
            for (int i = firstRow; i < endRow && firstColumn < endColumn; i = wholeRows ? endRow : i + 1)
            {
                int firstTap = i * kw + firstColumn, endTap = wholeRows ? endRow * kw : i * kw + endColumn;
                for (int r = 0; r < rowPanels; r++)
                    ShiftedTile(Math.Min(Gemm.TileRows, g.OutChannels - r * Gemm.TileRows), firstTap * channels, (endTap - firstTap) * channels, channels, k,
                        weightPanels + ((nint)r * k + firstTap * channels) * Gemm.TileRows, stage + (nint)position * AcrossImagesChunk, ldc, offsets,
                        keepAll, 0, c0 + r * Gemm.TileRows * ldc, ldc, loadC: written);
                written = true;
            }
            if (!written)
                for (int o = 0; o < g.OutChannels; o++) new Span<float>(c0 + o * ldc, AcrossImagesChunk).Clear();
        }

        /// <summary>y[first + n, o, q] = products[o, q, n]: each output channel's positions × images, transposed.</summary>
        private void MoveOut(int first, float* products, float** rows)
        {
            int plane = g.OutPlane;
            for (int o = 0; o < g.OutChannels; o++)
            {
                for (int q = 0; q < plane; q++) rows[q] = products + ((nint)o * plane + q) * AcrossImagesChunk;
                TransposeIntoPanel(rows, plane, AcrossImagesChunk, y + ((nint)first * g.OutChannels + o) * plane, g.OutChannels * plane);
            }
        }
    }
}

// The weight pass across images: dW' = Σ dy·Xᵀ over the batch's positions as the GEMM's depth, ordered position by
// position with the chunk's 16 images inside each (rather than image by image), so that the positions where a tap
// reads inside the image are one run of depth per image row (every image has the same ones): each tap multiplies
// those runs only, read in place from the staged operands, where the implicit weight pass multiplies masked zeros.
internal static partial class Convolution
{
    /// <summary>Images per chunk of the weight pass across images: the depth runs are an image row's positions × 16
    /// images (112 on a 7 × 7 plane), and the staged operands of the seed CNN's conv3 (dy 400 KiB, the image 200 KiB)
    /// stay in the L2.</summary>
    private const int WeightAcrossImagesChunk = 16;

    /// <summary>Whether the deep-patch weight pass (<see cref="ImplicitWeightProducts"/>, one group: at least two
    /// channel blocks) runs across images: 512-bit vectors (where it is measured), whole chunks of 16 images, and a
    /// chunk's staged dy and image within <see cref="AcrossImagesStageBudget"/>.</summary>
    private static bool WeightPassRunsAcrossImages(ConvGeometry g) =>
        Vector512.IsHardwareAccelerated && g.PatchSize > DotProductPatch && ImplicitWeightProducts.Groups(g) == 1
        && g.Batch % WeightAcrossImagesChunk == 0 && WeightAcrossImagesStagedFloats(g) <= AcrossImagesStageBudget;

    /// <summary>The floats a thread stages for a chunk of the weight pass across images, each a position × 16 images
    /// deep: dy's row panels (the output channels rounded up to whole panels) and the image's blocks of 32 channels.</summary>
    private static long WeightAcrossImagesStagedFloats(ConvGeometry g)
    {
        long dyRows = (long)(g.OutChannels + Gemm.TileRows - 1) / Gemm.TileRows * Gemm.TileRows;
        long imageColumns = (long)ImplicitWeightProducts.ColumnBlocks(g) / (g.Rows.Kernel * g.Cols.Kernel) * Gemm.TileCols;
        return (dyRows + imageColumns) * g.InPlane * WeightAcrossImagesChunk;
    }

    /// <summary>Column blocks [start, end) of dW' (OutChannels, taps, channel blocks · 32), column block u = b·taps + t
    /// (tap t of channel block b), summed over the whole batch into one partial sum laid out as
    /// <see cref="ImplicitWeightProducts"/> lays it out, the bias gradient after it; each thread stages the channel
    /// blocks of its columns and all of dy, chunk by chunk.</summary>
    private readonly unsafe struct WeightProductsAcrossImages(ConvGeometry g, float* x, float* dy, float* partials) : IChunkBody
    {
        private const int Chunk = WeightAcrossImagesChunk;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            int plane = g.InPlane, taps = g.Rows.Kernel * g.Cols.Kernel, columns = ImplicitWeightProducts.ColumnBlocks(g);
            int channelBlocks = columns / taps, rowPanels = (g.OutChannels + Gemm.TileRows - 1) / Gemm.TileRows;
            int blockLength = plane * Chunk * Gemm.TileCols, panelLength = plane * Chunk * Gemm.TileRows;
            float[] stagedX = BufferPool<float>.Shared.Rent(channelBlocks * blockLength + Gemm.AlignmentSlack);
            float[] stagedDy = BufferPool<float>.Shared.Rent(rowPanels * panelLength + Gemm.AlignmentSlack);
            try
            {
                fixed (float* xRaw = stagedX, dyRaw = stagedDy)
                {
                    float* blocks = Gemm.AlignTo64(xRaw), panels = Gemm.AlignTo64(dyRaw);
                    // The padding channels of a last block that they do not fill stay zero.
                    new Span<float>(blocks, channelBlocks * blockLength).Clear();
                    float* product = partials, biasSum = partials + ImplicitWeightProducts.ProductLength(g);
                    int firstBlock = start / taps, endBlock = (end - 1) / taps + 1;
                    int firstSum = (int)((long)g.OutChannels * start / columns), endSum = (int)((long)g.OutChannels * end / columns);
                    float** rows = stackalloc float*[Gemm.TileCols];
                    for (int first = 0; first < g.Batch; first += Chunk)
                    {
                        for (int n = first; n < first + Chunk; n++)
                            for (int o = firstSum; o < endSum; o++)
                            {
                                float channelSum = ImplicitWeightProducts.PlaneSum(dy + ((nint)n * g.OutChannels + o) * plane, plane);
                                biasSum[o] = n > 0 ? biasSum[o] + channelSum : channelSum;
                            }
                        Stage(first, blocks, blockLength, firstBlock, endBlock, panels, panelLength, rows);
                        for (int column = start; column < end; column++)
                            AddTap(column / taps, column % taps, blocks + (nint)(column / taps) * blockLength, panels, panelLength,
                                product + (column % taps * channelBlocks + column / taps) * Gemm.TileCols, columns * Gemm.TileCols, accumulate: first > 0);
                    }
                }
            }
            finally
            {
                BufferPool<float>.Shared.Return(stagedX);
                BufferPool<float>.Shared.Return(stagedDy);
            }
        }

        /// <summary>Stages images [first, first + 16) position-major: channel block b's row q·16 + n holds its channels
        /// of image n at position q, and row panel r's step q·16 + n holds dy's 12 output channels of image n at q (the
        /// GEMM's A panels, k-major).</summary>
        private void Stage(int first, float* blocks, int blockLength, int firstBlock, int endBlock, float* panels, int panelLength, float** rows)
        {
            int plane = g.InPlane;
            for (int b = firstBlock; b < endBlock; b++)
            {
                int channels = Math.Min(Gemm.TileCols, g.InChannels - b * Gemm.TileCols);
                for (int n = 0; n < Chunk; n++)
                {
                    for (int c = 0; c < channels; c++) rows[c] = x + ((nint)(first + n) * g.InChannels + b * Gemm.TileCols + c) * plane;
                    TransposeIntoPanel(rows, channels, plane, blocks + (nint)b * blockLength + n * Gemm.TileCols, Chunk * Gemm.TileCols);
                }
            }
            for (int r = 0; r * Gemm.TileRows < g.OutChannels; r++)
            {
                int panelRows = Math.Min(Gemm.TileRows, g.OutChannels - r * Gemm.TileRows);
                for (int n = 0; n < Chunk; n++)
                {
                    for (int i = 0; i < panelRows; i++) rows[i] = dy + ((nint)(first + n) * g.OutChannels + r * Gemm.TileRows + i) * plane;
                    TransposeIntoPanel(rows, panelRows, plane, panels + (nint)r * panelLength + n * Gemm.TileRows, Chunk * Gemm.TileRows);
                }
            }
        }

        /// <summary>Column block (b, t) of dW' (+)= the chunk's dy·Xᵀ over the positions where tap t reads inside the
        /// image: one run of depth per image row, each met by every row panel, or one run for all the valid rows where
        /// the tap reads inside on every column (same-process A/B on the seed CNN's conv3, under load: 1.04×; chunks
        /// of 32 images rather than 16 were 0.95×).</summary>
        private void AddTap(int b, int t, float* block, float* panels, int panelLength, float* c, nint ldc, bool accumulate)
        {
            int width = g.Cols.Input, i = t / g.Cols.Kernel, j = t - i * g.Cols.Kernel;
            // Position (h, w) reads (h + i − padTop, w + j − padLeft).
            int firstRow = Math.Max(0, g.Rows.PadBefore - i), endRow = Math.Min(g.Rows.Input, g.Rows.Input + g.Rows.PadBefore - i);
            int firstColumn = Math.Max(0, g.Cols.PadBefore - j), endColumn = Math.Min(width, width + g.Cols.PadBefore - j);
            int offset = (i - g.Rows.PadBefore) * width + j - g.Cols.PadBefore;
            GemmKernelPath path = Gemm.BestPath;
            bool loadC = accumulate;
            bool wholeRows = firstColumn == 0 && endColumn == width;
            for (int h = firstRow; h < endRow && firstColumn < endColumn; h = wholeRows ? endRow : h + 1, loadC = true)
            {
                int depthStart = (h * width + firstColumn) * Chunk, depth = wholeRows ? (endRow - firstRow) * width * Chunk : (endColumn - firstColumn) * Chunk;
                float* source = block + (nint)(depthStart + offset * Chunk) * Gemm.TileCols;
                for (int r = 0; r * Gemm.TileRows < g.OutChannels; r++)
                    Gemm.Tile(path, Math.Min(Gemm.TileRows, g.OutChannels - r * Gemm.TileRows), depth,
                        panels + (nint)r * panelLength + (nint)depthStart * Gemm.TileRows, source, c + r * Gemm.TileRows * ldc, ldc, loadC);
            }
            if (!loadC)
                for (int o = 0; o < g.OutChannels; o++) new Span<float>(c + o * ldc, Gemm.TileCols).Clear();
        }
    }
}
