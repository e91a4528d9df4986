using System.Globalization;
using BenchmarkDotNet.Running;
using NormSharp.Benchmarks.SideBySide;

namespace NormSharp.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project bench/NormSharp.Benchmarks -- quick [--threads 1,2] [--seconds S] [--width 512|256|128] [word...]</c>
/// runs the quick side-by-side comparison with libtorch (the workloads whose suite or name contains a word: gemm,
/// normalization, conv, seed-cnn, layers, or any part of a case name; <c>memory [--steps N] [--rounds R]</c> runs
/// <see cref="MemoryComparison"/> at the first thread count); any other arguments go to BenchmarkDotNet
/// (e.g. <c>--filter *SideBySide*</c>). <c>--width</c>, in either mode, runs both engines with vectors of that many
/// bits (see <see cref="VectorWidth"/>). <c>-- onnx [--threads 1,2] [--seconds S]</c> times an imported ResNet-style
/// ONNX graph in NormSharp against ONNX Runtime (<see cref="OnnxRuntimeComparison"/>).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        int? width = null;
        int widthAt = Array.IndexOf(args, "--width");
        if (widthAt >= 0)
        {
            width = widthAt + 1 < args.Length && int.TryParse(args[widthAt + 1], out int bits) && bits is 512 or 256 or 128 ? bits
                : throw new ArgumentException($"--width takes 512, 256 or 128, got '{(widthAt + 1 < args.Length ? args[widthAt + 1] : "")}'.");
            VectorWidth.CheckSupported(width.Value);
        }
        if (LibTorch.RestartIfNeeded(args, width is int w ? VectorWidth.Environment(w) : new Dictionary<string, string>()) is int exitCode) return exitCode;
        if (width is int pinned && VectorWidth.Current != pinned)
            throw new PlatformNotSupportedException($"--width {pinned}: .NET runs {VectorWidth.Current}-bit vectors on this machine even so");
        if (widthAt >= 0) args = args.Take(widthAt).Concat(args.Skip(widthAt + 2)).ToArray();
        if (args.Length == 5 && args[0] == "memory-run")
            return MemoryComparison.RunOne(args[1], args[2], int.Parse(args[3], CultureInfo.InvariantCulture), int.Parse(args[4], CultureInfo.InvariantCulture));
        if (args.Length > 0 && args[0] == "onnx")
        {
            QuickArguments onnx = QuickArguments.Parse(args);
            OnnxRuntimeComparison.Run(Console.Out, onnx.Threads, onnx.Seconds);
            return 0;
        }
        if (args.Length > 0 && args[0] == "quick")
        {
            QuickArguments quick = QuickArguments.Parse(args);
            if (quick.Filters.Remove("memory"))
            {
                MemoryComparison.Run(Console.Out, quick.Steps, quick.Rounds, quick.Threads[0]);
                if (quick.Filters.Count == 0) return 0;
            }
            QuickComparison.Run(Console.Out, quick.Filters, quick.Threads, quick.Seconds);
            return 0;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }

    /// <summary>The arguments after the mode word: --threads 1,2, --seconds S, --steps N and --rounds R (memory), and
    /// filter words.</summary>
    private sealed record QuickArguments(int[] Threads, double Seconds, int Steps, int Rounds, List<string> Filters)
    {
        public static QuickArguments Parse(string[] args)
        {
            var filters = new List<string>();
            int[] threads = { 1, 2 };
            double seconds = 1.0;
            int steps = 500, rounds = 1;
            for (int i = 1; i < args.Length; i++)
            {
                if (args[i] == "--threads" && i + 1 < args.Length)
                    threads = args[++i].Split(',').Select(t => int.TryParse(t, out int n) && n >= 1 ? n
                        : throw new ArgumentException($"--threads takes a comma-separated list of counts ≥ 1, got '{args[i]}'.")).ToArray();
                else if (args[i] == "--seconds" && i + 1 < args.Length)
                    seconds = double.TryParse(args[++i], CultureInfo.InvariantCulture, out double s) && s > 0 ? s
                        : throw new ArgumentException($"--seconds takes a positive number, got '{args[i]}'.");
                else if (args[i] == "--steps" && i + 1 < args.Length)
                    steps = int.TryParse(args[++i], out int n) && n > MemoryComparison.WarmupSteps ? n
                        : throw new ArgumentException($"--steps takes a count above {MemoryComparison.WarmupSteps}, got '{args[i]}'.");
                else if (args[i] == "--rounds" && i + 1 < args.Length)
                    rounds = int.TryParse(args[++i], out int n) && n >= 1 ? n : throw new ArgumentException($"--rounds takes a count ≥ 1, got '{args[i]}'.");
                else filters.Add(args[i]);
            }
            return new QuickArguments(threads, seconds, steps, rounds, filters);
        }
    }
}
