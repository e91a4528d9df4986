using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace NormSharp.Kernels;

// Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural Networks",
// §4.1, eq. 8): each 2×2 block of outputs is Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A from the 4×4 input tile d under it (tiles
// step by 2 over the padded image) and the 3×3 filter g. Summed over input channels, the 16 element-wise products
// become 16 independent GEMMs M_ξ = U_ξ · V_ξ (eq. 12), U_ξ (OutChannels × InChannels) the transformed weights and
// V_ξ (InChannels × tiles) the transformed tiles: 16 multiply-adds per 4 outputs and channel pair instead of 36,
// 2.25× fewer. The tiles of a few images share each GEMM, so that it is wide enough for the register tiles.
internal static partial class Convolution
{
    /// <summary>Both channel counts must reach this for the 16 GEMMs to be deep and tall enough to beat the direct
    /// implicit GEMM, whose work the transforms would otherwise outweigh (a first layer on one channel keeps it).</summary>
    private const int WinogradMinChannels = 16;

    /// <summary>Images join one group until its GEMMs are about this many tiles wide (8 column panels of 32): the
    /// GEMMs are only InChannels deep, so each panel's packing and tile stores weigh much; wider groups mean fewer
    /// panels cut short at the group's end.</summary>
    private const int WinogradGroupTiles = 256;

    /// <summary>...and while the group's 16 products (16 · OutChannels · tiles floats) stay within this many floats
    /// (1 MiB, the L2): the output transform reads all 16 for each output, and from L3 it ran a third slower.</summary>
    private const int WinogradProductBudget = 1 << 18;

    /// <summary>Whether a convolution has Winograd F(2×2, 3×3)'s shape: float32, a 3×3 kernel at unit stride and
    /// dilation, any padding, on at least <see cref="WinogradMinChannels"/> input and output channels.</summary>
    internal static bool HasWinogradShape<T>(ConvGeometry g) =>
        typeof(T) == typeof(float) && g.InChannels >= WinogradMinChannels && g.OutChannels >= WinogradMinChannels
        && IsWinogradAxis(g.Rows) && IsWinogradAxis(g.Cols);

    /// <summary>Whether the forward runs as Winograd: whenever the shape fits. Measured (same-process A/B against the
    /// implicit GEMM, alternating rounds, medians of process CPU time, batch 128, 1 and 2 threads, under heavy load): at
    /// 512 bits the seed CNN's conv2 (14×14) 1.05–1.08×, and conv3 (7×7, whose 4 × 4 tiles compute 64 outputs for 49)
    /// 1.16× on 1 thread and 1.09–1.10× on 2 once the weights are transformed straight into their packed panels in
    /// parallel (5.15–5.17 → 4.44 ms and 5.53–5.67 → 5.01–5.19 ms; before that 0.96–1.07×); at 256 bits 1.10–1.52×.</summary>
    internal static bool RunsWinograd<T>(ConvGeometry g) => HasWinogradShape<T>(g);

    private static bool IsWinogradAxis(WindowAxis axis) =>
        axis.Kernel == 3 && axis.Stride == 1 && axis.Dilation == 1 && axis.Output >= 1;

