using NormSharp.Nn;
using NormSharp.Optim;
using TorchSharp;
using static TorchSharp.torch;

namespace NormSharp.Benchmarks.SideBySide;

/// <summary>Activations, softmax, cross-entropy (forward + backward, gradients not accumulated) and optimizer steps
/// on a million elements. Bytes moved: 16 per element forward + backward (read x, write y, read dy, write dx); an
/// Adam step reads and writes the parameter and both moments and reads the gradient (28 bytes per element).</summary>
public static class LayerWorkloads
{
    private const int Elements = 1 << 20;

    public static IEnumerable<Workload> Create()
    {
        yield return Pointwise("ReLU fwd+bwd (1M)", new[] { Elements }, x => Functional.Relu(x), x => nn.functional.relu(x));
        yield return Pointwise("Sigmoid fwd+bwd (1M)", new[] { Elements }, x => Functional.Sigmoid(x), x => torch.sigmoid(x));
        yield return Pointwise("Softmax(-1) fwd+bwd (1024×1024)", new[] { 1024, 1024 }, x => Functional.Softmax(x), x => torch.softmax(x, -1));
        int[] labels = Enumerable.Range(0, 1024).Select(i => i * 7 % 1000).ToArray();
        torch.Tensor? torchLabels = null;
        yield return new Workload("layers", "CrossEntropy fwd+bwd (1024×1000)", RateUnit.Bytes, 16.0 * 1024 * 1000,
            () => NormSharpGradient(new[] { 1024, 1000 }, x => Functional.CrossEntropy(x, labels)),
            () =>
            {
                torchLabels ??= torch.tensor(labels.Select(l => (long)l).ToArray());
                return LibTorchGradient(new[] { 1024, 1000 }, x => nn.functional.cross_entropy(x, torchLabels));
            });
        yield return new Workload("layers", "Adam step (1M parameters)", RateUnit.Bytes, 28.0 * Elements, () =>
        {
            Tensor p = Tensor.Normal(new[] { Elements }, generator: new RandomGenerator(2));
            p.RequiresGrad = true;
            p.Grad = Tensor.Normal(new[] { Elements }, generator: new RandomGenerator(3));
            return new Adam(new[] { p }).Step;
        }, () =>
        {
            var p = new TorchSharp.Modules.Parameter(torch.randn(Elements));
            p.grad = torch.randn(Elements);
            var adam = optim.Adam(new[] { p });
            return () => adam.step();
        });
    }

    private static Workload Pointwise(string name, int[] shape, Func<Tensor, Tensor> op, Func<torch.Tensor, torch.Tensor> torchOp) =>
        new("layers", name, RateUnit.Bytes, 16.0 * shape.Aggregate(1, (a, b) => a * b),
            () => NormSharpGradient(shape, op), () => LibTorchGradient(shape, torchOp));

    private static Action NormSharpGradient(int[] shape, Func<Tensor, Tensor> op)
    {
        Tensor x = Tensor.Normal(shape, generator: new RandomGenerator(1));
        x.RequiresGrad = true;
        return () =>
        {
            using var scope = TensorScope.Begin();
            Tensor y = op(x);
            y.GradFn!.Backward!(Tensor.Ones(y.Shape));
        };
    }

    private static Action LibTorchGradient(int[] shape, Func<torch.Tensor, torch.Tensor> op)
    {
        torch.Tensor x = torch.randn(shape.Select(d => (long)d).ToArray()).requires_grad_(true);
        return () =>
        {
            using var scope = torch.NewDisposeScope();
            torch.Tensor y = op(x);
            torch.autograd.grad(new[] { y }, new[] { x }, new[] { torch.ones_like(y) });
        };
    }
}
