using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace NormSharp.Kernels;

// The row path: LayerNorm and RMSNorm, each row its own group, with γ and β per element of the row. The forward pass
// takes each row's statistics like the group path (one pass, rarely two) and then normalizes and applies the
// affine in one more visit, which reads the row from L1. The backward pass visits each row twice: the first forms g = γ·dy and x̂ and
// sums Σg and Σg·x̂, the second forms them again and writes dx = (1/σ)·(g − mean(g) − x̂·mean(g·x̂))
// (Ba, Kiros & Hinton 2016; the BatchNorm closed form with the row as the group). dγ = Σ_rows dy·x̂ and
// dβ = Σ_rows dy are column sums across rows, added during the first visit: each fixed block of rows keeps its own
// float64 partial sums, added in block order at the end, so the result does not depend on the thread count. With 32
// vector registers the first visit takes two rows at a time, loading γ and the column sums (and storing the sums)
// once per pair of rows; the results are the same either way. Tensors larger than the cache are read with 256-bit
// vectors one row at a time where 512-bit ones exist (ReadsNarrow).
internal static partial class NormalizationKernels
{
    /// <summary>Rows per block of partial dγ/dβ sums. Each block's float64 sums are cleared, added to and finally read
    /// back, two row lengths of doubles each, so fewer blocks cost less: 128 rows a block with
    /// <see cref="FlushRows"/> = 32 made the backward 0.86× the time of 64 and 16 (LayerNorm 8192x768, one thread,
    /// 512 bits; 0.82× on two threads, 0.87× for 1024x768, 0.88× and 0.92× at 256 and 128 bits; two builds alternating
    /// in one process on the same buffers), while a block is still a parallel item of ample size.</summary>
    private const int RowBlock = 128;

    /// <summary>Rows summed in the element type before the sums move to float64 (RowBlock is a multiple): a float32
    /// column sum holds at most 32 terms.</summary>
    private const int FlushRows = 32;

    /// <summary>Whether the backward's first visit takes rows in pairs. A pair keeps about twenty vectors live: that
    /// fits the 32 vector registers of AVX-512 (EVEX encoding), where it measured 8–14 % faster than single rows, and
    /// of ARM64, which takes pairs for that reason alone (not timed on ARM64 hardware; the emulated ARM64 tests of
    /// .ci/arm64-tests check the sums), but spills with the 16 of SSE and AVX2, where it measured 20–30 % slower. The
    /// sums are the same. Rows read <paramref name="narrow"/> (<see cref="ReadsNarrow"/>) go one at a time: 256-bit
    /// pairs measured 1.25× slower than single rows there.</summary>
    private static bool PairsRows(bool narrow) => !narrow && (Avx512F.VL.IsSupported || AdvSimd.Arm64.IsSupported);

