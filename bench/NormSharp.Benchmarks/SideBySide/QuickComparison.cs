using System.Diagnostics;
using System.Globalization;
using NormSharp.Kernels;

namespace NormSharp.Benchmarks.SideBySide;

/// <summary>
/// The quick side-by-side mode (seconds per case, not BenchmarkDotNet's minutes): for each workload and thread count,
/// warms both engines up, then times them in alternation (NormSharp, libtorch, NormSharp, …) so that both see the same
/// machine state, and prints medians, rates and the speed-up as a Markdown table. It also reports the machine's copy
/// bandwidth (the yardstick for the normalization rows) and the managed bytes NormSharp allocates per call.
/// </summary>
public static class QuickComparison
{
    /// <summary>Runs the workloads whose suite or name contains one of <paramref name="filters"/> (all when empty)
    /// at each of <paramref name="threadCounts"/>, each side timed for at least <paramref name="secondsPerCase"/>.</summary>
    public static void Run(TextWriter output, IReadOnlyList<string> filters, IReadOnlyList<int> threadCounts, double secondsPerCase)
    {
        var selected = Workload.All.Where(w => filters.Count == 0 || filters.Any(f =>
            w.Suite.Contains(f, StringComparison.OrdinalIgnoreCase) || w.Name.Contains(f, StringComparison.OrdinalIgnoreCase))).ToList();
        output.WriteLine($"NormSharp {typeof(Tensor).Assembly.GetName().Version} vs {LibTorch.Describe()}");
        output.WriteLine($"{Environment.ProcessorCount} logical cores, .NET {Environment.Version}, {MachineDescription()}; " +
            $"times are medians over alternating blocks, at least {secondsPerCase:0.##} s per engine and case.");
        output.WriteLine(VectorWidth.Describe() + ".");
        output.WriteLine("speed-up = libtorch time / NormSharp time (above 1: NormSharp is faster); alloc = NormSharp's managed bytes per call, all threads.");
        int saved = Parallelism.ThreadCount;
        try
        {
            if (selected.Any(w => w.Unit == RateUnit.Bytes))
            {
                output.Write("copy bandwidth (Span.CopyTo of 256 MiB, 8 B/element):");
                foreach (int t in threadCounts) output.Write($" {t} thread{(t == 1 ? "" : "s")} {CopyBandwidth(t):F1} GB/s;");
                output.WriteLine();
                GC.Collect();
            }
            output.WriteLine();
            output.WriteLine("| suite | case | threads | NormSharp ms | rate | libtorch ms | rate | speed-up | alloc |");
            output.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|---:|");
            foreach (Workload w in selected)
            {
                var (normSharp, libTorch) = w.Prepare();
                foreach (int threads in threadCounts)
                {
                    Parallelism.ThreadCount = threads;
                    LibTorch.SetThreads(threads);
                    var (ours, theirs, allocated) = Measure(normSharp, libTorch, secondsPerCase);
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"| {w.Suite} | {w.Name} | {threads} | {ours * 1e3:F3} | {FormatRate(w, ours)} | " +
                        $"{(libTorch is null ? "—" : (theirs * 1e3).ToString("F3", CultureInfo.InvariantCulture))} | {(libTorch is null ? "—" : FormatRate(w, theirs))} | " +
                        $"{(libTorch is null ? "—" : (theirs / ours).ToString("F2", CultureInfo.InvariantCulture) + "×")} | {FormatBytes(allocated)} |"));
                }
                GC.Collect();
            }
        }
        finally
        {
            Parallelism.ThreadCount = saved;
            LibTorch.SetThreads(saved);
        }
    }

    /// <summary>Median seconds per call of each engine and NormSharp's allocated bytes per call. The engines run in
    /// alternating blocks of about a tenth of a second with a short pause between them: both keep worker threads
    /// spinning for a while after a parallel call (libtorch's OpenMP team, .NET's thread pool), which would steal the
    /// other engine's second core if single calls alternated.</summary>
    internal static (double Ours, double Theirs, double AllocatedPerCall) Measure(Action ours, Action? theirs, double seconds)
    {
        // Warm-up: the JIT tiers NormSharp's kernels up after a few calls; libtorch builds its caches.
        Block(ours, Math.Min(0.5, seconds), null);
        if (theirs is not null) Block(theirs, Math.Min(0.5, seconds), null);
        // Capacity for every call of a fast case, so that growing the lists allocates nothing inside a block.
        var ourTimes = new List<double>(1 << 20);
        var theirTimes = new List<double>(1 << 20);
        double ourTotal = 0, theirTotal = 0;
        long allocated = 0;
        while (ourTotal < seconds || (theirs is not null && theirTotal < seconds))
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            ourTotal += Block(ours, 0.1, ourTimes);
            allocated += GC.GetTotalAllocatedBytes(precise: true) - before;
            if (theirs is not null) theirTotal += Block(theirs, 0.1, theirTimes);
        }
        return (Median(ourTimes), theirs is null ? double.NaN : Median(theirTimes), (double)allocated / ourTimes.Count);
    }

    /// <summary>Calls <paramref name="action"/> at least three times and for at least <paramref name="seconds"/>,
    /// adding each call's time to <paramref name="times"/>; then pauses 20 ms. Returns the seconds spent in calls.</summary>
    private static double Block(Action action, double seconds, List<double>? times)
    {
        double total = 0;
        for (int calls = 0; (calls < 3 || total < seconds) && (times is null || times.Count < times.Capacity); calls++)
        {
            long start = Stopwatch.GetTimestamp();
            action();
            double elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds;
            times?.Add(elapsed);
            total += elapsed;
        }
        Thread.Sleep(20);
        return total;
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        return values[values.Count / 2];
    }

    private static string FormatRate(Workload w, double seconds) => w.Unit switch
    {
        RateUnit.Flops => string.Create(CultureInfo.InvariantCulture, $"{w.Rate(seconds):F1} GFLOP/s"),
        RateUnit.Bytes => string.Create(CultureInfo.InvariantCulture, $"{w.Rate(seconds):F1} GB/s"),
        _ => "",
    };

    private static string FormatBytes(double bytes) => bytes switch
    {
        < 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes:F0} B"),
        < 1 << 20 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024:F1} KiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1 << 20):F1} MiB"),
    };

    /// <summary>GB/s of copying an initialized 256 MiB float buffer, split into one contiguous part per thread.</summary>
    public static double CopyBandwidth(int threads)
    {
        const int length = 64 << 20;
        float[] source = new float[length], destination = new float[length];
        for (int i = 0; i < length; i++) source[i] = i; // touch every page: untouched pages read as a shared zero page
        destination.AsSpan().Fill(1);
        var times = new List<double>();
        for (int run = 0; run < 7; run++)
        {
            long start = Stopwatch.GetTimestamp();
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            {
                int first = (int)((long)length * t / threads), end = (int)((long)length * (t + 1) / threads);
                source.AsSpan(first, end - first).CopyTo(destination.AsSpan(first, end - first));
            });
            times.Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        return 8.0 * length / Median(times) / 1e9;
    }

    /// <summary>The CPU model from /proc/cpuinfo where there is one.</summary>
    public static string MachineDescription()
    {
        try
        {
            string? line = File.Exists("/proc/cpuinfo") ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal)) : null;
            return line is null ? "CPU model unknown" : line[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (IOException) { return "CPU model unknown"; }
    }
}