    /// <summary>The tiles of one image and the images of one group, from the geometry alone (never the thread count),
    /// so the result is the same bits on any number of threads.</summary>
    private readonly record struct WinogradLayout(ConvGeometry G, int VectorWidth)
    {
        public int TileRows => (G.Rows.Output + 1) / 2;
        public int TileCols => (G.Cols.Output + 1) / 2;
        public int TilesPerImage => TileRows * TileCols;
        public int ImagesPerGroup => Math.Clamp(Math.Min(WinogradGroupTiles / TilesPerImage,
            WinogradProductBudget / (16 * G.OutChannels * TilesPerImage)), 1, G.Batch);
        public int GroupTiles => ImagesPerGroup * TilesPerImage;

        /// <summary>The staged image is channels-last with this many channels (InChannels rounded up to whole vectors,
        /// the extra ones zero), so the input transform runs on whole vectors.</summary>
        public int StagedChannels => (G.InChannels + VectorWidth - 1) / VectorWidth * VectorWidth;

        /// <summary>Staged rows and columns: the padding before, the image, and zeros up to the last tile's end.</summary>
        public int StagedRows => 2 * TileRows + 2;
        public int StagedCols => 2 * TileCols + 2;

        /// <summary>Column panels of <see cref="Gemm.TileCols"/> tiles in a group's GEMMs.</summary>
        public int ColumnPanels => (GroupTiles + Gemm.TileCols - 1) / Gemm.TileCols;

        /// <summary>Row stride of a product M_ξ: the group's tiles rounded up to whole column panels (a whole number of
        /// vectors), so the register tile and the output transform run on whole panels and vectors (the columns past
        /// the tiles are computed and dropped).</summary>
        public int ProductStride => ColumnPanels * Gemm.TileCols;

        /// <summary>Floats in one U_ξ packed for the register tile: panels of 12 output channels, k-major.</summary>
        public int PackedWeightLength => (G.OutChannels + Gemm.TileRows - 1) / Gemm.TileRows * Gemm.TileRows * G.InChannels;
    }

    /// <summary>y = W ⋆ x + b by Winograd F(2×2, 3×3) (see the file's comment) at the widest vectors it runs with;
    /// an empty bias means none. <paramref name="turnedWeight"/>: the weight is the input gradient's, read turned from
    /// the forward's (see <see cref="WinogradWeights"/>).</summary>
    internal static void ForwardWinograd(ConvGeometry g, ArraySegment<float> input, ArraySegment<float> weight,
        ArraySegment<float> bias, ArraySegment<float> output, bool turnedWeight = false)
    {
        if (Vector512.IsHardwareAccelerated) ForwardWinograd<Simd512<float>>(g, input, weight, bias, output, turnedWeight);
        else if (Vector256.IsHardwareAccelerated) ForwardWinograd<Simd256<float>>(g, input, weight, bias, output, turnedWeight);
        else ForwardWinograd<Simd128<float>>(g, input, weight, bias, output, turnedWeight);
    }

    internal static unsafe void ForwardWinograd<TVec>(ConvGeometry g, ArraySegment<float> input, ArraySegment<float> weight,
        ArraySegment<float> bias, ArraySegment<float> output, bool turnedWeight = false)
        where TVec : struct, ISimdVector<TVec, float>
    {
        if (g.Batch == 0) return;
        var layout = new WinogradLayout(g, TVec.Count);
        int packedLength = layout.PackedWeightLength, rowPanels = (g.OutChannels + Gemm.TileRows - 1) / Gemm.TileRows;
        float[] transformed = BufferPool<float>.Shared.Rent(16 * packedLength + Gemm.AlignmentSlack);
        int groups = (g.Batch + layout.ImagesPerGroup - 1) / layout.ImagesPerGroup;
        try
        {
            fixed (float* x = input.AsSpan(), w = weight.AsSpan(), raw = transformed, b = bias.AsSpan(), y = output.AsSpan())
            {
                float* packed = Gemm.AlignTo64(raw);
                Parallelism.For(rowPanels, new WinogradWeights(w, turnedWeight, g.OutChannels, g.InChannels, packedLength, packed),
                    workPerItem: 16L * Gemm.TileRows * g.InChannels);
                Parallelism.For(groups, new WinogradGroups<TVec>(layout, x, packed, bias.Count > 0 ? b : null, y),
                    workPerItem: g.MultiplyAddsPerImage * layout.ImagesPerGroup / 64);
            }
        }
        finally
        {
            BufferPool<float>.Shared.Return(transformed);
        }
    }

