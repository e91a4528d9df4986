using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace NormSharp.Kernels;

// The weight pass of a shifted-plane convolution with a small patch (Convolution.DotProductPatch: a first layer on one
// or a few input channels, the seed CNN's 1×3×3). dW[o, p] = Σ_images Σ_positions dy[n, o, q]·X_n[p, q] is then
// OutChannels × PatchSize dot products as long as the batch's positions, too shallow in p for the GEMM's register tile.
// Each image's column matrix (at most 16 rows, a few KiB per row) is built by Im2Col.Expand, and a register block of
// dy rows × column rows runs down a span of positions that stays in L1, reading dy straight from NCHW: every vector
// of dy and of X loaded feeds several multiply-adds, and no lane is masked. The block's vector accumulators are carried
// from span to span and image to image in a small buffer and reduced to scalars once per group, so the result depends
// on the geometry and the vector width only.
internal static partial class Convolution
{
    /// <summary>Most positions per span of the dot products: 8 rows of dy and 3 of the column matrix, 44 KiB at 1024
    /// positions, would spill the 48 KiB L1; at 512 they take 22 KiB.</summary>
    private const int DotSpanPositions = 512;

    /// <summary>The small-patch weight pass over groups of images [start, end): each group's dW (OutChannels ×
    /// PatchSize) and bias gradient (OutChannels) into its partial sum.</summary>
    internal readonly unsafe struct WeightDotGroups(ConvGeometry g, float* x, float* dy, float* partials, int groups) : IChunkBody
    {
        /// <summary>Floats of one group's dW, before its bias gradient.</summary>
        public static int SumLength(ConvGeometry g) => g.OutChannels * g.PatchSize;

        public void Run(int start, int end)
        {
            // 8 × 3 = 24 accumulators of the 32 vector registers with AVX-512; 3 × 3 of the 16 below.
            if (Vector512.IsHardwareAccelerated) Run<Simd512<float>, DotBlock8x3>(start, end);
            else if (Vector256.IsHardwareAccelerated) Run<Simd256<float>, DotBlock3x3>(start, end);
            else Run<Simd128<float>, DotBlock3x3>(start, end);
        }

        /// <summary><see cref="Run(int, int)"/> at a given width and register block (tests run every pair on any
        /// machine).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        internal void Run<TVector, TBlock>(int start, int end)
            where TVector : struct, ISimdVector<TVector, float> where TBlock : struct, IDotBlock
        {
            int plane = g.OutPlane, patch = g.PatchSize, width = TVector.Count, rows = TBlock.DyRows, columns = TBlock.ColumnRows;
            int dyBlocks = (g.OutChannels + rows - 1) / rows, columnBlocks = (patch + columns - 1) / columns;
            int blockLength = rows * columns * width, wholeVectors = plane / width, tailStart = wholeVectors * width;
            int spanVectors = Math.Max(1, Gemm.EqualParts(wholeVectors, 1, DotSpanPositions / width));
            float[] columnMatrix = BufferPool<float>.Shared.Rent(WorkspaceLength(g, (long)patch * plane, "column matrix"));
            float[] vectorSums = BufferPool<float>.Shared.Rent(dyBlocks * columnBlocks * blockLength);
            float[] tailSums = BufferPool<float>.Shared.Rent(g.OutChannels * patch);
            try
            {
                fixed (float* cols = columnMatrix, accumulators = vectorSums, tails = tailSums)
                {
                    float** dyRows = stackalloc float*[DotBlock8x3.DyRows];
                    float** columnRows = stackalloc float*[DotBlock8x3.ColumnRows];
                    for (int group = start; group < end; group++)
                    {
                        float* sum = partials + (nint)group * (SumLength(g) + g.OutChannels), biasSum = sum + SumLength(g);
                        int firstImage = (int)((long)g.Batch * group / groups), endImage = (int)((long)g.Batch * (group + 1) / groups);
                        new Span<float>(accumulators, dyBlocks * columnBlocks * blockLength).Clear();
                        new Span<float>(tails, g.OutChannels * patch).Clear();
                        for (int n = firstImage; n < endImage; n++)
                        {
                            Im2Col.Expand(new ReadOnlySpan<float>(x + (nint)n * g.InChannels * g.InPlane, g.InChannels * g.InPlane),
                                new Span<float>(cols, patch * plane), g.InChannels, g.Rows, g.Cols, plane);
                            // The image's dy, 100 KiB for the seed CNN's conv1, swept once in order for the bias
                            // gradient, which brings it into L2 for the dot products. The pass is bound by reading dy
                            // (12.8 MB at batch 128): with the bias summed after the dots, whose eight rows first met
                            // dy strided, it ran at 0.94× the masked dots it replaced; summed first, 1.27×.
                            float* image = dy + (nint)n * g.OutChannels * plane;
                            for (int o = 0; o < g.OutChannels; o++)
                            {
                                float channelSum = ImplicitWeightProducts.PlaneSum(image + (nint)o * plane, plane);
                                biasSum[o] = n > firstImage ? biasSum[o] + channelSum : channelSum;
                            }
                            for (int from = 0; from < wholeVectors; from += spanVectors)
                            {
                                nuint first = (nuint)(from * width), stop = (nuint)(Math.Min(wholeVectors, from + spanVectors) * width);
                                for (int ob = 0; ob < dyBlocks; ob++)
                                {
                                    // Rows past the last repeat it; their sums are never read.
                                    for (int i = 0; i < rows; i++) dyRows[i] = image + (nint)Math.Min(ob * rows + i, g.OutChannels - 1) * plane;
                                    for (int cb = 0; cb < columnBlocks; cb++)
                                    {
                                        for (int j = 0; j < columns; j++) columnRows[j] = cols + (nint)Math.Min(cb * columns + j, patch - 1) * plane;
                                        BlockDots<TVector, TBlock>(dyRows, columnRows, first, stop, accumulators + (nint)(ob * columnBlocks + cb) * blockLength);
                                    }
                                }
                            }
                            // The positions after the last whole vector, one by one.
                            for (int o = 0; o < g.OutChannels; o++)
                                for (int p = 0; p < patch; p++)
                                {
                                    float* dyRow = image + (nint)o * plane, column = cols + (nint)p * plane;
                                    float tail = tails[o * patch + p];
                                    for (int q = tailStart; q < plane; q++) tail = float.MultiplyAddEstimate(dyRow[q], column[q], tail);
                                    tails[o * patch + p] = tail;
                                }
                        }
                        for (int o = 0; o < g.OutChannels; o++)
                        {
                            int ob = o / rows, i = o - ob * rows;
                            for (int p = 0; p < patch; p++)
                            {
                                int cb = p / columns, j = p - cb * columns;
                                float* vector = accumulators + (nint)(ob * columnBlocks + cb) * blockLength + (i * columns + j) * width;
                                sum[o * patch + p] = TVector.Sum(TVector.LoadUnsafe(in *vector, 0)) + tails[o * patch + p];
                            }
                        }
                    }
                }
            }
            finally
            {
                BufferPool<float>.Shared.Return(columnMatrix);
                BufferPool<float>.Shared.Return(vectorSums);
                BufferPool<float>.Shared.Return(tailSums);
            }
        }
    }

