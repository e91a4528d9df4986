using BenchmarkDotNet.Attributes;
using NormSharp.Kernels;

namespace NormSharp.Benchmarks;

/// <summary>One float32 GEMM problem: C (m×n) = op(A) (m×k) · op(B) (k×n).</summary>
public sealed record GemmShape(string Name, int M, int N, int K, bool TransA, bool TransB)
{
    /// <summary>Floating-point operations of one multiply (a multiply and an add per term).</summary>
    public double Flops => 2.0 * M * N * K;

    public override string ToString() => Name;

    /// <summary>The square benchmark and the seed CNN's Dense layers at batch 128 (forward y = x·Wᵀ, backward
    /// dx = dy·W and dW = dyᵀ·x).</summary>
    public static GemmShape[] All { get; } =
    {
        new("2048³ NN", 2048, 2048, 2048, false, false),
        new("2048³ NT", 2048, 2048, 2048, false, true),
        new("2048³ TN", 2048, 2048, 2048, true, false),
        new("dense 1152→128 fwd", 128, 128, 1152, false, true),
        new("dense 1152→128 dx", 128, 1152, 128, false, false),
        new("dense 1152→128 dW", 128, 1152, 128, true, false),
        new("dense 128→10 fwd", 128, 10, 128, false, true),
        new("dense 128→10 dx", 128, 128, 10, false, false),
        new("dense 128→10 dW", 10, 128, 128, true, false),
    };
}

/// <summary>Operands for one shape, filled with values in [-1, 1).</summary>
internal sealed class GemmOperands
{
    private readonly GemmShape _shape;
    private readonly float[] _a, _b, _c;

    public GemmOperands(GemmShape shape)
    {
        _shape = shape;
        var random = new Random(42);
        _a = Enumerable.Range(0, shape.M * shape.K).Select(_ => random.NextSingle() * 2 - 1).ToArray();
        _b = Enumerable.Range(0, shape.K * shape.N).Select(_ => random.NextSingle() * 2 - 1).ToArray();
        _c = new float[shape.M * shape.N];
    }

    public void Multiply() => Gemm.Multiply(_shape.TransA, _shape.TransB, _shape.M, _shape.N, _shape.K,
        _a, _shape.TransA ? _shape.M : _shape.K, _b, _shape.TransB ? _shape.K : _shape.N, _c, _shape.N, accumulate: false);
}

/// <summary>BenchmarkDotNet suite: <c>--filter *GemmBenchmarks*</c>.</summary>
[MemoryDiagnoser]
public class GemmBenchmarks
{
    private GemmOperands _operands = null!;
    private int _savedThreads;

    [Params(1, 2)]
    public int Threads { get; set; }

    [ParamsSource(nameof(Shapes))]
    public GemmShape Shape { get; set; } = GemmShape.All[0];

    public static IEnumerable<GemmShape> Shapes => GemmShape.All;

    [GlobalSetup]
    public void Setup()
    {
        _savedThreads = Parallelism.ThreadCount;
        Parallelism.ThreadCount = Threads;
        _operands = new GemmOperands(Shape);
    }

    [GlobalCleanup]
    public void Cleanup() => Parallelism.ThreadCount = _savedThreads;

    [Benchmark]
    public void Multiply() => _operands.Multiply();
}

/// <summary>Quick mode (<c>-- quick gemm</c>): GFLOP/s (2·m·n·k per second) of each shape at 1 and 2 threads.</summary>
public sealed class QuickGemm : IQuickBenchmark
{
    public string Name => "gemm";

    public void Run(TextWriter output)
    {
        int saved = Parallelism.ThreadCount;
        output.WriteLine("| shape | m×n×k | 1 thread GFLOP/s | 2 threads GFLOP/s |");
        output.WriteLine("|---|---|---:|---:|");
        foreach (GemmShape shape in GemmShape.All)
        {
            var operands = new GemmOperands(shape);
            var rates = new[] { 1, 2 }.Select(threads =>
            {
                Parallelism.ThreadCount = threads;
                return shape.Flops / QuickTimer.MedianSeconds(operands.Multiply, minSeconds: 0.5) / 1e9;
            }).ToArray();
            output.WriteLine($"| {shape.Name} | {shape.M}×{shape.N}×{shape.K} | {rates[0]:F1} | {rates[1]:F1} |");
        }
        Parallelism.ThreadCount = saved;
    }
}