    /// <summary>The convolution that computes <paramref name="g"/>'s input gradient: dy (Batch, OutChannels, Hout, Wout)
    /// convolved with the weights turned 180° and their channel axes swapped, padded by 2 − PadBefore, gives dx
    /// (Batch, InChannels, H, W); null when the padding exceeds 2 (the gradient would need negative padding).</summary>
    internal static ConvGeometry? InputGradientGeometry(ConvGeometry g) =>
        g.Rows.PadBefore > 2 || g.Cols.PadBefore > 2 ? null
        : new ConvGeometry(g.Batch, g.OutChannels, g.InChannels, Transposed(g.Rows), Transposed(g.Cols));

    private static WindowAxis Transposed(WindowAxis axis) => new(axis.Output, axis.Input, 3, 1, 2 - axis.PadBefore, 1);

    /// <summary>Whether the input gradient runs as Winograd: its convolution (<see cref="InputGradientGeometry"/>) has
    /// the shape, which needs the forward's shape too (a 3×3 kernel at unit stride and dilation), and where vectors are
    /// 512 bits wide the tiles cover its output exactly (even rows and columns). Measured as for
    /// <see cref="RunsWinograd{T}"/>: at 512 bits conv2's 1.03–1.14×, but conv3's (7×7, the 16 GEMMs 64 output channels
    /// tall) 1.00× on 1 thread and 0.90× on 2 even with the weights packed in parallel, where the implicit GEMM stays;
    /// at 256 bits 1.10× and more.</summary>
    internal static bool InputGradientRunsWinograd<T>(ConvGeometry g) =>
        HasWinogradShape<T>(g) && InputGradientGeometry(g) is { } transposed && HasWinogradShape<T>(transposed)
        && (!Vector512.IsHardwareAccelerated || transposed.Rows.Output % 2 == 0 && transposed.Cols.Output % 2 == 0);

    /// <summary>dx = dy ⋆ rot180(W)ᵀ + b by Winograd (see <see cref="InputGradientGeometry"/>); b, one value per input
    /// channel, is a transposed convolution's bias, and an empty one means none.</summary>
    internal static void BackwardDataWinograd(ConvGeometry g, ArraySegment<float> gradOutput, ArraySegment<float> weight,
        ArraySegment<float> bias, ArraySegment<float> gradInput) =>
        ForwardWinograd(InputGradientGeometry(g)!.Value, gradOutput, weight, bias, gradInput, turnedWeight: true);

