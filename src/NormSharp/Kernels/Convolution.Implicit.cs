using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace NormSharp.Kernels;

// Implicit GEMM for the convolutions whose output plane is the input plane shifted (unit stride and dilation, "same"
// padding: every convolution of the seed CNN). The GEMM's B panels (32 output positions × a depth block of patch
// rows) are packed straight from the image, so the column matrix is never written: for tap (i, j) the patch row is
// the channel plane read at offset d = (i − padTop)·W + (j − padLeft) (Im2Col.IsShiftedPlane), and the positions whose
// tap reads padding are zeroed by a mask that depends on the tap and the position's place in its image only (one row
// per tap, built once per thread) and serves every channel. The batch's positions are numbered end to end over its
// images and cut into tiles of 32, so every tile but the last is full whatever the plane size; the register tile
// (Gemm.Tile, or at 512 bits Convolution.ShiftedTile, which reads the shifted rows in place and packs nothing) writes
// straight into the NCHW output. The bias is one more patch row, of ones, with the bias as its
// weight, so the first depth block writes the output without reading it. Each output element is one fused
// multiply-add chain per depth block, the blocks fixed by the patch size alone, so the result does not depend on which
// tile holds the element or on the thread count. The weight pass reads the same masked, shifted rows, there as the
// columns of dW = dy·Xᵀ with the positions as the GEMM's depth.
internal static partial class Convolution
{
    /// <summary>Largest depth block of the implicit GEMM: one B panel (32 × up to 640 floats, at most 80 KiB, in L1 and
    /// L2) is reused by every row panel of the weight, whose packed panels stream from L2. The seed CNN's conv3 (576
    /// patch rows and the bias's) runs as one block, so its tiles write the output without reading it back, and its
    /// input gradient as two; same-process A/B against blocks of 256 (under load): 3–5 % faster.</summary>
    private const int ImplicitDepthBlock = 640;

    /// <summary>Tiles of 32 output positions that one staging of the image serves (512 positions, 64 KiB of a
    /// 32-channel image); the positions of all the batch's images are numbered end to end, so every tile but the
    /// batch's last is full whatever the plane size.</summary>
    private const int ImplicitChunkTiles = 16;

    /// <summary>Whether the float32 passes run as implicit GEMMs: a shifted-plane geometry that is not pointwise (a
    /// pointwise convolution already multiplies the image in place).</summary>
    internal static bool RunsImplicitly<T>(ConvGeometry g) =>
        typeof(T) == typeof(float) && !g.IsPointwise && Im2Col.IsShiftedPlane(g.Rows, g.Cols);

    /// <summary>y = W ⋆ x + b as an implicit GEMM (see the file's comment); an empty bias means none. The batch's
    /// positions, numbered end to end over its images, are cut into tiles of 32, and each thread takes an equal
    /// contiguous run of tiles; each output element is computed the same way in any tile, in place or through the
    /// scratch column, so the split does not change the result. With <paramref name="turnedWeight"/> the weight is
    /// read as that of the convolution whose input gradient this is (see <see cref="BackwardDataImplicit"/>).</summary>
    private static unsafe void ForwardImplicit(ConvGeometry g, ArraySegment<float> input, ReadOnlySpan<float> weight,
        ArraySegment<float> bias, ArraySegment<float> output, bool turnedWeight = false)
    {
        // The input gradient runs across images where it can (Convolution.AcrossImages.cs; measured there only): the
        // patch rows as one block, and the bias starts each sum. Elsewhere the patch rows, then the bias's row of ones.
        bool acrossImages = turnedWeight && RunsAcrossImages(g);
        int k = g.PatchSize + (bias.Count > 0 && !acrossImages ? 1 : 0), depth = acrossImages ? k : Gemm.EqualParts(k, 1, ImplicitDepthBlock);
        int rowPanels = (g.OutChannels + Gemm.TileRows - 1) / Gemm.TileRows;
        int tiles = WorkspaceLength(g, ((long)g.Batch * g.OutPlane + Gemm.TileCols - 1) / Gemm.TileCols, "output tiles");
        float[] packed = BufferPool<float>.Shared.Rent(rowPanels * Gemm.TileRows * k + Gemm.AlignmentSlack);
        try
        {
            fixed (float* raw = packed, w = weight, b = bias.AsSpan(), x = input.AsSpan(), y = output.AsSpan())
            {
                float* panels = Gemm.AlignTo64(raw);
                Parallelism.For(rowPanels, new WeightPanels(w, b, g.OutChannels, g.InChannels, g.Rows.Kernel * g.Cols.Kernel, turnedWeight, k, depth, panels),
                    workPerItem: Gemm.TileRows * k);
                if (acrossImages)
                    Parallelism.For(g.Batch / AcrossImagesChunk, new AcrossImagesChunks(g, x, y, panels, bias.Count > 0 ? b : null),
                        workPerItem: g.MultiplyAddsPerImage * AcrossImagesChunk);
                else
                    Parallelism.For(tiles, new ImplicitForwardTiles(g, x, y, panels, k, depth),
                        workPerItem: g.MultiplyAddsPerImage * Gemm.TileCols / Math.Max(1, g.OutPlane));
            }
        }
        finally
        {
            BufferPool<float>.Shared.Return(packed);
        }
    }

