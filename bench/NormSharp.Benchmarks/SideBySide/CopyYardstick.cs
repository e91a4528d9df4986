using System.Diagnostics;

namespace NormSharp.Benchmarks.SideBySide;

/// <summary>
/// The copy bandwidth that the normalization rows on shapes larger than the cache are held against: Span.CopyTo of
/// 256 MiB, split into one contiguous part per thread, counted as 8 bytes an element (read and write; its stores read
/// each line first, so the bus carries 12). Timed in the same alternation as the row it judges, so that a change in
/// the machine's state during the run (other tenants of the host, memory reclaim) moves both figures alike: measured
/// once before the rows, the share swung by 10–20 points between runs.
/// </summary>
public sealed class CopyYardstick
{
    private const int Length = 64 << 20;

    /// <summary>Tensors above this many bytes are compared with the copy: more than this VM's last-level cache holds
    /// between passes (NormSharp's kernels switch to streaming stores at the same size).</summary>
    public const double CacheBytes = 32 << 20;

    private readonly float[] source = new float[Length], destination = new float[Length];

    /// <summary>Allocates both buffers and touches every page (an untouched page reads as the shared zero page).</summary>
    public CopyYardstick()
    {
        for (int i = 0; i < Length; i++) source[i] = i;
        destination.AsSpan().Fill(1);
    }

    /// <summary>Bytes one <see cref="Copy"/> is counted as moving.</summary>
    public static double BytesPerCall => 8.0 * Length;

    /// <summary>One copy of the whole buffer on <paramref name="threads"/> threads.</summary>
    public void Copy(int threads) =>
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            int first = (int)((long)Length * t / threads), end = (int)((long)Length * (t + 1) / threads);
            source.AsSpan(first, end - first).CopyTo(destination.AsSpan(first, end - first));
        });

    /// <summary>GB/s of the median of seven copies on <paramref name="threads"/> threads.</summary>
    public double Bandwidth(int threads)
    {
        var times = new List<double>();
        for (int run = 0; run < 7; run++)
        {
            long start = Stopwatch.GetTimestamp();
            Copy(threads);
            times.Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        times.Sort();
        return BytesPerCall / times[times.Count / 2] / 1e9;
    }
}