    /// <summary>U_ξ[o, i] = (G g Gᵀ)_ξ for each filter g = W[o, i] (eq. 8's G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]),
    /// written straight into the 16 U_ξ packed as the GEMM packs op(A) (at ξ · PackedWeightLength, panels of 12 output
    /// channels, k-major: U_ξ[o, i] at (o / 12) · 12 · InChannels + i · 12 + o mod 12; rows past the last are left
    /// unset, the tile for a short panel does not read them), row panels [start, end). <paramref name="turned"/>: g is
    /// the input gradient's W'[o, i] = W[i, o] turned 180°, read from the forward's W (InChannels × OutChannels × 9).
    /// Once per call, the panels in parallel: the weights change every training step.</summary>
    private readonly unsafe struct WinogradWeights(float* weight, bool turned, int outChannels, int inChannels,
        int packedLength, float* packed) : IChunkBody
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            float* rows = stackalloc float[12];
            for (int panel = start; panel < end; panel++)
            {
                int firstRow = panel * Gemm.TileRows, panelRows = Math.Min(Gemm.TileRows, outChannels - firstRow);
                for (int i = 0; i < inChannels; i++)
                {
                    float* target = packed + ((long)panel * inChannels + i) * Gemm.TileRows;
                    for (int r = 0; r < panelRows; r++)
                    {
                        int o = firstRow + r;
                        float* filter = weight + (turned ? (long)i * outChannels + o : (long)o * inChannels + i) * 9;
                        // Gg: four rows of three.
                        for (int c = 0; c < 3; c++)
                        {
                            float g0 = Tap(filter, c), g1 = Tap(filter, 3 + c), g2 = Tap(filter, 6 + c);
                            rows[c] = g0;
                            rows[3 + c] = 0.5f * (g0 + g1 + g2);
                            rows[6 + c] = 0.5f * (g0 - g1 + g2);
                            rows[9 + c] = g2;
                        }
                        // (Gg)Gᵀ: each row to four columns.
                        for (int row = 0; row < 4; row++)
                        {
                            float g0 = rows[3 * row], g1 = rows[3 * row + 1], g2 = rows[3 * row + 2];
                            target[(4 * row) * packedLength + r] = g0;
                            target[(4 * row + 1) * packedLength + r] = 0.5f * (g0 + g1 + g2);
                            target[(4 * row + 2) * packedLength + r] = 0.5f * (g0 - g1 + g2);
                            target[(4 * row + 3) * packedLength + r] = g2;
                        }
                    }
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private float Tap(float* filter, int tap) => filter[turned ? 8 - tap : tap];
    }

    /// <summary>Groups of images [start, end) for <see cref="ForwardWinograd{TVec}"/>, each thread with its own
    /// staging, transformed-tile and product buffers.</summary>
    private readonly unsafe struct WinogradGroups<TVec>(WinogradLayout layout, float* x, float* u, float* bias, float* y) : IChunkBody
        where TVec : struct, ISimdVector<TVec, float>
    {
        public void Run(int start, int end)
        {
            ConvGeometry g = layout.G;
            int staged = layout.StagedRows * layout.StagedCols * layout.StagedChannels;
            int tilesLength = 16 * layout.GroupTiles * layout.StagedChannels;
            int productsLength = 16 * g.OutChannels * layout.ProductStride, panelLength = Gemm.TileCols * g.InChannels;
            float[] buffer = BufferPool<float>.Shared.Rent(staged + tilesLength + productsLength + panelLength + 4 * Gemm.AlignmentSlack);
            try
            {
                fixed (float* raw = buffer)
                {
                    float* stage = Gemm.AlignTo64(raw);
                    float* tiles = Gemm.AlignTo64(stage + staged);
                    float* products = Gemm.AlignTo64(tiles + tilesLength);
                    float* panel = Gemm.AlignTo64(products + productsLength);
                    int* placements = stackalloc int[layout.GroupTiles];
                    TilePlacements(placements);
                    for (int group = start; group < end; group++) RunGroup(group, stage, tiles, panel, products, placements);
                }
            }
            finally
            {
                BufferPool<float>.Shared.Return(buffer);
            }
        }

        private void RunGroup(int group, float* stage, float* tiles, float* panel, float* products, int* placements)
        {
            ConvGeometry g = layout.G;
            int first = group * layout.ImagesPerGroup, count = Math.Min(layout.ImagesPerGroup, g.Batch - first);
            int groupTiles = count * layout.TilesPerImage, channels = layout.StagedChannels;
            int tileStride = layout.GroupTiles * channels;
            for (int i = 0; i < count; i++)
            {
                StageImage(x + (long)(first + i) * g.InChannels * g.InPlane, stage);
                TransformInputTiles(stage, tiles + i * layout.TilesPerImage * channels, tileStride);
            }
            MultiplyTiles(groupTiles, tiles, panel, products);
            TransformOutputTiles(products, groupTiles, placements, y + (long)first * g.OutChannels * g.OutPlane);
        }

        /// <summary>M_ξ = U_ξ · V_ξ for the 16 ξ, straight on the register tile: the weights come packed, and each panel
        /// of 32 transformed tiles is packed (k-major) once and multiplied by every row panel of U_ξ while it stays in L1.
        /// Each product is one multiply-add chain over the InChannels, whatever the thread count.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void MultiplyTiles(int groupTiles, float* tiles, float* panel, float* products)
        {
            ConvGeometry g = layout.G;
            int depth = g.InChannels, channels = layout.StagedChannels, tileStride = layout.GroupTiles * channels;
            int stride = layout.ProductStride, packedLength = layout.PackedWeightLength;
            GemmKernelPath path = Gemm.BestPath;
            float** rows = stackalloc float*[Gemm.TileCols];
            for (int xi = 0; xi < 16; xi++)
                for (int j = 0; j < (groupTiles + Gemm.TileCols - 1) / Gemm.TileCols; j++)
                {
                    int first = j * Gemm.TileCols, count = Math.Min(Gemm.TileCols, groupTiles - first);
                    // The columns of a short last panel are zeros: computed, and dropped by the output transform.
                    if (count < Gemm.TileCols) new Span<float>(panel, Gemm.TileCols * depth).Clear();
                    for (int i = 0; i < count; i++) rows[i] = tiles + xi * tileStride + (first + i) * channels;
                    TransposeIntoPanel(rows, count, depth, panel, Gemm.TileCols);
                    for (int r = 0; r < g.OutChannels; r += Gemm.TileRows)
                        Gemm.Tile(path, Math.Min(Gemm.TileRows, g.OutChannels - r), depth, u + xi * packedLength + r * depth, panel,
                            products + ((long)xi * g.OutChannels + r) * stride + first, stride, loadC: false);
                }
        }

        /// <summary>Where each tile of a group writes its outputs, the same for every group: 4 × the offset of its first
        /// output from the group's first output in channel 0, plus 1 when it has a second column and 2 when it has a
        /// second row inside the output.</summary>
        private void TilePlacements(int* placements)
        {
            ConvGeometry g = layout.G;
            int tile = 0;
            for (int i = 0; i < layout.ImagesPerGroup; i++)
                for (int ty = 0; ty < layout.TileRows; ty++)
                    for (int tx = 0; tx < layout.TileCols; tx++)
                    {
                        int row = 2 * ty, col = 2 * tx, offset = i * g.OutChannels * g.OutPlane + row * g.Cols.Output + col;
                        placements[tile++] = 4 * offset + (col + 1 < g.Cols.Output ? 1 : 0) + (row + 1 < g.Rows.Output ? 2 : 0);
                    }
        }

        /// <summary>Copies one image (InChannels, H, W) into the channels-last staging buffer with its padding as zeros,
        /// a row of all channels at a time through the implicit GEMM's 4 × 4 transpose.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void StageImage(float* image, float* stage)
        {
            ConvGeometry g = layout.G;
            int channels = layout.StagedChannels, cols = layout.StagedCols;
            new Span<float>(stage, layout.StagedRows * cols * channels).Clear();
            int padRow = g.Rows.PadBefore, padCol = g.Cols.PadBefore;
            // The image's rows and columns that land inside the staged area (those past the last tile are never read).
            int rowEnd = Math.Min(g.Rows.Input, layout.StagedRows - padRow), colEnd = Math.Min(g.Cols.Input, cols - padCol);
            float** rows = stackalloc float*[g.InChannels];
            for (int r = 0; r < rowEnd; r++)
            {
                for (int c = 0; c < g.InChannels; c++) rows[c] = image + (long)c * g.InPlane + r * g.Cols.Input;
                TransposeIntoPanel(rows, g.InChannels, colEnd, stage + ((long)(r + padRow) * cols + padCol) * channels, channels);
            }
        }

        /// <summary>V_ξ[t, c] = (Bᵀ d B)_ξ for each tile d of the staged image (eq. 8's Bᵀ = [1 0 −1 0; 0 1 1 0;
        /// 0 −1 1 0; 0 1 0 −1]), vectorized over the channels.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void TransformInputTiles(float* stage, float* tiles, int tileStride)
        {
            int channels = layout.StagedChannels, rowStride = layout.StagedCols * channels;
            for (int ty = 0; ty < layout.TileRows; ty++)
                for (int tx = 0; tx < layout.TileCols; tx++)
                {
                    float* d = stage + (2 * ty) * rowStride + 2 * tx * channels;
                    float* v = tiles + (ty * layout.TileCols + tx) * channels;
                    for (int c = 0; c < channels; c += TVec.Count)
                    {
                        // Bᵀd, column by column, then (Bᵀd)B, row by row.
                        var (a00, a10, a20, a30) = InputTransform(Load(d, c), Load(d + rowStride, c), Load(d + 2 * rowStride, c), Load(d + 3 * rowStride, c));
                        d += channels;
                        var (a01, a11, a21, a31) = InputTransform(Load(d, c), Load(d + rowStride, c), Load(d + 2 * rowStride, c), Load(d + 3 * rowStride, c));
                        d += channels;
                        var (a02, a12, a22, a32) = InputTransform(Load(d, c), Load(d + rowStride, c), Load(d + 2 * rowStride, c), Load(d + 3 * rowStride, c));
                        d += channels;
                        var (a03, a13, a23, a33) = InputTransform(Load(d, c), Load(d + rowStride, c), Load(d + 2 * rowStride, c), Load(d + 3 * rowStride, c));
                        d -= 3 * channels;
                        StoreRow(v + c, tileStride, 0, InputTransform(a00, a01, a02, a03));
                        StoreRow(v + c, tileStride, 4, InputTransform(a10, a11, a12, a13));
                        StoreRow(v + c, tileStride, 8, InputTransform(a20, a21, a22, a23));
                        StoreRow(v + c, tileStride, 12, InputTransform(a30, a31, a32, a33));
                    }
                }
        }

        /// <summary>Y = Aᵀ m A for each tile's 16 products (eq. 8's Aᵀ = [1 1 1 0; 0 1 −1 −1]) plus the bias. Tile rows
        /// of more than 4 tiles run a vector of tiles of one row at a time (<see cref="TransformOutputRows{TOut}"/>), with
        /// vectors of at most 256 bits for rows of up to 8 tiles, since a row's last vector computes lanes that are
        /// dropped (512-bit ones on conv2's 7-tile rows ran 7 % slower than the scatter). Shorter rows (conv3's 4 tiles
        /// of 7 × 7) keep <see cref="ScatterOutputTiles"/>: rows of 256- or 128-bit vectors ran 6–7 % slower there.
        /// Measured: same-process A/B against the scatter alone, batch 128, alternating rounds, medians of process CPU
        /// time, bit-identical, under load: the seed CNN's conv2 forward 8.5 % faster at 256 bits and 9 % at 512 on 1
        /// thread, 7 % at 256 bits on 2, 3.5 % at 128 bits; its input gradient 1–2 % on 1 thread, 8 % on 2.</summary>
        private void TransformOutputTiles(float* products, int groupTiles, int* placements, float* images)
        {
            if (layout.TileCols <= 4) ScatterOutputTiles(products, groupTiles, placements, images);
            else if (layout.TileCols <= 8 && TVec.Count > 8) TransformOutputRows<Simd256<float>>(products, groupTiles, images);
            else TransformOutputRows<TVec>(products, groupTiles, images);
        }

        /// <summary>The output transform vectorized over the group's tiles in order, whatever their rows, each tile's 2×2
        /// outputs then written one at a time from a stack buffer, cut where the output ends inside a tile.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void ScatterOutputTiles(float* products, int groupTiles, int* placements, float* images)
        {
            ConvGeometry g = layout.G;
            int stride = layout.ProductStride, plane = g.OutPlane, width = g.Cols.Output;
            int xiStride = g.OutChannels * stride;
            float* results = stackalloc float[4 * TVec.Count];
            for (int o = 0; o < g.OutChannels; o++)
            {
                TVec b = TVec.Create(bias is null ? 0f : bias[o]);
                for (int t = 0; t < groupTiles; t += TVec.Count)
                {
                    float* m = products + o * stride + t;
                    // mA, row by row (s_cr is row r, column c), then Aᵀ(mA), column by column.
                    var (s00, s10) = OutputTransform(Load(m, 0), Load(m + xiStride, 0), Load(m + 2 * xiStride, 0), Load(m + 3 * xiStride, 0));
                    m += 4 * xiStride;
                    var (s01, s11) = OutputTransform(Load(m, 0), Load(m + xiStride, 0), Load(m + 2 * xiStride, 0), Load(m + 3 * xiStride, 0));
                    m += 4 * xiStride;
                    var (s02, s12) = OutputTransform(Load(m, 0), Load(m + xiStride, 0), Load(m + 2 * xiStride, 0), Load(m + 3 * xiStride, 0));
                    m += 4 * xiStride;
                    var (s03, s13) = OutputTransform(Load(m, 0), Load(m + xiStride, 0), Load(m + 2 * xiStride, 0), Load(m + 3 * xiStride, 0));
                    var (y00, y10) = OutputTransform(s00, s01, s02, s03);
                    var (y01, y11) = OutputTransform(s10, s11, s12, s13);
                    (y00 + b).StoreUnsafe(ref results[0], 0);
                    (y01 + b).StoreUnsafe(ref results[TVec.Count], 0);
                    (y10 + b).StoreUnsafe(ref results[2 * TVec.Count], 0);
                    (y11 + b).StoreUnsafe(ref results[3 * TVec.Count], 0);
                    int lanes = Math.Min(TVec.Count, groupTiles - t);
                    for (int lane = 0; lane < lanes; lane++)
                    {
                        int place = placements[t + lane];
                        float* target = images + (long)o * plane + (place >> 2);
                        target[0] = results[lane];
                        if ((place & 1) != 0) target[1] = results[TVec.Count + lane];
                        if ((place & 2) != 0) target[width] = results[2 * TVec.Count + lane];
                        if ((place & 3) == 3) target[width + 1] = results[3 * TVec.Count + lane];
                    }
                }
            }
        }

        /// <summary>The output transform on vectors of <typeparamref name="TOut"/>'s width: the tiles of a tile row are
        /// next to each other in the products and their outputs next to each other in the image, so each output row of a
        /// vector of tiles is its two columns interleaved into two vectors, stored whole (the last of a row cut where
        /// the output row ends).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void TransformOutputRows<TOut>(float* products, int groupTiles, float* images)
            where TOut : struct, ISimdVector<TOut, float>
        {
            ConvGeometry g = layout.G;
            int stride = layout.ProductStride, plane = g.OutPlane, width = g.Cols.Output, tileCols = layout.TileCols;
            int xiStride = g.OutChannels * stride, count = groupTiles / layout.TilesPerImage;
            float* scratch = stackalloc float[TOut.Count];
            for (int o = 0; o < g.OutChannels; o++)
            {
                TOut b = TOut.Create(bias is null ? 0f : bias[o]);
                for (int i = 0; i < count; i++)
                    for (int ty = 0; ty < layout.TileRows; ty++)
                    {
                        // A row's last vector reads past its tiles (into the next row's, or past the last row of the
                        // products by up to Count − 1 floats, into the panel buffer behind them): computed, and dropped.
                        float* m = products + o * stride + i * layout.TilesPerImage + ty * tileCols;
                        float* top = images + ((long)i * g.OutChannels + o) * plane + 2 * ty * width;
                        bool hasBottom = 2 * ty + 1 < g.Rows.Output;
                        for (int tx = 0; tx < tileCols; tx += TOut.Count, m += TOut.Count)
                        {
                            // mA, row by row (s_cr is row r, column c), then Aᵀ(mA), column by column.
                            var (s00, s10) = OutputTransform(Load<TOut>(m, 0), Load<TOut>(m, xiStride), Load<TOut>(m, 2 * xiStride), Load<TOut>(m, 3 * xiStride));
                            var (s01, s11) = OutputTransform(Load<TOut>(m, 4 * xiStride), Load<TOut>(m, 5 * xiStride), Load<TOut>(m, 6 * xiStride), Load<TOut>(m, 7 * xiStride));
                            var (s02, s12) = OutputTransform(Load<TOut>(m, 8 * xiStride), Load<TOut>(m, 9 * xiStride), Load<TOut>(m, 10 * xiStride), Load<TOut>(m, 11 * xiStride));
                            var (s03, s13) = OutputTransform(Load<TOut>(m, 12 * xiStride), Load<TOut>(m, 13 * xiStride), Load<TOut>(m, 14 * xiStride), Load<TOut>(m, 15 * xiStride));
                            var (y00, y10) = OutputTransform(s00, s01, s02, s03);
                            var (y01, y11) = OutputTransform(s10, s11, s12, s13);
                            int outputs = Math.Min(2 * TOut.Count, width - 2 * tx);
                            StoreOutputRow(top + 2 * tx, y00 + b, y01 + b, outputs, scratch);
                            if (hasBottom) StoreOutputRow(top + width + 2 * tx, y10 + b, y11 + b, outputs, scratch);
                        }
                    }
            }
        }

        /// <summary>Writes the first <paramref name="outputs"/> of a vector of tiles' left and right outputs on one
        /// output row, interleaved (left₀ right₀ left₁ right₁ ...): whole vectors, then the rest masked where the hardware
        /// masks stores, or through <paramref name="scratch"/> (Count floats) where it does not.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void StoreOutputRow<TOut>(float* target, TOut left, TOut right, int outputs, float* scratch)
            where TOut : struct, ISimdVector<TOut, float>
        {
            var (low, high) = TOut.Interleave(left, right);
            if (outputs >= TOut.Count)
            {
                low.StoreUnsafe(ref target[0], 0);
                low = high;
                target += TOut.Count;
                outputs -= TOut.Count;
            }
            if (outputs == TOut.Count) low.StoreUnsafe(ref target[0], 0);
            else if (TOut.HasMaskStore) low.MaskStore(target, ~TOut.LanesFrom(outputs));
            else
            {
                low.StoreUnsafe(ref scratch[0], 0);
                for (int k = 0; k < outputs; k++) target[k] = scratch[k];
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static TVec Load(float* p, int offset) => TVec.LoadUnsafe(ref p[offset], 0);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static TOut Load<TOut>(float* p, int offset) where TOut : struct, ISimdVector<TOut, float> => TOut.LoadUnsafe(ref p[offset], 0);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void StoreRow(float* v, int tileStride, int firstXi, (TVec, TVec, TVec, TVec) row)
        {
            row.Item1.StoreUnsafe(ref v[firstXi * tileStride], 0);
            row.Item2.StoreUnsafe(ref v[(firstXi + 1) * tileStride], 0);
            row.Item3.StoreUnsafe(ref v[(firstXi + 2) * tileStride], 0);
            row.Item4.StoreUnsafe(ref v[(firstXi + 3) * tileStride], 0);
        }

        /// <summary>Bᵀ applied to four values along one axis of a tile.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static (TVec, TVec, TVec, TVec) InputTransform(TVec d0, TVec d1, TVec d2, TVec d3) =>
            (d0 - d2, d1 + d2, d2 - d1, d1 - d3);

        /// <summary>Aᵀ applied to four values along one axis of a tile.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static (TOut, TOut) OutputTransform<TOut>(TOut m0, TOut m1, TOut m2, TOut m3) where TOut : struct, ISimdVector<TOut, float> =>
            (m0 + m1 + m2, m1 - m2 - m3);
    }
}