    /// <summary>dx = Fold(Wᵀ·dy) + b for a shifted-plane geometry, as the forward implicit GEMM of the same size with
    /// the weight transposed over its channels and turned over its taps, W'[c, o, kh−1−i, kw−1−j] = W[o, c, i, j], and
    /// the padding mirrored (kh − 1 − padTop before): dx[c, h, w] = Σ W[o, c, i, j]·dy[o, h − i + padTop, w − j + padLeft]
    /// is a correlation of dy with W'. No column matrix is written and none is folded, and W' is read from W as the
    /// GEMM's panels are packed. Where it runs across images (Convolution.AcrossImages.cs: 512 bits, whole chunks of 32
    /// images) the taps that read padding are skipped: the seed CNN's conv3 input gradient on one thread 1.15× as fast
    /// (same-process medians under load, 4.93–4.95 → 4.25–4.30 ms).</summary>
    private static void BackwardDataImplicit(ConvGeometry g, ArraySegment<float> gradOutput, ArraySegment<float> weight,
        ArraySegment<float> bias, ArraySegment<float> gradInput)
    {
        int kh = g.Rows.Kernel, kw = g.Cols.Kernel;
        var mirrored = new ConvGeometry(g.Batch, g.OutChannels, g.InChannels,
            g.Rows with { PadBefore = kh - 1 - g.Rows.PadBefore }, g.Cols with { PadBefore = kw - 1 - g.Cols.PadBefore });
        ForwardImplicit(mirrored, gradOutput, weight.AsSpan(0, g.OutChannels * g.PatchSize), bias, gradInput, turnedWeight: true);
    }

    /// <summary>dW = Σ_images dy·Xᵀ for a shifted-plane geometry, without a column matrix. The batch is summed in
    /// fixed groups of images, each staged a chunk of images at a time (with one mask row per tap), into its own
    /// partial sum, and the partial sums are added afterwards in group order, so the result depends on the geometry
    /// and the vector width only. A small patch (<see cref="DotProductPatch"/>: a first layer on one or a few
    /// channels) takes register-blocked dot products on each image's column matrix in
    /// <see cref="WeightGradientGroups"/> groups (<see cref="WeightDotGroups"/>, Convolution.WeightDots.cs); a deep
    /// one an implicit GEMM over the positions (<see cref="ImplicitWeightProducts"/>) on the image in blocks of 32
    /// channels, channels last, with dy's rows transposed into the GEMM's panels straight from NCHW, its work items
    /// each group's column blocks of dW' (<see cref="ImplicitWeightProducts.Groups"/>), or, at 512 bits in one group of
    /// whole 16-image chunks, the same GEMM across images, which skips the taps' padding
    /// (<see cref="WeightProductsAcrossImages"/>: the seed CNN's conv3 on one thread 1.14× as fast, same-process medians
    /// under load, 5.62–5.64 → 4.89–4.92 ms with the bias gradient). Each group also sums dy's rows,
    /// the bias gradient (written into <paramref name="gradBias"/> unless it is empty), just before the pass reads
    /// them, so they come from the cache.</summary>
    private static unsafe void BackwardWeightImplicit(ConvGeometry g, ArraySegment<float> input, ArraySegment<float> gradOutput,
        ArraySegment<float> gradWeight, ArraySegment<float> gradBias)
    {
        bool dots = g.PatchSize <= DotProductPatch;
        int groups = dots ? Math.Min(g.Batch, WeightGradientGroups) : ImplicitWeightProducts.Groups(g);
        int items = dots ? groups : groups * ImplicitWeightProducts.ColumnBlocks(g);
        int sumLength = (dots ? WeightDotGroups.SumLength(g) : ImplicitWeightProducts.ProductLength(g)) + g.OutChannels;
        // Each group sums into its own partial sum; they are added afterwards in group order.
        float[] partials = BufferPool<float>.Shared.Rent(WorkspaceLength(g, (long)groups * sumLength, "weight-gradient partial sums"));
        try
        {
            fixed (float* x = input.AsSpan(), dy = gradOutput.AsSpan(), sums = partials, dw = gradWeight.AsSpan(), db = gradBias.AsSpan())
            {
                long workPerItem = g.MultiplyAddsPerImage * g.Batch / items;
                if (dots) Parallelism.For(items, new WeightDotGroups(g, x, dy, sums, groups), workPerItem);
                else if (WeightPassRunsAcrossImages(g)) Parallelism.For(items, new WeightProductsAcrossImages(g, x, dy, sums), workPerItem);
                else Parallelism.For(items, new ImplicitWeightProducts(g, x, dy, sums, groups), workPerItem);
                Parallelism.For(g.OutChannels, new WeightGradientTotals(g, sums, groups, dw, gradBias.Count > 0 ? db : null),
                    workPerItem: (long)groups * sumLength / g.OutChannels);
            }
        }
        finally
        {
            BufferPool<float>.Shared.Return(partials);
        }
    }

