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
        if (LibTorch.Available) output.WriteLine(LibTorch.DescribeAllocator() + ".");
        output.WriteLine("speed-up = libtorch time / NormSharp time (above 1: NormSharp is faster); alloc = NormSharp's managed bytes per call, all threads.");
        int saved = Parallelism.ThreadCount;
        CopyYardstick? copy = selected.Any(w => w.Unit == RateUnit.Bytes) ? new CopyYardstick() : null;
        try
        {
            if (copy is not null)
            {
                output.Write("copy bandwidth (Span.CopyTo of 256 MiB, 8 B/element):");
                foreach (int t in threadCounts) output.Write($" {t} thread{(t == 1 ? "" : "s")} {copy.Bandwidth(t):F1} GB/s;");
                output.WriteLine();
                if (selected.Any(w => w.ComparedWithCopy))
                    output.WriteLine("rows on tensors larger than the cache also give their share of a copy timed in alternation with them (rate, share of copy, copy GB/s).");
                GC.Collect();
            }
            if (threadCounts.Contains(1))
            {
                var (cpu, restore) = CorePinning.PinToOneCpu();
                restore?.Dispose();
                output.WriteLine(cpu >= 0
                    ? $"one-thread rows: both engines on logical CPU {cpu} (the calling thread pinned: the cores of a VM need not be alike)."
                    : "one-thread rows: not pinned to a core (thread affinity not available here).");
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
                    using var pinned = threads == 1 ? CorePinning.PinToOneCpu().Restore : null;
                    Action? yardstick = w.ComparedWithCopy && copy is not null ? () => copy.Copy(threads) : null;
                    var (ours, theirs, allocated, copied) = Measure(normSharp, libTorch, secondsPerCase, yardstick);
                    string rate = FormatRate(w, ours);
                    if (yardstick is not null)
                    {
                        double copyRate = CopyYardstick.BytesPerCall / copied / 1e9;
                        rate += string.Create(CultureInfo.InvariantCulture, $", {100 * w.Rate(ours) / copyRate:F0} % of copy {copyRate:F1}");
                    }
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"| {w.Suite} | {w.Name} | {threads} | {ours * 1e3:F3} | {rate} | " +
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
    /// other engine's second core if single calls alternated. A <paramref name="yardstick"/> (the copy that bandwidth
    /// rows are held against) takes its turn after each pair of blocks; its median is the last value (NaN without).</summary>
    internal static (double Ours, double Theirs, double AllocatedPerCall, double Yardstick) Measure(Action ours, Action? theirs, double seconds,
        Action? yardstick = null)
    {
        // Warm-up: the JIT tiers NormSharp's kernels up after a few calls; libtorch builds its caches.
        Block(ours, Math.Min(0.5, seconds), null);
        if (theirs is not null) Block(theirs, Math.Min(0.5, seconds), null);
        // Capacity for every call of a fast case, so that growing the lists allocates nothing inside a block.
        var ourTimes = new List<double>(1 << 20);
        var theirTimes = new List<double>(1 << 20);
        var yardstickTimes = new List<double>(1 << 10);
        double ourTotal = 0, theirTotal = 0;
        long allocated = 0;
        while (ourTotal < seconds || (theirs is not null && theirTotal < seconds))
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            ourTotal += Block(ours, 0.1, ourTimes);
            allocated += GC.GetTotalAllocatedBytes(precise: true) - before;
            if (theirs is not null) theirTotal += Block(theirs, 0.1, theirTimes);
            if (yardstick is not null) Block(yardstick, 0.1, yardstickTimes);
        }
        return (Median(ourTimes), theirs is null ? double.NaN : Median(theirTimes), (double)allocated / ourTimes.Count,
            yardstick is null ? double.NaN : Median(yardstickTimes));
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