    /// <summary>accumulators[(i·C + j)·width …] += Σ over positions [<paramref name="first"/>, <paramref name="stop"/>)
    /// (whole vectors) of dyRows[i] ⊙ columnRows[j], for the block's R rows of dy × C rows of the column matrix: per
    /// vector step R + C loads feed R·C multiply-adds, at the width of <typeparamref name="TVector"/>. The kernel runs on
    /// the bare Vector512/256/128 through <see cref="Gemm.ITileLanes{TVector}"/>, as the GEMM's register tile does:
    /// through the <see cref="ISimdVector{TSelf, T}"/> wrappers the JIT wrote each row's last multiply-add into the
    /// register of the dy vector it consumed and copied it back, 10 register moves per 24 multiply-adds with AVX-512
    /// and 5 per 9 with AVX2.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe void BlockDots<TVector, TBlock>(float** dyRows, float** columnRows, nuint first, nuint stop, float* accumulators)
        where TVector : struct, ISimdVector<TVector, float> where TBlock : struct, IDotBlock
    {
        // Count is a constant to the JIT: one branch remains.
        if (TVector.Count == Vector512<float>.Count) BlockDots<Gemm.Lanes512, Vector512<float>, TBlock>(dyRows, columnRows, first, stop, accumulators);
        else if (TVector.Count == Vector256<float>.Count) BlockDots<Gemm.Lanes256, Vector256<float>, TBlock>(dyRows, columnRows, first, stop, accumulators);
        else BlockDots<Gemm.Lanes128, Vector128<float>, TBlock>(dyRows, columnRows, first, stop, accumulators);
    }

