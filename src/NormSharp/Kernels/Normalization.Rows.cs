using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;

namespace NormSharp.Kernels;

// The row path's backward pass: LayerNorm and RMSNorm with γ and β per element of the row (the forward pass is the
// group path's, with the affine applied along the row). Per row, g = γ·dy and x̂ are formed in scratch, and
// dx = (1/σ)·(g − mean(g) − x̂·mean(g·x̂)) (Ba, Kiros & Hinton 2016; the BatchNorm closed form with the row as the
// group). dγ = Σ_rows dy·x̂ and dβ = Σ_rows dy are column sums across rows: each fixed block of rows keeps its own
// float64 partial sums, added in block order at the end, so the result does not depend on the thread count.
internal static partial class NormalizationKernels
{
    /// <summary>Rows per block of partial dγ/dβ sums.</summary>
    private const int RowBlock = 64;

    /// <summary>Rows summed in the element type before the sums move to float64 (RowBlock is a multiple).</summary>
    private const int FlushRows = 16;

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
            T[] scratch = BufferPool<T>.Shared.Rent(4 * length);
            Span<T> xhat = scratch.AsSpan(0, length), g = scratch.AsSpan(length, length);
            // Column sums over a few rows in the element type (cheap), moved to the block's float64 sums every
            // FlushRows rows so no float32 sum holds more than FlushRows terms.
            Span<T> recentDy = scratch.AsSpan(2 * length, length), recentDyXhat = scratch.AsSpan(3 * length, length);
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
                    double mean = statistics.Mean.Span[r], invStd = statistics.InvStd.Span[r];
                    ReadOnlySpan<T> xRow = x.Slice(r * length, length), dyRow = dy.Slice(r * length, length);
                    var (center, scale, shift) = ForwardCoefficients<T>(mean, invStd, 1, 0);
                    NormalizationSimd.ShiftScale(xRow, xhat, new Uniform<T>(center), new Uniform<T>(scale), new Uniform<T>(shift));
                    if (partials is not null)
                    {
                        TensorPrimitives.Add(recentDy, dyRow, recentDy);
                        TensorPrimitives.FusedMultiplyAdd(dyRow, xhat, recentDyXhat, recentDyXhat);
                        if ((r + 1) % FlushRows == 0 || r + 1 == blockEnd)
                        {
                            NormalizationSimd.AccumulateColumns<T, ValueTerm, Uniform<double>>(recentDy, new Uniform<double>(0), blockDy);
                            NormalizationSimd.AccumulateColumns<T, ValueTerm, Uniform<double>>(recentDyXhat, new Uniform<double>(0), blockDyXhat);
                            recentDy.Clear();
                            recentDyXhat.Clear();
                        }
                    }
                    if (dx.IsEmpty) continue;
                    if (w.IsEmpty) dyRow.CopyTo(g); else TensorPrimitives.Multiply(dyRow, w, g);
                    var (sumG, sumGXhat) = NormalizationSimd.CenteredSums<T>(g, T.Zero, xhat, T.Zero);
                    var (meanG, meanGXhat) = GradientMeans(plan.Centered, statisticsFromBatch, sumG, sumGXhat, length);
                    // In terms of x̂: dx = g·(1/σ) + x̂·(−mean(g·x̂)/σ) − mean(g)/σ.
                    NormalizationSimd.CombineGradient<T, Uniform<T>>(g, xhat, dx.Slice(r * length, length), new(T.CreateTruncating(invStd)),
                        new(T.Zero), new(T.CreateTruncating(-invStd * meanGXhat)), new(T.CreateTruncating(-invStd * meanG)), streaming);
                }
            }
            BufferPool<T>.Shared.Return(scratch);
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
