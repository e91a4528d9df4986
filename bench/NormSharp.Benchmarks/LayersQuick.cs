using System.Globalization;
using NormSharp.Nn;
using NormSharp.Optim;

namespace NormSharp.Benchmarks;

/// <summary>Quick throughput of the activations, losses and optimizer steps (float32), forward and backward.</summary>
public sealed class LayersQuick : IQuickBenchmark
{
    public string Name => "Layers: activations, losses, optimizers";

    public void Run(TextWriter output)
    {
        output.WriteLine($"threads: {Parallelism.ThreadCount}");
        output.WriteLine("| operation | shape | ms | ns/element |");
        output.WriteLine("|---|---|---:|---:|");
        var pointwise = new[] { 1 << 20 };
        var rows = new[] { 1024, 1000 };
        Measure(output, "ReLU forward+backward", pointwise, x => Functional.Relu(x));
        Measure(output, "Sigmoid forward+backward", pointwise, x => Functional.Sigmoid(x));
        Measure(output, "Tanh forward+backward", pointwise, x => Functional.Tanh(x));
        Measure(output, "Softmax(-1) forward+backward", rows, x => Functional.Softmax(x));
        Measure(output, "LogSoftmax(1) of (32,1000,32) forward+backward", new[] { 32, 1000, 32 }, x => Functional.LogSoftmax(x, 1));
        int[] labels = Enumerable.Range(0, rows[0]).Select(i => i * 7 % rows[1]).ToArray();
        Measure(output, "CrossEntropy forward+backward", rows, x => Functional.CrossEntropy(x, labels));
        Step(output, "SGD(momentum=0.9, nesterov) step", p => new SGD(new[] { p }, 0.1, momentum: 0.9, nesterov: true));
        Step(output, "Adam step", p => new Adam(new[] { p }));
        Step(output, "AdamW(amsgrad) step", p => new AdamW(new[] { p }, amsGrad: true));
    }

    private static void Measure(TextWriter output, string name, int[] shape, Func<Tensor, Tensor> op)
    {
        Tensor x = Tensor.Normal(shape, generator: new RandomGenerator(1));
        x.RequiresGrad = true;
        double seconds = QuickTimer.MedianSeconds(() =>
        {
            using var scope = TensorScope.Begin();
            Tensor y = op(x);
            y.Backward(y.Length == 1 ? null : Tensor.Ones(y.Shape));
        });
        Row(output, name, shape, seconds, x.Length);
    }

    private static void Step(TextWriter output, string name, Func<Tensor, Optimizer> create)
    {
        int[] shape = { 1 << 20 };
        Tensor p = Tensor.Normal(shape, generator: new RandomGenerator(2));
        p.RequiresGrad = true;
        p.Grad = Tensor.Normal(shape, generator: new RandomGenerator(3));
        Optimizer optimizer = create(p);
        Row(output, name, shape, QuickTimer.MedianSeconds(optimizer.Step), p.Length);
    }

    private static void Row(TextWriter output, string name, int[] shape, double seconds, int elements) =>
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {name} | ({string.Join(", ", shape)}) | {seconds * 1e3:F3} | {seconds * 1e9 / elements:F3} |"));
}