    /// <summary>Writes row <paramref name="row"/>'s output x̂·γ + β in one visit; an absent γ or β counts as 1 or 0.</summary>
    private static void NormalizeRow<T>(ReadOnlySpan<T> x, Span<T> y, NormalizationLayout layout, int row, double mean, double invStd,
        ReadOnlySpan<T> weight, ReadOnlySpan<T> bias, bool streaming)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int length = layout.Run;
        ReadOnlySpan<T> values = x.Slice(row * length, length);
        Span<T> output = y.Slice(row * length, length);
        var (c, s, h) = ForwardCoefficients<T>(mean, invStd, 1, 0);
        if (weight.IsEmpty)
            NormalizationSimd.Write(output, new ShiftScaleAffine<T, Uniform<T>, PerElement<T>>(values, c, s, h, new(T.One), new(bias)), streaming);
        else if (bias.IsEmpty)
            NormalizationSimd.Write(output, new ShiftScaleAffine<T, PerElement<T>, Uniform<T>>(values, c, s, h, new(weight), new(T.Zero)), streaming);
        else
            NormalizationSimd.Write(output, new ShiftScaleAffine<T, PerElement<T>, PerElement<T>>(values, c, s, h, new(weight), new(bias)), streaming);
    }

    /// <summary>Writes row <paramref name="row"/>'s dx = (1/σ)·(g − mean(g) − x̂·mean(g·x̂)) from its sums Σg and
    /// Σg·x̂, forming g again from the row (in L1 after the sums); with <paramref name="narrow"/> at 256 bits where
    /// 512-bit vectors exist (<see cref="ReadsNarrow"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WriteRowGradient<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> dy, Span<T> dx, ReadOnlySpan<T> weight, NormalizationPlan plan,
        bool statisticsFromBatch, ReadOnlySpan<double> mean, ReadOnlySpan<double> invStds, int row, double sumG, double sumGXhat, bool streaming, bool narrow)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (Vector512.IsHardwareAccelerated && !narrow)
            WriteRowGradient<T, Simd512<T>>(x, dy, dx, weight, plan, statisticsFromBatch, mean, invStds, row, sumG, sumGXhat, streaming);
        else if (Vector256.IsHardwareAccelerated)
            WriteRowGradient<T, Simd256<T>>(x, dy, dx, weight, plan, statisticsFromBatch, mean, invStds, row, sumG, sumGXhat, streaming);
        else
            WriteRowGradient<T, Simd128<T>>(x, dy, dx, weight, plan, statisticsFromBatch, mean, invStds, row, sumG, sumGXhat, streaming);
    }

    /// <summary><see cref="WriteRowGradient{T}"/> at one width. Kept out of the caller, whose loop inlines the sums and
    /// spends the JIT's inlining budget: inlined there, the step's constructor and the write loop stayed two calls per
    /// row, and the backward took 2–11 % longer (LayerNorm 1024x768, 256x768 and 4096x128, one thread, 512 bits). One
    /// width per method, since a method that hands its op to two write loops keeps the op's spans out of registers (see
    /// <see cref="NormalizationSimd.Write{T, TOp, TVector}"/>); fully optimized at once, since a method that tiered up
    /// ran short passes at its first tier's speed.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void WriteRowGradient<T, TVector>(ReadOnlySpan<T> x, ReadOnlySpan<T> dy, Span<T> dx, ReadOnlySpan<T> weight, NormalizationPlan plan,
        bool statisticsFromBatch, ReadOnlySpan<double> mean, ReadOnlySpan<double> invStds, int row, double sumG, double sumGXhat, bool streaming)
        where T : unmanaged, IFloatingPointIeee754<T> where TVector : struct, ISimdVector<TVector, T>
    {
        int length = plan.Layout.Run;
        double invStd = invStds[row];
        var (meanG, meanGXhat) = GradientMeans(plan.Centered, statisticsFromBatch, sumG, sumGXhat, length);
        // The group path's closed form with g = γ·dy in place of dy and a = 1/σ; γ is applied per element.
        var (c, a, k, l) = GradientCoefficients<T>(mean[row], invStd, 1, meanG, meanGXhat);
        ReadOnlySpan<T> xRow = x.Slice(row * length, length), dyRow = dy.Slice(row * length, length);
        Span<T> dxRow = dx.Slice(row * length, length);
        if (weight.IsEmpty) NormalizationSimd.Write<T, RowGradient<T, Uniform<T>>, TVector>(dxRow, new(dyRow, xRow, new(T.One), c, a, k, l), streaming);
        else NormalizationSimd.Write<T, RowGradient<T, PerElement<T>>, TVector>(dxRow, new(dyRow, xRow, new(weight), c, a, k, l), streaming);
    }

    private static void RowsBackward<T>(ReadOnlyMemory<T> input, ReadOnlyMemory<T> gradOutput, Memory<T> gradInput, NormalizationPlan plan,
        bool statisticsFromBatch, ReadOnlyMemory<T> weight, GroupStatistics statistics, Span<double> gradWeight, Span<double> gradBias)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        NormalizationLayout layout = plan.Layout;
        int rows = layout.Groups, length = layout.Run, blocks = (rows + RowBlock - 1) / RowBlock;
        bool wantAffine = !gradWeight.IsEmpty || !gradBias.IsEmpty;
        // partials[(2·block)·length ..] holds the block's Σ dy, partials[(2·block + 1)·length ..] its Σ dy·x̂.
        bool streaming = Streams<T>(input.Length), narrow = ReadsNarrow<T>((gradInput.IsEmpty ? 2L : 3L) * input.Length);
        double[]? partials = wantAffine ? BufferPool<double>.Shared.Rent(2 * blocks * length) : null;
        Parallelism.For(blocks, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (first, end) =>
        {
            // Column sums over a few rows in the element type (cheap), moved to the block's float64 sums every
            // FlushRows rows so no float32 sum holds more than FlushRows terms.
            T[]? scratch = partials is null ? null : BufferPool<T>.Shared.Rent(2 * length);
            Span<T> recentDy = scratch is null ? default : scratch.AsSpan(0, length);
            Span<T> recentDyXhat = scratch is null ? default : scratch.AsSpan(length, length);
            recentDy.Clear();
            recentDyXhat.Clear();
            ReadOnlySpan<T> x = input.Span, dy = gradOutput.Span, w = weight.Span;
            ReadOnlySpan<double> mean = statistics.Mean.Span, invStd = statistics.InvStd.Span;
            Span<T> dx = gradInput.Span;
            for (int block = first; block < end; block++)
            {
                Span<double> blockDy = partials is null ? default : partials.AsSpan(2 * block * length, length);
                Span<double> blockDyXhat = partials is null ? default : partials.AsSpan((2 * block + 1) * length, length);
                blockDy.Clear();
                blockDyXhat.Clear();
                int blockEnd = Math.Min(rows, (block + 1) * RowBlock);
                bool pairs = false;
                // Two rows at a time where the registers allow (FlushRows is even, so a pair never straddles a
                // flush); an odd last row alone.
                for (int r = block * RowBlock; r < blockEnd; r += pairs ? 2 : 1)
                {
                    pairs = PairsRows(narrow) && r + 1 < blockEnd;
                    ReadOnlySpan<T> xRow = x.Slice(r * length, length), dyRow = dy.Slice(r * length, length);
                    var (c, s, h) = ForwardCoefficients<T>(mean[r], invStd[r], 1, 0);
                    double sumG, sumGXhat, nextSumG = 0, nextSumGXhat = 0;
                    if (pairs)
                    {
                        ReadOnlySpan<T> nextX = x.Slice((r + 1) * length, length), nextDy = dy.Slice((r + 1) * length, length);
                        var (nc, ns, nh) = ForwardCoefficients<T>(mean[r + 1], invStd[r + 1], 1, 0);
                        (sumG, sumGXhat, nextSumG, nextSumGXhat) = w.IsEmpty
                            ? NormalizationSimd.RowPairGradientSums(dyRow, xRow, c, s, h, nextDy, nextX, nc, ns, nh, new Uniform<T>(T.One), recentDy, recentDyXhat)
                            : NormalizationSimd.RowPairGradientSums(dyRow, xRow, c, s, h, nextDy, nextX, nc, ns, nh, new PerElement<T>(w), recentDy, recentDyXhat);
                    }
                    else
                        (sumG, sumGXhat) = w.IsEmpty
                            ? NormalizationSimd.RowGradientSums(dyRow, xRow, new Uniform<T>(T.One), c, s, h, recentDy, recentDyXhat, narrow)
                            : NormalizationSimd.RowGradientSums(dyRow, xRow, new PerElement<T>(w), c, s, h, recentDy, recentDyXhat, narrow);
                    int done = pairs ? r + 2 : r + 1;
                    if (partials is not null && (done % FlushRows == 0 || done == blockEnd))
                    {
                        NormalizationSimd.AddWidened<T>(recentDy, blockDy);
                        NormalizationSimd.AddWidened<T>(recentDyXhat, blockDyXhat);
                        recentDy.Clear();
                        recentDyXhat.Clear();
                    }
                    if (dx.IsEmpty) continue;
                    WriteRowGradient(x, dy, dx, w, plan, statisticsFromBatch, mean, invStd, r, sumG, sumGXhat, streaming, narrow);
                    if (pairs) WriteRowGradient(x, dy, dx, w, plan, statisticsFromBatch, mean, invStd, r + 1, nextSumG, nextSumGXhat, streaming, narrow);
                }
            }
            if (scratch is not null) BufferPool<T>.Shared.Return(scratch);
        }, 3L * RowBlock * length);
        if (partials is null) return;
        gradWeight.Clear();
        gradBias.Clear();
        for (int block = 0; block < blocks; block++)
        {
            if (!gradBias.IsEmpty) TensorPrimitives.Add(gradBias, partials.AsSpan(2 * block * length, length), gradBias);
            if (!gradWeight.IsEmpty) TensorPrimitives.Add(gradWeight, partials.AsSpan((2 * block + 1) * length, length), gradWeight);
        }
        BufferPool<double>.Shared.Return(partials);
    }
}