    /// <summary><see cref="BlockDots{TVector, TBlock}"/> on the vectors of <typeparamref name="TLanes"/>. R and C are
    /// types, so that the JIT compiles one straight-line kernel per block, with the unused accumulators removed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void BlockDots<TLanes, TVec, TBlock>(float** dyRows, float** columnRows, nuint first, nuint stop, float* accumulators)
        where TLanes : struct, Gemm.ITileLanes<TVec> where TVec : struct where TBlock : struct, IDotBlock
    {
        int rows = TBlock.DyRows, columns = TBlock.ColumnRows;
        nuint w = (nuint)TLanes.Count;
        float* y0 = dyRows[0], y1 = dyRows[Math.Min(1, rows - 1)], y2 = dyRows[Math.Min(2, rows - 1)], y3 = dyRows[Math.Min(3, rows - 1)];
        float* y4 = dyRows[Math.Min(4, rows - 1)], y5 = dyRows[Math.Min(5, rows - 1)], y6 = dyRows[Math.Min(6, rows - 1)], y7 = dyRows[Math.Min(7, rows - 1)];
        float* c0 = columnRows[0], c1 = columnRows[Math.Min(1, columns - 1)], c2 = columnRows[Math.Min(2, columns - 1)];
        // sIJ: row I of dy with column row J, at accumulators + (I·C + J)·width.
        TVec s00 = default, s01 = default, s02 = default, s10 = default, s11 = default, s12 = default, s20 = default, s21 = default, s22 = default;
        TVec s30 = default, s31 = default, s32 = default, s40 = default, s41 = default, s42 = default, s50 = default, s51 = default, s52 = default;
        TVec s60 = default, s61 = default, s62 = default, s70 = default, s71 = default, s72 = default;
        LoadRow<TLanes, TVec>(accumulators, columns, 0, ref s00, ref s01, ref s02);
        if (rows > 1) LoadRow<TLanes, TVec>(accumulators, columns, 1, ref s10, ref s11, ref s12);
        if (rows > 2) LoadRow<TLanes, TVec>(accumulators, columns, 2, ref s20, ref s21, ref s22);
        if (rows > 3) LoadRow<TLanes, TVec>(accumulators, columns, 3, ref s30, ref s31, ref s32);
        if (rows > 4) LoadRow<TLanes, TVec>(accumulators, columns, 4, ref s40, ref s41, ref s42);
        if (rows > 5) LoadRow<TLanes, TVec>(accumulators, columns, 5, ref s50, ref s51, ref s52);
        if (rows > 6) LoadRow<TLanes, TVec>(accumulators, columns, 6, ref s60, ref s61, ref s62);
        if (rows > 7) LoadRow<TLanes, TVec>(accumulators, columns, 7, ref s70, ref s71, ref s72);
        for (nuint q = first; q < stop; q += w)
        {
            TVec x0 = TLanes.Load(c0 + q);
            TVec x1 = columns > 1 ? TLanes.Load(c1 + q) : default, x2 = columns > 2 ? TLanes.Load(c2 + q) : default;
            RowStep<TLanes, TVec>(columns, TLanes.Load(y0 + q), x0, x1, x2, ref s00, ref s01, ref s02);
            if (rows > 1) RowStep<TLanes, TVec>(columns, TLanes.Load(y1 + q), x0, x1, x2, ref s10, ref s11, ref s12);
            if (rows > 2) RowStep<TLanes, TVec>(columns, TLanes.Load(y2 + q), x0, x1, x2, ref s20, ref s21, ref s22);
            if (rows > 3) RowStep<TLanes, TVec>(columns, TLanes.Load(y3 + q), x0, x1, x2, ref s30, ref s31, ref s32);
            if (rows > 4) RowStep<TLanes, TVec>(columns, TLanes.Load(y4 + q), x0, x1, x2, ref s40, ref s41, ref s42);
            if (rows > 5) RowStep<TLanes, TVec>(columns, TLanes.Load(y5 + q), x0, x1, x2, ref s50, ref s51, ref s52);
            if (rows > 6) RowStep<TLanes, TVec>(columns, TLanes.Load(y6 + q), x0, x1, x2, ref s60, ref s61, ref s62);
            if (rows > 7) RowStep<TLanes, TVec>(columns, TLanes.Load(y7 + q), x0, x1, x2, ref s70, ref s71, ref s72);
        }
        StoreRow<TLanes, TVec>(accumulators, columns, 0, s00, s01, s02);
        if (rows > 1) StoreRow<TLanes, TVec>(accumulators, columns, 1, s10, s11, s12);
        if (rows > 2) StoreRow<TLanes, TVec>(accumulators, columns, 2, s20, s21, s22);
        if (rows > 3) StoreRow<TLanes, TVec>(accumulators, columns, 3, s30, s31, s32);
        if (rows > 4) StoreRow<TLanes, TVec>(accumulators, columns, 4, s40, s41, s42);
        if (rows > 5) StoreRow<TLanes, TVec>(accumulators, columns, 5, s50, s51, s52);
        if (rows > 6) StoreRow<TLanes, TVec>(accumulators, columns, 6, s60, s61, s62);
        if (rows > 7) StoreRow<TLanes, TVec>(accumulators, columns, 7, s70, s71, s72);
    }

