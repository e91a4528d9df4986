using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace NormSharp.Kernels;

// The batch path: BatchNorm's training forward and backward on (N, C, S) with runs of S ≥ MemoryOrderRun elements. A channel's N
// runs lie C·S elements apart, and walking them channel by channel makes the hardware prefetcher start over at every
// run, so this path walks memory in order instead, in three steps: every piece of every run gets its own mean and
// M₂ = Σ(x − mean)² (the group path's statistics, with their second pass in L1 when one is needed), each channel
// merges its pieces in a fixed order, and every run is then normalized in order as in evaluation mode. The input is read twice, both times
// as one stream, and the merge order does not depend on the thread count. The backward pass likewise takes each run's
// Σdy and Σdy·(x − c) in memory order, adds them per channel in sample order, and writes dx in memory order: x and dy
// are read twice, as two streams, which measured twice as fast as reading each channel's far-apart runs and then
// reading them again from the cache.
internal static partial class NormalizationKernels
{
    /// <summary>The shortest run the batch path takes: with shorter runs (14×14 feature maps) the fixed cost of each
    /// piece's reductions outweighs the gain, and walking each channel's runs (the group path) measured faster.</summary>
    private const int MemoryOrderRun = 512;

    /// <summary>Elements of the longest piece: 8 KiB of float32, which stays in L1 for a second pass.</summary>
    private const int PieceLength = 2048;

