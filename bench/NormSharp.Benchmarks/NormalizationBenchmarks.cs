using BenchmarkDotNet.Attributes;
using NormSharp.Nn;

namespace NormSharp.Benchmarks;

/// <summary>One benchmark shape: a layer and its input.</summary>
public sealed record NormalizationCase(string Name, int[] Shape, Func<Module> Create)
{
    /// <summary>The shapes for BatchNorm2d, BatchNorm1d and LayerNorm, and the other layers on matching
    /// activations (RMSNorm like LayerNorm, GroupNorm and InstanceNorm2d on a ResNet-style feature map).</summary>
    public static IReadOnlyList<NormalizationCase> All { get; } = new NormalizationCase[]
    {
        new("BatchNorm2d 128x32x28x28", new[] { 128, 32, 28, 28 }, () => new BatchNorm2d(32)),
        new("BatchNorm2d 128x64x14x14", new[] { 128, 64, 14, 14 }, () => new BatchNorm2d(64)),
        new("BatchNorm2d 64x64x56x56", new[] { 64, 64, 56, 56 }, () => new BatchNorm2d(64)),
        new("BatchNorm2d 32x256x14x14", new[] { 32, 256, 14, 14 }, () => new BatchNorm2d(256)),
        new("BatchNorm1d 128x128", new[] { 128, 128 }, () => new BatchNorm1d(128)),
        new("BatchNorm1d 256x1024", new[] { 256, 1024 }, () => new BatchNorm1d(1024)),
        new("LayerNorm 8192x768", new[] { 8192, 768 }, () => new LayerNorm(768)),
        new("LayerNorm 4096x1024", new[] { 4096, 1024 }, () => new LayerNorm(1024)),
        new("RMSNorm 8192x768", new[] { 8192, 768 }, () => new RMSNorm(768)),
        new("RMSNorm 4096x1024", new[] { 4096, 1024 }, () => new RMSNorm(1024)),
        new("GroupNorm(32) 32x256x14x14", new[] { 32, 256, 14, 14 }, () => new GroupNorm(32, 256)),
        new("InstanceNorm2d 32x256x14x14", new[] { 32, 256, 14, 14 }, () => new InstanceNorm2d(256, affine: true)),
    };

    /// <summary>The layer, its input (requiring a gradient) and an output gradient, ready to run.</summary>
    public (Module Layer, Tensor Input, Tensor GradOutput) Build()
    {
        Module layer = Create();
        Tensor input = Tensor.Normal(Shape, 0.5, 2, generator: new RandomGenerator(1));
        input.RequiresGrad = true;
        return (layer, input, Tensor.Normal(Shape, generator: new RandomGenerator(2)));
    }

    /// <summary>Forward, then the layer's recorded backward function on <paramref name="gradOutput"/> (dx, dγ, dβ),
    /// without the autograd engine's accumulation of dx into the input's .Grad, which would add a pass of its own.</summary>
    public static void ForwardBackward(Module layer, Tensor input, Tensor gradOutput)
    {
        using var scope = TensorScope.Begin();
        Tensor y = layer.Forward(input);
        y.GradFn!.Backward!(gradOutput);
    }

    /// <summary>One forward pass in the layer's current mode, freeing its tensors afterwards.</summary>
    public static void Forward(Module layer, Tensor input)
    {
        using var scope = TensorScope.Begin();
        using (Tensor.NoGrad()) layer.Forward(input);
    }
}

/// <summary>
/// BenchmarkDotNet suite for the normalization layers: training forward, evaluation forward and forward+backward
/// at 1 and 2 threads on every <see cref="NormalizationCase"/>. Run with
/// <c>dotnet run -c Release --project bench/NormSharp.Benchmarks -- --filter *NormalizationBenchmarks*</c>;
/// bytes moved are 8 per element forward (read x, write y) and 16 forward+backward.
/// </summary>
public class NormalizationBenchmarks
{
    private Module _layer = null!;
    private Tensor _input = null!, _gradOutput = null!;

    [Params(1, 2)]
    public int Threads { get; set; }

    [ParamsSource(nameof(CaseNames))]
    public string Case { get; set; } = "";

    public static IEnumerable<string> CaseNames => NormalizationCase.All.Select(c => c.Name);

    [GlobalSetup]
    public void Setup()
    {
        Parallelism.ThreadCount = Threads;
        (_layer, _input, _gradOutput) = NormalizationCase.All.Single(c => c.Name == Case).Build();
    }

    [Benchmark]
    public void TrainingForward()
    {
        _layer.Train();
        NormalizationCase.Forward(_layer, _input);
    }

    [Benchmark]
    public void EvalForward()
    {
        _layer.Eval();
        NormalizationCase.Forward(_layer, _input);
    }

    [Benchmark]
    public void ForwardBackward()
    {
        _layer.Train();
        NormalizationCase.ForwardBackward(_layer, _input, _gradOutput);
    }
}
