namespace NormSharp.Benchmarks;

/// <summary>
/// Quick mode for the normalization layers (<c>-- quick normalization</c>): milliseconds and GB/s (8 bytes per
/// element forward, 16 forward+backward) for every <see cref="NormalizationCase"/> at 1 and 2 threads, next to the
/// machine's copy bandwidth measured in the same run (Span.CopyTo of a 256 MiB buffer: 8 bytes per float element,
/// one read and one write).
/// </summary>
public sealed class QuickNormalization : IQuickBenchmark
{
    public string Name => "Normalization";

    public void Run(TextWriter output)
    {
        int saved = Parallelism.ThreadCount;
        try
        {
            var copy = new Dictionary<int, double>();
            foreach (int threads in new[] { 1, 2 }) copy[threads] = CopyBandwidth(threads);
            GC.Collect(); // release the copy buffers before the timed cases
            GC.WaitForPendingFinalizers();
            output.WriteLine($"copy bandwidth (Span.CopyTo, 256 MiB, 8 B/element): 1 thread {copy[1]:F1} GB/s, 2 threads {copy[2]:F1} GB/s");
            output.WriteLine();
            output.WriteLine("| case | threads | train fwd ms | GB/s | eval fwd ms | GB/s | fwd+bwd ms | GB/s | best / copy |");
            output.WriteLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
            foreach (NormalizationCase c in NormalizationCase.All)
            {
                var (layer, input, gradOutput) = c.Build();
                foreach (int threads in new[] { 1, 2 })
                {
                    Parallelism.ThreadCount = threads;
                    // Warm up until the JIT has tiered the kernels up (their loops start as unoptimized code).
                    var warmUp = System.Diagnostics.Stopwatch.StartNew();
                    while (warmUp.Elapsed.TotalSeconds < 0.2) NormalizationCase.ForwardBackward(layer.Train(), input, gradOutput);
                    double n = input.Length;
                    layer.Train();
                    double train = QuickTimer.MedianSeconds(() => NormalizationCase.Forward(layer, input), minSeconds: 0.5);
                    double both = QuickTimer.MedianSeconds(() => NormalizationCase.ForwardBackward(layer, input, gradOutput), minSeconds: 0.5);
                    layer.Eval();
                    double eval = QuickTimer.MedianSeconds(() => NormalizationCase.Forward(layer, input), minSeconds: 0.5);
                    double trainRate = 8 * n / train / 1e9, evalRate = 8 * n / eval / 1e9, bothRate = 16 * n / both / 1e9;
                    output.WriteLine($"| {c.Name} | {threads} | {train * 1e3:F3} | {trainRate:F1} | {eval * 1e3:F3} | {evalRate:F1} | {both * 1e3:F3} | {bothRate:F1} | " +
                        $"{Math.Max(trainRate, Math.Max(evalRate, bothRate)) / copy[threads]:P0} |");
                }
            }
        }
        finally { Parallelism.ThreadCount = saved; }
    }

    /// <summary>GB/s of copying an initialized 256 MiB float buffer, split into one contiguous part per thread.</summary>
    private static double CopyBandwidth(int threads)
    {
        const int length = 64 << 20;
        float[] source = new float[length], destination = new float[length];
        for (int i = 0; i < length; i++) source[i] = i; // touch every page: untouched pages would read as a shared zero page
        destination.AsSpan().Fill(1);
        double seconds = QuickTimer.MedianSeconds(() =>
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            {
                int start = (int)((long)length * t / threads), end = (int)((long)length * (t + 1) / threads);
                source.AsSpan(start, end - start).CopyTo(destination.AsSpan(start, end - start));
            }), minSeconds: 1.0);
        return 8.0 * length / seconds / 1e9;
    }
}
