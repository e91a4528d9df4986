using BenchmarkDotNet.Attributes;

namespace NormSharp.Benchmarks.SideBySide;

/// <summary>
/// BenchmarkDotNet over every <see cref="Workload"/>: libtorch is the baseline, so the Ratio column is NormSharp's
/// time over libtorch's (below 1: NormSharp is faster). Run with
/// <c>dotnet run -c Release --project bench/NormSharp.Benchmarks -- --filter *SideBySide*</c> (add e.g.
/// <c>--filter *SideBySide* --anyCategories conv</c> … or narrow by parameter with BenchmarkDotNet's filters).
/// </summary>
[MemoryDiagnoser]
public class SideBySideBenchmarks
{
    private Action _normSharp = null!;
    private Action? _libTorch;

    [ParamsSource(nameof(Workloads))]
    public Workload Case { get; set; } = null!;

    [Params(1, 2)]
    public int Threads { get; set; }

    public static IEnumerable<Workload> Workloads => Workload.All;

    [GlobalSetup]
    public void Setup()
    {
        Parallelism.ThreadCount = Threads;
        LibTorch.SetThreads(Threads);
        (_normSharp, _libTorch) = Case.Prepare();
    }

    [Benchmark]
    public void NormSharpEngine() => _normSharp();

    [Benchmark(Baseline = true)]
    public void LibTorchEngine() => (_libTorch ?? throw new InvalidOperationException(SideBySide.LibTorch.Describe()))();
}
