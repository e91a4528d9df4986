using BenchmarkDotNet.Running;
using NormSharp.Benchmarks.SideBySide;

namespace NormSharp.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project bench/NormSharp.Benchmarks -- quick [--threads 1,2] [--seconds S] [word...]</c>
/// runs the quick side-by-side comparison with libtorch (the workloads whose suite or name contains a word: gemm,
/// normalization, conv, seed-cnn, layers, or any part of a case name); any other arguments go to BenchmarkDotNet
/// (e.g. <c>--filter *SideBySide*</c>). <c>-- onnx [--threads 1,2] [--seconds S]</c> times an imported ResNet-style
/// ONNX graph in NormSharp against ONNX Runtime (<see cref="OnnxRuntimeComparison"/>).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (!LibTorch.Available && LibTorch.RestartWithShimIfNeeded(args) is int exitCode) return exitCode;
        if (args.Length > 0 && args[0] == "onnx")
        {
            var (threadCounts, secondsPerCase, _) = QuickArguments(args);
            OnnxRuntimeComparison.Run(Console.Out, threadCounts, secondsPerCase);
            return 0;
        }
        if (args.Length > 0 && args[0] == "quick")
        {
            var (threads, seconds, filters) = QuickArguments(args);
            QuickComparison.Run(Console.Out, filters, threads, seconds);
            return 0;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }

    /// <summary>The arguments after the mode word: --threads 1,2, --seconds S, and filter words.</summary>
    private static (int[] Threads, double Seconds, List<string> Filters) QuickArguments(string[] args)
    {
        var filters = new List<string>();
        int[] threads = { 1, 2 };
        double seconds = 1.0;
        for (int i = 1; i < args.Length; i++)
        {
            if (args[i] == "--threads" && i + 1 < args.Length)
                threads = args[++i].Split(',').Select(t => int.TryParse(t, out int n) && n >= 1 ? n
                    : throw new ArgumentException($"--threads takes a comma-separated list of counts ≥ 1, got '{args[i]}'.")).ToArray();
            else if (args[i] == "--seconds" && i + 1 < args.Length)
                seconds = double.TryParse(args[++i], System.Globalization.CultureInfo.InvariantCulture, out double s) && s > 0 ? s
                    : throw new ArgumentException($"--seconds takes a positive number, got '{args[i]}'.");
            else filters.Add(args[i]);
        }
        return (threads, seconds, filters);
    }
}
