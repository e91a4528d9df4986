using BenchmarkDotNet.Attributes;
using NormSharp.Nn;

namespace NormSharp.Benchmarks;

/// <summary>One of the seed CNN's convolutions (3×3, padding "same") on a batch of 128, ready to run forward or
/// forward + backward.</summary>
public sealed class SeedConvolution
{
    /// <summary>The seed CNN's three convolutions: name, input channels, output channels, image side.</summary>
    public static readonly (string Name, int InChannels, int OutChannels, int Size)[] Layers =
    {
        ("conv1", 1, 32, 28),
        ("conv2", 32, 64, 14),
        ("conv3", 64, 128, 7),
    };

    public const int Batch = 128;

    private readonly Conv2d _conv;
    private readonly Tensor _input;
    private readonly Tensor _gradOutput;

    public SeedConvolution(string name)
    {
        var (_, inChannels, outChannels, size) = Layers.Single(l => l.Name == name);
        _conv = new Conv2d(inChannels, outChannels, 3, padding: "same", generator: new RandomGenerator(1));
        _input = Tensor.Normal(new[] { Batch, inChannels, size, size }, generator: new RandomGenerator(2));
        // As in the network: the first layer's input is data, the later layers' inputs need a gradient.
        _input.RequiresGrad = inChannels > 1;
        _gradOutput = Tensor.Normal(new[] { Batch, outChannels, size, size }, generator: new RandomGenerator(3));
        Name = name;
        ForwardFlops = 2.0 * Batch * outChannels * size * size * inChannels * 9;
        // The weight pass costs one forward, the input pass another when the input needs a gradient.
        BackwardFlops = ForwardFlops * (_input.RequiresGrad ? 2 : 1);
    }

    public string Name { get; }

    /// <summary>2·N·Cout·Hout·Wout·Cin·kh·kw.</summary>
    public double ForwardFlops { get; }

    public double BackwardFlops { get; }

    public void Forward()
    {
        using var scope = TensorScope.Begin();
        using (Tensor.NoGrad()) _conv.Forward(_input);
    }

    public void ForwardBackward()
    {
        using var scope = TensorScope.Begin();
        _conv.Forward(_input).Backward(_gradOutput);
    }
}

/// <summary>The seed CNN's convolutions at batch 128, forward and forward + backward, at 1 and 2 threads.</summary>
[MemoryDiagnoser]
public class ConvBenchmarks
{
    private SeedConvolution _layer = null!;

    [Params("conv1", "conv2", "conv3")]
    public string Layer { get; set; } = "conv1";

    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        Parallelism.ThreadCount = Threads;
        _layer = new SeedConvolution(Layer);
    }

    [Benchmark]
    public void Forward() => _layer.Forward();

    [Benchmark]
    public void ForwardBackward() => _layer.ForwardBackward();
}

/// <summary>Quick mode: milliseconds and GFLOP/s of the seed convolutions, forward and forward + backward.</summary>
public sealed class QuickConv : IQuickBenchmark
{
    public string Name => "conv";

    public void Run(TextWriter output)
    {
        int saved = Parallelism.ThreadCount;
        output.WriteLine($"Batch {SeedConvolution.Batch}, 3×3 kernels, padding same; GFLOP/s counts 2·N·Cout·H·W·Cin·9 per forward.");
        output.WriteLine();
        output.WriteLine("| layer | threads | forward ms | forward GFLOP/s | fwd+bwd ms | fwd+bwd GFLOP/s |");
        output.WriteLine("|---|---:|---:|---:|---:|---:|");
        foreach (var (name, _, _, _) in SeedConvolution.Layers)
        {
            var layer = new SeedConvolution(name);
            foreach (int threads in new[] { 1, 2 })
            {
                Parallelism.ThreadCount = threads;
                double forward = QuickTimer.MedianSeconds(layer.Forward, minSeconds: 1, minRuns: 3);
                double both = QuickTimer.MedianSeconds(layer.ForwardBackward, minSeconds: 1, minRuns: 3);
                output.WriteLine($"| {name} | {threads} | {forward * 1e3:F1} | {layer.ForwardFlops / forward / 1e9:F2} | {both * 1e3:F1} | {(layer.ForwardFlops + layer.BackwardFlops) / both / 1e9:F2} |");
            }
        }
        Parallelism.ThreadCount = saved;
    }
}