    /// <summary>Adds the weight pass's partial sums in group order and writes dW (and db unless it is null) for output
    /// channels [start, end). The channels are split over the threads: every element is still the same sum in the
    /// same order, and a serial pass over all the partial sums (16 × 295 KiB for conv3 when it still summed 16 groups)
    /// left the other thread idle.</summary>
    private readonly unsafe struct WeightGradientTotals(ConvGeometry g, float* partials, int groups, float* gradWeight, float* gradBias) : IChunkBody
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            bool dots = g.PatchSize <= DotProductPatch;
            int productLength = dots ? WeightDotGroups.SumLength(g) : ImplicitWeightProducts.ProductLength(g), sumLength = productLength + g.OutChannels, row = productLength / g.OutChannels;
            for (int o = start; o < end; o++)
            {
                var total = new Span<float>(partials + (nint)o * row, row);
                float bias = partials[productLength + o];
                for (int group = 1; group < groups; group++)
                {
                    float* partial = partials + (nint)group * sumLength;
                    TensorPrimitives.Add(total, new ReadOnlySpan<float>(partial + (nint)o * row, row), total);
                    bias += partial[productLength + o];
                }
                if (dots) total.CopyTo(new Span<float>(gradWeight + (nint)o * g.PatchSize, g.PatchSize));
                else ImplicitWeightProducts.StoreProduct(g, total, new Span<float>(gradWeight + (nint)o * g.PatchSize, g.PatchSize));
                if (gradBias != null) gradBias[o] = bias;
            }
        }
    }

    /// <summary>Whether <see cref="BackwardWeightImplicit"/> runs this float32 geometry: a shifted-plane one with a
    /// small patch, or with a deep patch where the GEMM's operands are transposed in registers and the input channels fill their
    /// 32-channel blocks to at least two thirds (the padding channels cost multiply-adds: 3 RGB channels would run
    /// at a tenth of the speed); elsewhere im2col + GEMM.</summary>
    internal static bool WeightGradientRunsImplicitly<T>(ConvGeometry g) =>
        RunsImplicitly<T>(g) && (g.PatchSize <= DotProductPatch
            || BlockTranspose.FourByFour && 2 * (g.InChannels + Gemm.TileCols - 1) / Gemm.TileCols * Gemm.TileCols <= 3 * g.InChannels);

    /// <summary>Most positions per depth block of the weight pass's implicit GEMM (a chunk's positions are cut into
    /// equal blocks, and a chunk is the images that fill one): a 32 × 512 B panel (64 KiB) is read by the A panels of
    /// every output channel (128 × 512 floats) from L1 and L2. The seed CNN's conv3 stages 10 images (490 positions) as
    /// one block; same-process A/B against blocks of 256 (under load, when it summed 8 images per group): 1–2 %
    /// faster.</summary>
    private const int WeightProductDepthBlock = 512;

    /// <summary>The deep-patch weight pass over work items [start, end), each thread with its own staging buffers:
    /// item group·columns + u sums column block u = b·taps + t of dW' (OutChannels, taps, channel blocks · 32), tap t
    /// of channel block b, over the group's images into the group's partial sum. The items also sum the group's bias
    /// gradient, each run of a group's items the same share of its channels.</summary>
    private readonly unsafe struct ImplicitWeightProducts(ConvGeometry g, float* x, float* dy, float* partials, int groups) : IChunkBody
    {
        /// <summary>Column blocks (channel block, tap) of dW', each 32 wide.</summary>
        public static int ColumnBlocks(ConvGeometry g) => (g.InChannels + Gemm.TileCols - 1) / Gemm.TileCols * g.Rows.Kernel * g.Cols.Kernel;

        /// <summary>Floats of dW' (OutChannels, taps, channel blocks · 32).</summary>
        public static int ProductLength(ConvGeometry g) => WorkspaceLength(g, (long)g.OutChannels * ColumnBlocks(g) * Gemm.TileCols, "weight-gradient product");

        /// <summary>Groups of images: one where the image has two channel blocks or more, whose threads then split
        /// dW''s columns and sum the whole batch in place (each staging only its channel blocks, every one
        /// transposing all of dy); else <see cref="WeightGradientGroups"/>, whose threads split the images, as one
        /// channel block's threads would each stage the whole image. Same-process A/B, process CPU time, under load,
        /// against 16 groups: the seed CNN's conv3 (two blocks) 1.045–1.055× on 1 thread, 0.98–1.01× on 2, its 16 partial sums of
        /// dW no longer added; conv2 (one block) 1.02× on 1 and 0.92× on 2.</summary>
        public static int Groups(ConvGeometry g) =>
            g.InChannels > Gemm.TileCols ? 1 : Math.Min(g.Batch, WeightGradientGroups);

        private readonly int _taps = g.Rows.Kernel * g.Cols.Kernel, _reach = TapReach(g);
        /// <summary>Images staged at a time: one depth block of the GEMM's positions (at least one image).</summary>
        private readonly int _chunkImages = Math.Clamp(WeightProductDepthBlock / g.InPlane, 1, g.Batch);
        private readonly int _channelBlocks = (g.InChannels + Gemm.TileCols - 1) / Gemm.TileCols;

        /// <summary>Rows of one channel block of the channels-last image: the chunk's positions with room for the tap
        /// offsets either side.</summary>
        private int BlockRows => _reach + _chunkImages * g.InPlane + _reach;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            int plane = g.InPlane, stride = _chunkImages * plane + Gemm.TileCols, columns = ColumnBlocks(g);
            int depthMax = Math.Min(WeightProductDepthBlock, _chunkImages * plane);
            int rowPanels = (g.OutChannels + Gemm.TileRows - 1) / Gemm.TileRows;
            // The GEMM's operands: the channels-last image and the A and B panels.
            long imageLength = (long)_channelBlocks * BlockRows * Gemm.TileCols + Gemm.AlignmentSlack;
            long panelsLength = (long)rowPanels * Gemm.TileRows * depthMax + Gemm.TileCols * depthMax + 2 * Gemm.AlignmentSlack;
            float[] stagedX = BufferPool<float>.Shared.Rent(WorkspaceLength(g, imageLength, "staged image"));
            float[] panels = BufferPool<float>.Shared.Rent(WorkspaceLength(g, panelsLength, "weight-gradient panels"));
            int[] masks = BufferPool<int>.Shared.Rent(_taps * stride);
            int[] offsets = BufferPool<int>.Shared.Rent(_taps);
            try
            {
                TapOffsets(g, offsets);
                fixed (float* xRows = stagedX, panelsRaw = panels)
                fixed (int* maskBits = masks, tapOffsets = offsets)
                {
                    ClearGuardRows(Gemm.AlignTo64(xRows));
                    float* packedA = Gemm.AlignTo64(panelsRaw), packedB = Gemm.AlignTo64(packedA + (nint)rowPanels * Gemm.TileRows * depthMax);
                    int maskedImages = 0;
                    for (int group = start / columns; group * columns < end; group++)
                    {
                        // The group's dW', then its bias gradient; its column blocks in this run, and the channel
                        // blocks they read.
                        float* sum = partials + (nint)group * (ProductLength(g) + g.OutChannels), biasSum = sum + ProductLength(g);
                        int firstColumn = Math.Max(0, start - group * columns), endColumn = Math.Min(columns, end - group * columns);
                        int firstBlock = firstColumn / _taps, endBlock = (endColumn - 1) / _taps + 1;
                        // The bias gradient's channels in the same share as the columns, so that threads that split
                        // a group's columns split its sums too.
                        int firstSum = (int)((long)g.OutChannels * firstColumn / columns), endSum = (int)((long)g.OutChannels * endColumn / columns);
                        int firstImage = (int)((long)g.Batch * group / groups), endImage = (int)((long)g.Batch * (group + 1) / groups);
                        for (int n = firstImage; n < endImage; n += _chunkImages)
                        {
                            int count = Math.Min(_chunkImages, endImage - n), positions = count * plane;
                            if (count != maskedImages) BuildTapMasks(g, count * plane, stride, maskBits);
                            maskedImages = count;
                            // Image by image, so that dy is read in memory order (one channel over the images
                            // jumped a whole image ahead at each step, which the prefetcher did not follow).
                            for (int i = 0; i < count; i++)
                                for (int o = firstSum; o < endSum; o++)
                                {
                                    float channelSum = PlaneSum(dy + ((nint)(n + i) * g.OutChannels + o) * plane, plane);
                                    biasSum[o] = n + i > firstImage ? biasSum[o] + channelSum : channelSum;
                                }
                            StageChannelsLast(n, count, Gemm.AlignTo64(xRows), firstBlock, endBlock);
                            var operands = new ProductOperands(Gemm.AlignTo64(xRows), dy + (nint)n * g.OutChannels * plane, stride,
                                (float*)maskBits, tapOffsets, packedA, packedB);
                            AddProducts(operands, positions, depthMax, firstColumn, endColumn, sum, accumulate: n > firstImage);
                        }
                    }
                }
            }
            finally
            {
                BufferPool<float>.Shared.Return(stagedX);
                BufferPool<float>.Shared.Return(panels);
                BufferPool<int>.Shared.Return(masks);
                BufferPool<int>.Shared.Return(offsets);
            }
        }

        /// <summary>Σ of <paramref name="length"/> floats: one channel plane of dy, for the bias gradient. One loop
        /// rather than a TensorPrimitives.Sum, whose setup weighed as much as its 49 adds on the seed CNN's 7 × 7 planes.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        internal static float PlaneSum(float* plane, int length)
        {
            Vector<float> vectorSum = Vector<float>.Zero;
            float tailSum = 0;
            int j = 0;
            for (; j <= length - Vector<float>.Count; j += Vector<float>.Count) vectorSum += Vector.Load(plane + j);
            for (; j < length; j++) tailSum += plane[j];
            return Vector.Sum(vectorSum) + tailSum;
        }

        /// <summary>Clears what of the channels-last image stays zero: the guard rows before each channel block's
        /// first position, and the whole last block where its padding channels do not fill it (the staging writes the
        /// rest, and clears the rows past each chunk's last position).</summary>
        private void ClearGuardRows(float* blocked)
        {
            for (int b = 0; b < _channelBlocks; b++)
            {
                bool padded = g.InChannels - b * Gemm.TileCols < Gemm.TileCols;
                new Span<float>(blocked + (nint)b * BlockRows * Gemm.TileCols, (padded ? BlockRows : _reach) * Gemm.TileCols).Clear();
            }
        }

        /// <summary>Stages images [first, first + count) channels last in blocks of 32 channels (nChw32c), blocks
        /// [<paramref name="firstBlock"/>, <paramref name="endBlock"/>): block b row
        /// reach + q holds channels 32b … 32b + 31 of the chunk's position q. The rows past the last position are
        /// cleared, as a tap reaching past them must read zeros (finite) rather than an earlier chunk.</summary>
        private void StageChannelsLast(int first, int count, float* blocked, int firstBlock, int endBlock)
        {
            int plane = g.InPlane;
            float** rows = stackalloc float*[Gemm.TileCols];
            for (int b = firstBlock; b < endBlock; b++)
            {
                float* block = blocked + (nint)b * BlockRows * Gemm.TileCols;
                int channels = Math.Min(Gemm.TileCols, g.InChannels - b * Gemm.TileCols);
                for (int n = 0; n < count; n++)
                {
                    for (int c = 0; c < channels; c++) rows[c] = x + ((nint)(first + n) * g.InChannels + b * Gemm.TileCols + c) * plane;
                    TransposeIntoPanel(rows, channels, plane, block + (nint)(_reach + n * plane) * Gemm.TileCols, Gemm.TileCols);
                }
                new Span<float>(block + (nint)(_reach + count * plane) * Gemm.TileCols, _reach * Gemm.TileCols).Clear();
            }
        }

        /// <summary>Column blocks [<paramref name="firstColumn"/>, <paramref name="endColumn"/>) of dW' (+)= dy·Xᵀ over
        /// one staged chunk as a GEMM whose depth is the positions, with the product laid out (OutChannels, taps, channel
        /// blocks · 32): per depth block the A panels are dy's rows transposed (12 output channels each), and the B
        /// panel of tap t and channel block b is that block's channels-last rows read at tap t's offset, each row kept
        /// or zeroed by tap t's mask (the centre tap's rows are all kept, and read in place). One B panel meets every A
        /// panel while it stays in L1.</summary>
        private void AddProducts(ProductOperands operands, int positions, int depthMax, int firstColumn, int endColumn, float* product, bool accumulate)
        {
            int rowPanels = (g.OutChannels + Gemm.TileRows - 1) / Gemm.TileRows, productRow = _taps * _channelBlocks * Gemm.TileCols;
            float** rows = stackalloc float*[Gemm.TileRows];
            GemmKernelPath path = Gemm.BestPath;
            // Equal blocks: an image of 28 × 28 as 2 × 392 rather than 512 and 272.
            int block = Gemm.EqualParts(positions, 1, depthMax);
            for (int depthStart = 0; depthStart < positions; depthStart += block)
            {
                int depth = Math.Min(block, positions - depthStart);
                // dy's rows straight from NCHW, one image's stretch of the block at a time, all the panels' rows of
                // that image before the next, so that dy is read in memory order.
                for (int q = depthStart, end = depthStart + depth; q < end;)
                {
                    int image = q / g.InPlane, at = q - image * g.InPlane, stretch = Math.Min(end - q, g.InPlane - at);
                    for (int r = 0; r < rowPanels; r++)
                    {
                        int panelRows = Math.Min(Gemm.TileRows, g.OutChannels - r * Gemm.TileRows);
                        for (int i = 0; i < panelRows; i++) rows[i] = operands.Dy + ((nint)image * g.OutChannels + r * Gemm.TileRows + i) * g.InPlane + at;
                        TransposeIntoPanel(rows, panelRows, stretch, operands.PanelsA + (nint)r * Gemm.TileRows * depth + (q - depthStart) * Gemm.TileRows, Gemm.TileRows);
                    }
                    q += stretch;
                }
                bool loadC = accumulate || depthStart > 0;
                for (int column = firstColumn; column < endColumn; column++)
                {
                    int b = column / _taps, t = column - b * _taps;
                    float* source = operands.X + ((nint)b * BlockRows + _reach + depthStart + operands.Offsets[t]) * Gemm.TileCols;
                    bool centre = t / g.Cols.Kernel == g.Rows.PadBefore && t % g.Cols.Kernel == g.Cols.PadBefore;
                    float* panelB = centre ? source : operands.PanelB;
                    if (!centre) CopyMaskedRows(source, operands.Masks + (nint)t * operands.Stride + depthStart, depth, panelB);
                    float* c = product + (t * _channelBlocks + b) * Gemm.TileCols;
                    for (int r = 0; r < rowPanels; r++)
                        Gemm.Tile(path, Math.Min(Gemm.TileRows, g.OutChannels - r * Gemm.TileRows), depth,
                            operands.PanelsA + (nint)r * Gemm.TileRows * depth, panelB, c + (nint)r * Gemm.TileRows * productRow, productRow, loadC);
                }
            }
        }

        /// <summary>panel row p = source row p (32 floats) where mask[p] is set, else zeros.</summary>
        private static void CopyMaskedRows(float* source, float* mask, int depth, float* panel)
        {
            if (Vector512.IsHardwareAccelerated) CopyMaskedRows<Simd512<float>>(source, mask, depth, panel);
            else if (Vector256.IsHardwareAccelerated) CopyMaskedRows<Simd256<float>>(source, mask, depth, panel);
            else CopyMaskedRows<Simd128<float>>(source, mask, depth, panel);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void CopyMaskedRows<TVector>(float* source, float* mask, int depth, float* panel)
            where TVector : struct, ISimdVector<TVector, float>
        {
            for (int p = 0; p < depth; p++, source += Gemm.TileCols, panel += Gemm.TileCols)
            {
                TVector keep = TVector.Create(mask[p]);
                for (int lane = 0; lane < Gemm.TileCols; lane += TVector.Count)
                    TVector.ConditionalSelect(keep, TVector.LoadUnsafe(in source[lane], 0), TVector.Zero).StoreUnsafe(ref panel[lane], 0);
            }
        }

        /// <summary>dW[o, c, t] = dW'[o, t, c] for one output channel o: its row of the GEMM's product (taps, channel
        /// blocks · 32) into its row of the weight (InChannels, taps).</summary>
        public static void StoreProduct(ConvGeometry g, ReadOnlySpan<float> product, Span<float> weight)
        {
            int taps = g.Rows.Kernel * g.Cols.Kernel, blocked = (g.InChannels + Gemm.TileCols - 1) / Gemm.TileCols * Gemm.TileCols;
            for (int t = 0; t < taps; t++)
            {
                ReadOnlySpan<float> channels = product.Slice(t * blocked, g.InChannels);
                Span<float> target = weight[t..];
                for (int c = 0; c < channels.Length; c++) target[c * taps] = channels[c];
            }
        }
    }

    /// <summary>The operands of the weight pass's implicit GEMM over one staged chunk: the channels-last image (its
    /// channel blocks, guard rows included), dy from the chunk's first image on (NCHW, as the caller holds it), the tap
    /// masks (<see cref="Stride"/> apart), the tap offsets, and this thread's buffers for the A panels and one B panel.</summary>
    private readonly unsafe struct ProductOperands(float* x, float* dy, int stride, float* masks, int* offsets, float* panelsA, float* panelB)
    {
        public readonly float* X = x, Dy = dy, Masks = masks, PanelsA = panelsA, PanelB = panelB;
        public readonly int Stride = stride;
        public readonly int* Offsets = offsets;
    }

    /// <summary>Packs row panels [start, end) of a convolution's weight, rows × (channels · taps) with patch row
    /// p = t·channels + c (tap-major, so that <see cref="ShiftedTile"/> keeps one tap's masks in registers over its
    /// channels), followed by the bias as patch row channels · taps when <paramref name="depth"/> has room for it,
    /// as the GEMM packs op(A): per depth block of at most <paramref name="depthMax"/>, panels of 12 rows, k-major
    /// (element (r, p) at p·12 + r mod 12); rows past the last are left unset (the tile for a short panel does not
    /// read them). The weight is W[r, c, t] at weight[(r·channels + c)·taps + t], or, <paramref name="turned"/>, the
    /// input gradient's W'[r, c, t] = W[c, r, taps − 1 − t] read from the forward's W (channels × rows × taps).</summary>
    private readonly unsafe struct WeightPanels(float* weight, float* bias, int rows, int channels, int taps, bool turned,
        int depth, int depthMax, float* panels) : IChunkBody
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            int patch = channels * taps, rowPanels = (rows + Gemm.TileRows - 1) / Gemm.TileRows;
            // Where W[r, c, t] lies: r·rowStep + c·channelStep + t (or taps − 1 − t, turned).
            nint rowStep = turned ? taps : patch, channelStep = turned ? (nint)rows * taps : taps;
            for (int blockStart = 0; blockStart < depth; blockStart += depthMax)
            {
                int block = Math.Min(depthMax, depth - blockStart), blockEnd = blockStart + block, patchEnd = Math.Min(blockEnd, patch);
                for (int panel = start; panel < end; panel++)
                {
                    // Step p of the panel is its rows' 12 values, written one after another.
                    int firstRow = panel * Gemm.TileRows, panelRows = Math.Min(Gemm.TileRows, rows - firstRow);
                    float* target = panels + (nint)blockStart * rowPanels * Gemm.TileRows + (nint)panel * Gemm.TileRows * block;
                    float* rowsStart = weight + firstRow * rowStep;
                    int t = blockStart / channels, c = blockStart - t * channels;
                    for (int p = blockStart; p < patchEnd; p++, target += Gemm.TileRows)
                    {
                        float* source = rowsStart + c * channelStep + (turned ? taps - 1 - t : t);
                        for (int i = 0; i < panelRows; i++) target[i] = source[i * rowStep];
                        if (++c == channels) { c = 0; t++; }
                    }
                    if (patchEnd < blockEnd)
                        for (int i = 0; i < panelRows; i++) target[i] = bias[firstRow + i];
                }
            }
        }
    }

    /// <summary>How far a tap's read reaches before or after the position it serves: the largest |offset|, the room
    /// kept either side of the staged images.</summary>
    private static int TapReach(ConvGeometry g) =>
        Math.Max(g.Rows.PadBefore, g.Rows.Kernel - 1 - g.Rows.PadBefore) * g.Cols.Input
        + Math.Max(g.Cols.PadBefore, g.Cols.Kernel - 1 - g.Cols.PadBefore);

    /// <summary>offsets[t] = (i − padTop)·W + (j − padLeft) for tap t = (i, j): where tap t of a position reads,
    /// relative to the position, in a shifted plane.</summary>
    private static void TapOffsets(ConvGeometry g, Span<int> offsets)
    {
        for (int t = 0; t < g.Rows.Kernel * g.Cols.Kernel; t++)
            offsets[t] = (t / g.Cols.Kernel - g.Rows.PadBefore) * g.Cols.Input + t % g.Cols.Kernel - g.Cols.PadBefore;
    }

    /// <summary>masks[t·stride + j] = all ones where tap t of position j (of images end to end) reads inside its
    /// image, else zero, for j &lt; <paramref name="positions"/>, and zero from there to <paramref name="stride"/>
    /// (where a last tile or vector reaches). A tap reads inside when both its row and its column do.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void BuildTapMasks(ConvGeometry g, int positions, int stride, int* masks)
    {
        int width = g.Cols.Input, height = g.Rows.Input;
        for (int t = 0; t < g.Rows.Kernel * g.Cols.Kernel; t++)
        {
            int rowShift = t / g.Cols.Kernel - g.Rows.PadBefore, columnShift = t % g.Cols.Kernel - g.Cols.PadBefore;
            int* mask = masks + (nint)t * stride;
            for (int j = 0, row = 0, column = 0; j < positions; j++)
            {
                mask[j] = (uint)(row + rowShift) < (uint)height && (uint)(column + columnShift) < (uint)width ? -1 : 0;
                if (++column == width)
                {
                    column = 0;
                    if (++row == height) row = 0;
                }
            }
            new Span<int>(mask + positions, stride - positions).Clear();
        }
    }

    /// <summary>The implicit forward over tiles [start, end) of the batch's positions, <see cref="ImplicitChunkTiles"/>
    /// at a time, each thread with its own staging, panel and mask buffers.</summary>
    private readonly unsafe struct ImplicitForwardTiles(ConvGeometry g, float* x, float* y, float* weightPanels, int k, int depthMax) : IChunkBody
    {
        private readonly int _taps = g.Rows.Kernel * g.Cols.Kernel, _guard = TapReach(g);

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            // A staged channel row holds the chunk's positions with the tap reach either side. The masks depend on a
            // position's place in its image only, so they are built once, for an image and a chunk from its start,
            // and a chunk reads them from its first position's place on.
            int chunkLength = Math.Min(ImplicitChunkTiles, end - start) * Gemm.TileCols, rowStride = _guard + chunkLength + _guard;
            int rowPanels = (g.OutChannels + Gemm.TileRows - 1) / Gemm.TileRows, maskStride = g.InPlane + chunkLength;
            float[] staged = BufferPool<float>.Shared.Rent(g.InChannels * rowStride);
            float[] panel = BufferPool<float>.Shared.Rent(Gemm.TileCols * depthMax + Gemm.AlignmentSlack);
            float[] column = BufferPool<float>.Shared.Rent(rowPanels * Gemm.TileRows * Gemm.TileCols + Gemm.AlignmentSlack);
            int[] masks = BufferPool<int>.Shared.Rent(WorkspaceLength(g, (long)_taps * maskStride, "tap masks"));
            int[] offsets = BufferPool<int>.Shared.Rent(_taps);
            try
            {
                TapOffsets(g, offsets);
                fixed (float* stagedRaw = staged, panelRaw = panel, columnRaw = column)
                fixed (int* maskBits = masks, tapOffsets = offsets)
                {
                    BuildTapMasks(g, maskStride, maskStride, maskBits);
                    long total = (long)g.Batch * g.InPlane;
                    for (int tile = start; tile < end; tile += ImplicitChunkTiles)
                    {
                        long first = (long)tile * Gemm.TileCols;
                        int count = (int)Math.Min((long)Math.Min(ImplicitChunkTiles, end - tile) * Gemm.TileCols, total - first);
                        var buffers = new ImplicitBuffers(stagedRaw + _guard, rowStride, Gemm.AlignTo64(panelRaw), Gemm.AlignTo64(columnRaw),
                            (float*)maskBits + first % g.InPlane, maskStride, tapOffsets);
                        StageWindow(first, count, buffers);
                        RunChunk(first, count, buffers);
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

        /// <summary>Copies channel c of the batch's positions [first − reach, first + count + reach) into staged row c,
        /// an image's stretch of every channel at a time, so that the image is read in memory order (channel by channel
        /// over the images it jumped a whole image ahead at each step; same-process A/B on the seed CNN's conv3 input
        /// gradient, under load: 1.00–1.01×); positions outside the batch read as zeros (a tap reads them only where its
        /// mask is clear, but they must be finite).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void StageWindow(long first, int count, ImplicitBuffers buffers)
        {
            int plane = g.InPlane;
            long total = (long)g.Batch * plane, from = first - _guard, to = first + count + _guard;
            for (long q = from; q < to;)
            {
                if (q < 0 || q >= total)
                {
                    long stop = q < 0 ? Math.Min(0, to) : to;
                    for (int c = 0; c < g.InChannels; c++) new Span<float>(buffers.Staged - _guard + (nint)c * buffers.RowStride + (q - from), (int)(stop - q)).Clear();
                    q = stop;
                    continue;
                }
                // One image's stretch of every channel, which lie one after another in memory.
                long image = q / plane;
                int at = (int)(q - image * plane), stretch = (int)Math.Min(to - q, plane - at);
                float* source = x + image * g.InChannels * plane + at, target = buffers.Staged - _guard + (q - from);
                for (int c = 0; c < g.InChannels; c++) CopyShort(source + (nint)c * plane, target + (nint)c * buffers.RowStride, stretch);
                q += stretch;
            }
        }

        /// <summary>The output tiles of one staged chunk: positions [first, first + count).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void RunChunk(long first, int count, ImplicitBuffers buffers)
        {
            int plane = g.InPlane, rowPanels = (g.OutChannels + Gemm.TileRows - 1) / Gemm.TileRows;
            GemmKernelPath path = Gemm.BestPath;
            bool shifted = RunsShiftedTile(g);
            for (int j0 = 0; j0 < count; j0 += Gemm.TileCols)
            {
                long position = first + j0, image = position / plane;
                int columns = Math.Min(Gemm.TileCols, count - j0), at = (int)(position - image * plane);
                // A full tile inside one image is written in place; the others (the batch's last, and those that
                // straddle two images) go through a column of scratch tiles, moved out once after all depth blocks.
                bool inPlace = columns == Gemm.TileCols && at + Gemm.TileCols <= plane;
                float* c0 = inPlace ? y + image * g.OutChannels * plane + at : buffers.Column;
                nint ldc = inPlace ? plane : Gemm.TileCols;
                for (int depthStart = 0; depthStart < k; depthStart += depthMax)
                {
                    int depth = Math.Min(depthMax, k - depthStart);
                    float* blockPanels = weightPanels + (nint)depthStart * rowPanels * Gemm.TileRows;
                    if (shifted)
                    {
                        for (int r = 0; r < rowPanels; r++)
                            ShiftedTile(Math.Min(Gemm.TileRows, g.OutChannels - r * Gemm.TileRows), depthStart, depth, g.InChannels, g.PatchSize,
                                blockPanels + (nint)r * Gemm.TileRows * depth, buffers.Staged + j0, buffers.RowStride, buffers.Offsets,
                                buffers.Masks + j0, buffers.MaskStride, c0 + r * Gemm.TileRows * ldc, ldc, loadC: depthStart > 0);
                        continue;
                    }
                    // ShiftedTile is written for 512-bit vectors and 4, 8 or 12 rows; elsewhere the B panel is packed.
                    PackImagePanel(buffers, j0, depthStart, depth);
                    for (int r = 0; r < rowPanels; r++)
                        Gemm.Tile(path, Math.Min(Gemm.TileRows, g.OutChannels - r * Gemm.TileRows), depth,
                            blockPanels + (nint)r * Gemm.TileRows * depth, buffers.Panel, c0 + r * Gemm.TileRows * ldc, ldc, loadC: depthStart > 0);
                }
                if (!inPlace) MoveColumnOut(position, columns, buffers.Column);
            }
        }

        /// <summary>Packs the B panel of chunk positions [j0, j0 + 32) for patch rows [depthStart, depthStart + depth):
        /// row p = t·channels + c is staged channel row c read at tap t's offset, under tap t's mask; the row after the
        /// patch (the bias's) is ones.</summary>
        private void PackImagePanel(ImplicitBuffers buffers, int j0, int depthStart, int depth)
        {
            if (Vector512.IsHardwareAccelerated) PackImagePanel<Simd512<float>>(buffers, j0, depthStart, depth);
            else if (Vector256.IsHardwareAccelerated) PackImagePanel<Simd256<float>>(buffers, j0, depthStart, depth);
            else PackImagePanel<Simd128<float>>(buffers, j0, depthStart, depth);
        }

        /// <summary>Tap by tap, so that each vector of the tap's mask is loaded once and serves every channel: the inner
        /// loop is a load, a select and a store per vector.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void PackImagePanel<TVector>(ImplicitBuffers buffers, int j0, int depthStart, int depth)
            where TVector : struct, ISimdVector<TVector, float>
        {
            int end = depthStart + depth, taps = _taps, channels = g.InChannels;
            nint rowStride = buffers.RowStride, panelStep = Gemm.TileCols;
            for (int t = 0; t < taps; t++)
            {
                // The block's rows of tap t: channels whose row t·channels + c lies in [depthStart, end).
                int firstChannel = Math.Max(0, depthStart - t * channels), endChannel = Math.Min(channels, end - t * channels);
                if (firstChannel >= endChannel) continue;
                float* source = buffers.Staged + firstChannel * rowStride + j0 + buffers.Offsets[t];
                float* mask = buffers.Masks + (nint)t * buffers.MaskStride + j0;
                float* target = buffers.Panel + ((nint)t * channels + firstChannel - depthStart) * Gemm.TileCols;
                for (int lane = 0; lane < Gemm.TileCols; lane += TVector.Count)
                {
                    TVector keep = TVector.LoadUnsafe(in mask[lane], 0);
                    float* from = source + lane, to = target + lane;
                    for (int c = firstChannel; c < endChannel; c++, from += rowStride, to += panelStep)
                        TVector.ConditionalSelect(keep, TVector.LoadUnsafe(in *from, 0), TVector.Zero).StoreUnsafe(ref *to, 0);
                }
            }
            if (end <= g.PatchSize) return;
            float* ones = buffers.Panel + (nint)(g.PatchSize - depthStart) * Gemm.TileCols;
            for (int lane = 0; lane < Gemm.TileCols; lane += TVector.Count) TVector.Create(1f).StoreUnsafe(ref ones[lane], 0);
        }

        /// <summary>Moves every output channel × positions [position, position + columns) from the scratch column (row
        /// stride 32) into the NCHW output, one image's stretch at a time.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void MoveColumnOut(long position, int columns, float* scratch)
        {
            int plane = g.InPlane;
            for (long q = position, end = position + columns; q < end;)
            {
                long image = q / plane;
                int at = (int)(q - image * plane), stretch = (int)Math.Min(end - q, plane - at);
                float* inOutput = y + image * g.OutChannels * plane + at;
                for (int o = 0; o < g.OutChannels; o++)
                    CopyShort(scratch + o * Gemm.TileCols + (q - position), inOutput + (nint)o * plane, stretch);
                q += stretch;
            }
        }
    }


    /// <summary>destination[i] = source[i] for i &lt; <paramref name="count"/> (not overlapping), for the implicit
    /// forward's short runs: a tile's stretch of at most 32 outputs in one image, an image's plane staged. Whole
    /// vectors, the last one overlapping the one before, where Span.CopyTo's call and checks weighed as much as the
    /// copy (5 % of the seed CNN's conv3 forward went into such copies).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void CopyShort(float* source, float* destination, int count)
    {
        if (Vector512.IsHardwareAccelerated && count >= Vector512<float>.Count) CopyShort<Simd512<float>>(source, destination, count);
        else if (Vector256.IsHardwareAccelerated && count >= Vector256<float>.Count) CopyShort<Simd256<float>>(source, destination, count);
        else if (Vector128.IsHardwareAccelerated && count >= Vector128<float>.Count) CopyShort<Simd128<float>>(source, destination, count);
        else for (int i = 0; i < count; i++) destination[i] = source[i];
    }

    /// <summary><see cref="CopyShort(float*, float*, int)"/> for a count of at least one vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void CopyShort<TVector>(float* source, float* destination, int count)
        where TVector : struct, ISimdVector<TVector, float>
    {
        int i = 0;
        for (; i <= count - TVector.Count; i += TVector.Count) TVector.LoadUnsafe(in source[i], 0).StoreUnsafe(ref destination[i], 0);
        if (i < count) TVector.LoadUnsafe(in source[count - TVector.Count], 0).StoreUnsafe(ref destination[count - TVector.Count], 0);
    }

    /// <summary>panel[p·width + i] = rows[i][p] for i &lt; <paramref name="count"/>, p &lt; <paramref name="depth"/>: rows
    /// made k-major for the register tile (or channels last), eight rows × eight positions at a time where
    /// <see cref="BlockTranspose.EightByEight"/>, the positions left over and the rows left over four × four. (Short
    /// rows, such as the Winograd staging's 14 positions, would otherwise leave most of them to scalar copies:
    /// measured 14 % slower on conv2's input gradient.)</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void TransposeIntoPanel(float** rows, int count, int depth, float* panel, int width)
    {
        int i = 0;
        if (BlockTranspose.EightByEight)
            for (; i + 8 <= count; i += 8)
            {
                float** r = rows + i;
                int p = 0;
                for (; p + 8 <= depth; p += 8)
                    BlockTranspose.Store8x8(Vector256.Load(r[0] + p), Vector256.Load(r[1] + p), Vector256.Load(r[2] + p), Vector256.Load(r[3] + p),
                        Vector256.Load(r[4] + p), Vector256.Load(r[5] + p), Vector256.Load(r[6] + p), Vector256.Load(r[7] + p), panel + (nint)p * width + i, width);
                TransposeFourRows(r, p, depth, panel + i, width);
                TransposeFourRows(r + 4, p, depth, panel + i + 4, width);
            }
        for (; i + 4 <= count; i += 4) TransposeFourRows(rows + i, 0, depth, panel + i, width);
        for (; i < count; i++)
            for (int p = 0; p < depth; p++) panel[(nint)p * width + i] = rows[i][p];
    }

    /// <summary>panel[p·width + u] = rows[u][p] for u &lt; 4 and p in [<paramref name="from"/>, <paramref name="depth"/>),
    /// four positions at a time where <see cref="BlockTranspose.FourByFour"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void TransposeFourRows(float** rows, int from, int depth, float* panel, int width)
    {
        float* s0 = rows[0], s1 = rows[1], s2 = rows[2], s3 = rows[3];
        int p = from;
        if (BlockTranspose.FourByFour)
            for (; p + 4 <= depth; p += 4)
                BlockTranspose.Store4x4(Vector128.Load(s0 + p), Vector128.Load(s1 + p), Vector128.Load(s2 + p), Vector128.Load(s3 + p),
                    panel + (nint)p * width, width);
        for (; p < depth; p++)
            for (int u = 0; u < 4; u++) panel[(nint)p * width + u] = rows[u][p];
    }

    /// <summary>One thread's buffers for the implicit forward: the staged channel rows (at the chunk's first position,
    /// <see cref="RowStride"/> apart, with room for the tap offsets either side), the B panel, the scratch column of
    /// tiles, the tap masks (one row of <see cref="MaskStride"/> per tap, from the chunk's first position's place in
    /// its image on) and the tap offsets.</summary>
    private readonly unsafe struct ImplicitBuffers(float* staged, int rowStride, float* panel, float* column, float* masks, int maskStride, int* offsets)
    {
        public readonly float* Staged = staged, Panel = panel, Column = column, Masks = masks;
        public readonly int RowStride = rowStride, MaskStride = maskStride;
        public readonly int* Offsets = offsets;
    }
}
