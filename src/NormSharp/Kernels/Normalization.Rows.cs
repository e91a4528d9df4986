using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;

namespace NormSharp.Kernels;

// The row path: LayerNorm and RMSNorm, each row its own group, with γ and β per element of the row. The forward pass
// takes each row's statistics like the group path (one pass, rarely two) and then normalizes and applies the
// affine in one more visit, which reads the row from L1. The backward pass visits each row twice: the first forms g = γ·dy and x̂ and
// sums Σg and Σg·x̂, the second forms them again and writes dx = (1/σ)·(g − mean(g) − x̂·mean(g·x̂))
// (Ba, Kiros & Hinton 2016; the BatchNorm closed form with the row as the group). dγ = Σ_rows dy·x̂ and
// dβ = Σ_rows dy are column sums across rows, added during the first visit: each fixed block of rows keeps its own
// float64 partial sums, added in block order at the end, so the result does not depend on the thread count.
internal static partial class NormalizationKernels
{
    /// <summary>Rows per block of partial dγ/dβ sums.</summary>
    private const int RowBlock = 64;

    /// <summary>Rows summed in the element type before the sums move to float64 (RowBlock is a multiple).</summary>
    private const int FlushRows = 16;

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

    private static void RowsBackward<T>(ReadOnlyMemory<T> input, ReadOnlyMemory<T> gradOutput, Memory<T> gradInput, NormalizationPlan plan,
        bool statisticsFromBatch, ReadOnlyMemory<T> weight, GroupStatistics statistics, Span<double> gradWeight, Span<double> gradBias)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        NormalizationLayout layout = plan.Layout;
        int rows = layout.Groups, length = layout.Run, blocks = (rows + RowBlock - 1) / RowBlock;
        bool wantAffine = !gradWeight.IsEmpty || !gradBias.IsEmpty;
        // partials[(2·block)·length ..] holds the block's Σ dy, partials[(2·block + 1)·length ..] its Σ dy·x̂.
        bool streaming = Streams<T>(input.Length);
        double[]? partials = wantAffine ? BufferPool<double>.Shared.Rent(2 * blocks * length) : null;
        Parallelism.For(blocks, (first, end) =>
        {
            // Column sums over a few rows in the element type (cheap), moved to the block's float64 sums every
            // FlushRows rows so no float32 sum holds more than FlushRows terms.
            T[]? scratch = partials is null ? null : BufferPool<T>.Shared.Rent(2 * length);
            Span<T> recentDy = scratch is null ? default : scratch.AsSpan(0, length);
            Span<T> recentDyXhat = scratch is null ? default : scratch.AsSpan(length, length);
            recentDy.Clear();
            recentDyXhat.Clear();
            ReadOnlySpan<T> x = input.Span, dy = gradOutput.Span, w = weight.Span;
            Span<T> dx = gradInput.Span;
            for (int block = first; block < end; block++)
            {
                Span<double> blockDy = partials is null ? default : partials.AsSpan(2 * block * length, length);
                Span<double> blockDyXhat = partials is null ? default : partials.AsSpan((2 * block + 1) * length, length);
                blockDy.Clear();
                blockDyXhat.Clear();
                int blockEnd = Math.Min(rows, (block + 1) * RowBlock);
                for (int r = block * RowBlock; r < blockEnd; r++)
                {
                    double invStd = statistics.InvStd.Span[r];
                    ReadOnlySpan<T> xRow = x.Slice(r * length, length), dyRow = dy.Slice(r * length, length);
                    var (c, s, h) = ForwardCoefficients<T>(statistics.Mean.Span[r], invStd, 1, 0);
                    var (sumG, sumGXhat) = w.IsEmpty
                        ? NormalizationSimd.RowGradientSums(dyRow, xRow, new Uniform<T>(T.One), c, s, h, recentDy, recentDyXhat)
                        : NormalizationSimd.RowGradientSums(dyRow, xRow, new PerElement<T>(w), c, s, h, recentDy, recentDyXhat);
                    if (partials is not null && ((r + 1) % FlushRows == 0 || r + 1 == blockEnd))
                    {
                        NormalizationSimd.AddWidened<T>(recentDy, blockDy);
                        NormalizationSimd.AddWidened<T>(recentDyXhat, blockDyXhat);
                        recentDy.Clear();
                        recentDyXhat.Clear();
                    }
                    if (dx.IsEmpty) continue;
                    var (meanG, meanGXhat) = GradientMeans(plan.Centered, statisticsFromBatch, sumG, sumGXhat, length);
                    // In terms of x̂: dx = g·(1/σ) + x̂·(−mean(g·x̂)/σ) − mean(g)/σ.
                    T a = T.CreateTruncating(invStd), k = T.CreateTruncating(-invStd * meanGXhat), l = T.CreateTruncating(-invStd * meanG);
                    Span<T> dxRow = dx.Slice(r * length, length);
                    if (w.IsEmpty) NormalizationSimd.Write(dxRow, new RowGradient<T, Uniform<T>>(dyRow, xRow, new(T.One), c, s, h, a, k, l), streaming);
                    else NormalizationSimd.Write(dxRow, new RowGradient<T, PerElement<T>>(dyRow, xRow, new(w), c, s, h, a, k, l), streaming);
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
