using System.Reflection;
using BenchmarkDotNet.Running;

namespace NormSharp.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project bench/NormSharp.Benchmarks -- [BenchmarkDotNet arguments]</c> runs the
/// BenchmarkDotNet suites (e.g. <c>--filter *Gemm*</c>); <c>-- quick [name...]</c> runs the side-by-side quick mode:
/// every <see cref="IQuickBenchmark"/> (or those whose name contains one of the given words), printed as a table.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "quick")
        {
            string[] filters = args.Skip(1).ToArray();
            var suites = Assembly.GetExecutingAssembly().GetTypes()
                .Where(t => typeof(IQuickBenchmark).IsAssignableFrom(t) && !t.IsAbstract && !t.IsInterface)
                .Select(t => (IQuickBenchmark)Activator.CreateInstance(t)!)
                .Where(s => filters.Length == 0 || filters.Any(f => s.Name.Contains(f, StringComparison.OrdinalIgnoreCase)))
                .OrderBy(s => s.Name)
                .ToList();
            foreach (IQuickBenchmark suite in suites)
            {
                Console.WriteLine($"## {suite.Name}");
                suite.Run(Console.Out);
                Console.WriteLine();
            }
            return 0;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}

/// <summary>A fast side-by-side measurement (seconds, not minutes) that prints a Markdown table.</summary>
public interface IQuickBenchmark
{
    /// <summary>The suite's name, matched by the quick mode's filter words.</summary>
    string Name { get; }

    /// <summary>Runs the measurements and writes a Markdown table.</summary>
    void Run(TextWriter output);
}

/// <summary>Timing helper for quick mode: warms up, then reports the median of several repetitions.</summary>
public static class QuickTimer
{
    /// <summary>Median seconds per call of <paramref name="action"/> after a warm-up, repeating for at least
    /// <paramref name="minSeconds"/>.</summary>
    public static double MedianSeconds(Action action, double minSeconds = 1.0, int minRuns = 5)
    {
        action();
        var times = new List<double>();
        var total = System.Diagnostics.Stopwatch.StartNew();
        while (times.Count < minRuns || total.Elapsed.TotalSeconds < minSeconds)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            action();
            times.Add(sw.Elapsed.TotalSeconds);
            if (times.Count > 1000) break;
        }
        times.Sort();
        return times[times.Count / 2];
    }
}