    /// <summary>One vector step of <see cref="BlockDots{TVector, TBlock}"/> for one row of dy: its vector times each column row's,
    /// added to that pair's accumulator.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RowStep<TLanes, TVec>(int columns, TVec y, TVec x0, TVec x1, TVec x2, ref TVec s0, ref TVec s1, ref TVec s2)
        where TLanes : struct, Gemm.ITileLanes<TVec> where TVec : struct
    {
        s0 = TLanes.MultiplyAdd(y, x0, s0);
        if (columns > 1) s1 = TLanes.MultiplyAdd(y, x1, s1);
        if (columns > 2) s2 = TLanes.MultiplyAdd(y, x2, s2);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void LoadRow<TLanes, TVec>(float* accumulators, int columns, int row, ref TVec s0, ref TVec s1, ref TVec s2)
        where TLanes : struct, Gemm.ITileLanes<TVec> where TVec : struct
    {
        float* at = accumulators + row * columns * TLanes.Count;
        s0 = TLanes.Load(at);
        if (columns > 1) s1 = TLanes.Load(at + TLanes.Count);
        if (columns > 2) s2 = TLanes.Load(at + 2 * TLanes.Count);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreRow<TLanes, TVec>(float* accumulators, int columns, int row, TVec s0, TVec s1, TVec s2)
        where TLanes : struct, Gemm.ITileLanes<TVec> where TVec : struct
    {
        float* at = accumulators + row * columns * TLanes.Count;
        TLanes.Store(s0, at);
        if (columns > 1) TLanes.Store(s1, at + TLanes.Count);
        if (columns > 2) TLanes.Store(s2, at + 2 * TLanes.Count);
    }

    /// <summary>The register block of <see cref="BlockDots{TVector, TBlock}"/>: rows of dy (at most 8) × rows of the column matrix (at
    /// most 3), known to the JIT as constants.</summary>
    internal interface IDotBlock
    {
        static abstract int DyRows { get; }
        static abstract int ColumnRows { get; }
    }

    /// <summary>8 rows of dy × 3 column rows: 24 accumulators, for 32 vector registers (AVX-512). The seed CNN's
    /// conv1 (32 output channels, 9 patch rows) fills its blocks exactly.</summary>
    internal readonly struct DotBlock8x3 : IDotBlock
    {
        public static int DyRows => 8;
        public static int ColumnRows => 3;
    }

    /// <summary>3 rows of dy × 3 column rows: 9 accumulators and 4 operands, for 16 vector registers (AVX2, SSE).</summary>
    internal readonly struct DotBlock3x3 : IDotBlock
    {
        public static int DyRows => 3;
        public static int ColumnRows => 3;
    }
}
