using NormSharp.Keras;
using Dropout = NormSharp.Nn.Dropout;
using Flatten = NormSharp.Nn.Flatten;
using Sequential = NormSharp.Nn.Sequential;
using NormSharp.Nn;
using NormSharp.Optim;

namespace NormSharp.Onnx.Tests;

/// <summary>The networks the export and import tests use, each with the per-sample input shape it takes. Networks
/// with BatchNorm are trained a few steps first, so that the running statistics, the batch counters and the weights
/// are not their initial values.</summary>
public static class TestNetworks
{
    /// <summary>Every network by name.</summary>
    public static IReadOnlyList<string> Names { get; } = new[]
    {
        "seed-cnn", "seed-cnn-small", "gan-generator", "mlp-layernorm", "groupnorm-instancenorm-avgpool-sigmoid", "convolutions-and-pooling", "features",
    };

    /// <summary>The networks with a BatchNorm right after a Conv2d, ConvTranspose2d or Linear (which folding removes).</summary>
    public static IReadOnlyList<string> Foldable { get; } = new[] { "seed-cnn", "gan-generator", "convolutions-and-pooling", "features" };

    /// <summary>Builds network <paramref name="name"/> (seeded, so each call gives the same weights).</summary>
    public static (Sequential Network, int[] SampleShape) Create(string name)
    {
        var random = new RandomGenerator(7);
        (Sequential network, int[] sample) = name switch
        {
            "seed-cnn" => ((Sequential)SeedModels.Cnn(generator: random).Network, new[] { 1, 28, 28 }),
            "seed-cnn-small" => ((Sequential)SeedModels.SmallCnn(generator: random).Network, new[] { 1, 28, 28 }),
            "gan-generator" => (GanGenerator(random), new[] { 100 }),
            "mlp-layernorm" => ((Sequential)SeedModels.Mlp(NormalizationKind.Layer, generator: random).Network, new[] { 1, 28, 28 }),
            "groupnorm-instancenorm-avgpool-sigmoid" => (GroupAndInstanceNorm(random), new[] { 3, 16, 16 }),
            "convolutions-and-pooling" => (ConvolutionsAndPooling(random), new[] { 2, 15, 13 }),
            "features" => (Features(random), new[] { 6, 10 }),
            _ => throw new ArgumentException($"no test network '{name}'"),
        };
        RandomizeAffine(network, random);
        TrainFewSteps(network, sample, steps: 3, random);
        network.Eval();
        return (network, sample);
    }

    /// <summary>The seed GAN's generator: Dense 128·7·7 → Reshape(128, 7, 7) → (ConvTranspose2d 3×3 stride 2 with
    /// output padding → BatchNorm2d → LeakyReLU 0.2) × 2 → Conv2d 7×7 "same" → Tanh; a 100-d latent to a 28×28 image.</summary>
    public static Sequential GanGenerator(RandomGenerator random) => new(
        new Linear(100, 128 * 7 * 7, generator: random),
        new Reshape(128, 7, 7),
        new ConvTranspose2d(128, 64, 3, stride: 2, padding: 1, outputPadding: 1, generator: random),
        new BatchNorm2d(64),
        new LeakyReLU(0.2),
        new ConvTranspose2d(64, 32, 3, stride: 2, padding: 1, outputPadding: 1, generator: random),
        new BatchNorm2d(32),
        new LeakyReLU(0.2),
        new Conv2d(32, 1, 7, padding: "same", generator: random),
        new Tanh());

    private static Sequential GroupAndInstanceNorm(RandomGenerator random) => new(
        new Conv2d(3, 8, 3, padding: 1, generator: random),
        new GroupNorm(4, 8),
        new Sigmoid(),
        new InstanceNorm2d(8, affine: true),
        new AvgPool2d(3, stride: 2, padding: 1),
        new Conv2d(8, 6, 1, generator: random),
        new InstanceNorm2d(6),
        new GroupNorm(3, 6, affine: false),
        new AvgPool2d(2, padding: 1, countIncludePad: false),
        new Flatten(),
        new Linear(6 * 5 * 5, 4, generator: random),
        new Sigmoid());

    private static Sequential ConvolutionsAndPooling(RandomGenerator random) => new(
        new Conv2d(2, 6, 4, padding: "same", generator: random),              // even kernel: pads 1 before, 2 after
        new BatchNorm2d(6),
        new LeakyReLU(0.1),
        new Conv2d(6, 6, 3, stride: 2, padding: (1, 2), dilation: 2, generator: random),
        new BatchNorm2d(6, affine: false),
        new ReLU(),
        new MaxPool2d(3, stride: 2, padding: 1, ceilMode: true),
        new ConvTranspose2d(6, 4, (3, 2), stride: (2, 1), padding: (1, 0), outputPadding: (1, 0), dilation: 1, bias: false, generator: random),
        new KerasBatchNormalization(4),
        new InstanceNorm2d(4, trackRunningStats: true, affine: true),
        new AvgPool2d(2, stride: 1, ceilMode: true),
        new Conv2d(4, 3, 1, padding: "valid", bias: false, generator: random),
        new Softmax(1),
        new Dropout(0.3),
        new Identity());

    private static Sequential Features(RandomGenerator random) => new(
        new Linear(10, 12, generator: random),                                 // 3-D input: MatMul + Add
        new LayerNorm(new[] { 6, 12 }, eps: 1e-4),
        new Linear(12, 8, bias: false, generator: random),
        new RMSNorm(8),
        new InstanceNorm1d(6, affine: true),
        new RMSNorm(new[] { 6, 8 }, eps: 1e-6, elementwiseAffine: false),
        new LayerNorm(8, elementwiseAffine: false),
        new Flatten(),
        new Linear(48, 16, generator: random),
        new BatchNorm1d(16, momentum: null),
        new Tanh(),
        new KerasBatchNormalization(16, axis: -1, center: false),
        new Reshape(4, 4),
        new LayerNorm(4, bias: false),
        new Flatten(),
        new LogSoftmax(1));

    /// <summary>Sets every γ and β to random values, so that a normalization layer's affine step is visible.</summary>
    private static void RandomizeAffine(Module network, RandomGenerator random)
    {
        foreach (var (_, module) in network.NamedModules())
            if (module is NormBase or LayerNorm or GroupNorm or RMSNorm)
                foreach (var (name, parameter) in module.NamedParameters())
                    parameter.CopyFrom(Tensor.Normal(parameter.Shape, name == "weight" ? 1 : 0, 0.3, generator: random));
    }

    /// <summary>A few Adam steps on random inputs and targets (mean squared error) in training mode: BatchNorm layers
    /// move their running statistics and count batches, and the weights change.</summary>
    public static void TrainFewSteps(Module network, int[] sampleShape, int steps, RandomGenerator random)
    {
        network.Train();
        var optimizer = new Adam(network.Parameters(), 1e-2);
        for (int step = 0; step < steps; step++)
            using (TensorScope.Begin())
            {
                Tensor x = Tensor.Normal(new[] { 8 }.Concat(sampleShape).ToArray(), 0.5, 2, generator: random);
                Tensor y = network.Forward(x);
                Tensor loss = Functional.MseLoss(y, Tensor.Normal(y.Shape, generator: random));
                optimizer.ZeroGrad();
                loss.Backward();
                optimizer.Step();
            }
    }
}