    private static void BatchForward<T>(ReadOnlyMemory<T> input, Memory<T> output, NormalizationPlan plan, double eps,
        ReadOnlyMemory<T> weight, ReadOnlyMemory<T> bias, GroupStatistics statistics)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        NormalizationLayout layout = plan.Layout;
        int channels = layout.Groups, runs = layout.Outer * channels, length = layout.Run;
        int piecesPerRun = (length + PieceLength - 1) / PieceLength, pieceLength = (length + piecesPerRun - 1) / piecesPerRun;
        // pieceStatistics[2·p] and [2·p + 1]: mean and M₂ of piece p, pieces in memory order.
        double[] pieceStatistics = BufferPool<double>.Shared.Rent(2 * runs * piecesPerRun);
        bool narrow = ReadsNarrow<T>(input.Length);
        Parallelism.For(runs * piecesPerRun, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (first, end) =>
        {
            ReadOnlySpan<T> x = input.Span;
            for (int p = first; p < end; p++)
            {
                int offset = p % piecesPerRun * pieceLength, count = Math.Min(pieceLength, length - offset);
                var piece = new Runs(p / piecesPerRun * length + offset, 1, count, 0);
                var (mean, variance) = Vector512.IsHardwareAccelerated && !narrow ? PieceMoments<T, Simd512<T>, Simd512<double>>(x, piece)
                    : Vector256.IsHardwareAccelerated ? PieceMoments<T, Simd256<T>, Simd256<double>>(x, piece)
                    : PieceMoments<T, Simd128<T>, Simd128<double>>(x, piece);
                (pieceStatistics[2 * p], pieceStatistics[2 * p + 1]) = (mean, variance * count);
            }
        }, pieceLength);
        Span<double> groupMean = statistics.Mean.Span, groupVariance = statistics.Variance.Span, groupInvStd = statistics.InvStd.Span;
        for (int c = 0; c < channels; c++)
        {
            double count = 0, mean = 0, m2 = 0;
            for (int n = 0; n < layout.Outer; n++)
                for (int k = 0, p = (n * channels + c) * piecesPerRun; k < piecesPerRun; k++, p++)
                    Merge(ref count, ref mean, ref m2, Math.Min(pieceLength, length - k * pieceLength), pieceStatistics[2 * p], pieceStatistics[2 * p + 1]);
            groupMean[c] = mean;
            groupVariance[c] = Math.Max(m2 / count, 0);
            groupInvStd[c] = 1 / Math.Sqrt(groupVariance[c] + eps);
        }
        BufferPool<double>.Shared.Return(pieceStatistics);
        ForwardWithStatistics(input, output, plan, weight, bias, statistics);
    }

    /// <summary>The backward pass of the batch path with the statistics from the batch: per channel Σdy into
    /// unitSums[c] and Σdy·x̂ into unitSums[C + c], and dx from them (<see cref="BackwardFromChannelSums"/>) unless
    /// <paramref name="gradInput"/> is empty.</summary>
    private static void BatchBackward<T>(ReadOnlyMemory<T> input, ReadOnlyMemory<T> gradOutput, Memory<T> gradInput, NormalizationLayout layout,
        ReadOnlyMemory<T> weight, GroupStatistics statistics, double[] unitSums)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int channels = layout.Groups, runs = layout.Outer * channels, length = layout.Run;
        // runSums[2·r] and [2·r + 1]: Σdy and Σdy·(x − c) of run r, with c its channel's mean rounded to T.
        double[] runSums = BufferPool<double>.Shared.Rent(2 * runs);
        bool narrow = ReadsNarrow<T>(input.Length);
        Parallelism.For(runs, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (first, end) =>
        {
            ReadOnlySpan<T> x = input.Span, dy = gradOutput.Span;
            ReadOnlySpan<double> mean = statistics.Mean.Span;
            for (int r = first; r < end; r++)
            {
                T center = T.CreateTruncating(mean[r % channels]);
                var run = new Runs(r * length, 1, length, 0);
                (runSums[2 * r], runSums[2 * r + 1]) = narrow ? NormalizationSimd.CenteredSums<T, Simd256<T>, Simd256<double>>(dy, T.Zero, x, center, run)
                    : NormalizationSimd.CenteredSums(dy, T.Zero, x, center, run);
            }
        }, 2L * length);
        Span<double> sumDy = unitSums.AsSpan(0, channels), sumDyXhat = unitSums.AsSpan(channels, channels);
        for (int c = 0; c < channels; c++)
        {
            double dySum = 0, centeredSum = 0;
            for (int r = c; r < runs; r += channels)
            {
                dySum += runSums[2 * r];
                centeredSum += runSums[2 * r + 1];
            }
            // Σ dy·(x − μ) = Σ dy·(x − c) − (μ − c)·Σ dy.
            double mean = statistics.Mean.Span[c];
            sumDy[c] = dySum;
            sumDyXhat[c] = (centeredSum - (mean - double.CreateTruncating(T.CreateTruncating(mean))) * dySum) * statistics.InvStd.Span[c];
        }
        BufferPool<double>.Shared.Return(runSums);
        if (!gradInput.IsEmpty) BackwardFromChannelSums(input, gradOutput, gradInput, layout, weight, statistics, sumDy, sumDyXhat, layout.GroupSize);
    }

    /// <summary><see cref="MeanAndVariance"/> (centred) of one piece at the vector width
    /// <typeparamref name="TVector"/>, with the same bits: its sums come from <see cref="NormalizationSimd.CenteredSquares{T, TVector, TWide}"/>,
    /// the general sums' loop for one contiguous span.</summary>
    private static (double Mean, double Variance) PieceMoments<T, TVector, TWide>(ReadOnlySpan<T> x, Runs piece)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TVector : struct, IWideningVector<TVector, T, TWide> where TWide : struct, ISimdVector<TWide, double>
    {
        double count = (double)piece.Count * piece.Length;
        T center = Pilot(x, piece);
        ReadOnlySpan<T> run = x.Slice(piece.First, piece.Length);
        var (sum, squares) = NormalizationSimd.CenteredSquares<T, TVector, TWide>(run, center);
        double shift = sum / count;
        if (shift * shift > squares / count / 2)
        {
            center = T.CreateTruncating(double.CreateTruncating(center) + shift);
            (sum, squares) = NormalizationSimd.CenteredSquares<T, TVector, TWide>(run, center);
            shift = sum / count;
        }
        return (double.CreateTruncating(center) + shift, Math.Max(squares / count - shift * shift, 0));
    }

    /// <summary>Adds a part of (count_B, mean_B, M₂_B) to the running (count, mean, M₂) by the pairwise update of
    /// Chan, Golub &amp; LeVeque (1979): δ = mean_B − mean, mean += δ·n_B/n, M₂ += M₂_B + δ²·n·n_B/n with n the
    /// combined count. Exact for a constant channel (δ = 0) and free of the cancellation of Σx² − (Σx)²/n.</summary>
    internal static void Merge(ref double count, ref double mean, ref double m2, double countB, double meanB, double m2B)
    {
        double total = count + countB, delta = meanB - mean;
        mean += delta * (countB / total);
        m2 += m2B + delta * delta * (count * countB / total);
        count = total;
    }
}
