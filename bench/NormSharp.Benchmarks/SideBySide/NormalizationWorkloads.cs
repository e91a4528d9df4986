using NormSharp.Nn;
using TorchSharp;
using static TorchSharp.torch;

namespace NormSharp.Benchmarks.SideBySide;

/// <summary>
/// The normalization layers on the normalization issue's shapes, in training forward, evaluation forward and
/// forward + backward (dx, dγ, dβ without accumulating into .grad: NormSharp calls the recorded backward function,
/// libtorch <c>torch.autograd.grad</c>). Bytes moved: 8 per element forward (read x, write y), 16 forward + backward
/// (and read dy, write dx).
/// </summary>
public static class NormalizationWorkloads
{
    private sealed record Case(string Name, int[] Shape, Func<Module> NormSharp, Func<nn.Module<torch.Tensor, torch.Tensor>> LibTorch, bool HasEval);

    private static readonly Case[] Cases =
    {
        new("BatchNorm2d 128x32x28x28", new[] { 128, 32, 28, 28 }, () => new BatchNorm2d(32), () => nn.BatchNorm2d(32), true),
        new("BatchNorm2d 128x64x14x14", new[] { 128, 64, 14, 14 }, () => new BatchNorm2d(64), () => nn.BatchNorm2d(64), true),
        new("BatchNorm2d 64x64x56x56", new[] { 64, 64, 56, 56 }, () => new BatchNorm2d(64), () => nn.BatchNorm2d(64), true),
        new("BatchNorm2d 32x256x14x14", new[] { 32, 256, 14, 14 }, () => new BatchNorm2d(256), () => nn.BatchNorm2d(256), true),
        new("BatchNorm1d 128x128", new[] { 128, 128 }, () => new BatchNorm1d(128), () => nn.BatchNorm1d(128), true),
        new("BatchNorm1d 256x1024", new[] { 256, 1024 }, () => new BatchNorm1d(1024), () => nn.BatchNorm1d(1024), true),
        new("LayerNorm 8192x768", new[] { 8192, 768 }, () => new LayerNorm(768), () => nn.LayerNorm(768), false),
        new("LayerNorm 4096x1024", new[] { 4096, 1024 }, () => new LayerNorm(1024), () => nn.LayerNorm(1024), false),
        new("RMSNorm 8192x768", new[] { 8192, 768 }, () => new RMSNorm(768), () => new ComposedRmsNorm(768), false),
        new("GroupNorm(32) 32x256x14x14", new[] { 32, 256, 14, 14 }, () => new GroupNorm(32, 256), () => nn.GroupNorm(32, 256), false),
        new("InstanceNorm2d 32x256x14x14", new[] { 32, 256, 14, 14 }, () => new InstanceNorm2d(256, affine: true), () => nn.InstanceNorm2d(256, affine: true), false),
    };

    /// <summary>RMSNorm as PyTorch's nn.RMSNorm computes it in eager mode from aten ops (TorchSharp 0.107 has no
    /// RMSNorm module): y = x · rsqrt(mean(x², last axis) + ε) · weight.</summary>
    private sealed class ComposedRmsNorm : nn.Module<torch.Tensor, torch.Tensor>
    {
        private readonly TorchSharp.Modules.Parameter weight;

        public ComposedRmsNorm(long features) : base("RMSNorm")
        {
            weight = new TorchSharp.Modules.Parameter(torch.ones(features));
            RegisterComponents();
        }

        public override torch.Tensor forward(torch.Tensor x) =>
            x * torch.rsqrt(x.pow(2).mean(new long[] { -1 }, keepdim: true) + 1.1920929e-07) * weight;
    }

    private enum Pass { TrainForward, EvalForward, ForwardBackward }

    public static IEnumerable<Workload> Create()
    {
        foreach (Case c in Cases)
        {
            double elements = c.Shape.Aggregate(1.0, (p, d) => p * d);
            foreach (Pass pass in Enum.GetValues<Pass>())
            {
                if (pass == Pass.EvalForward && !c.HasEval) continue;
                string label = pass switch { Pass.TrainForward => "train fwd", Pass.EvalForward => "eval fwd", _ => "fwd+bwd" };
                yield return new Workload("normalization", $"{c.Name} {label}", RateUnit.Bytes, (pass == Pass.ForwardBackward ? 16 : 8) * elements,
                    () => NormSharpCall(c, pass), () => LibTorchCall(c, pass))
                { ComparedWithCopy = 4 * elements > CopyYardstick.CacheBytes };
            }
        }
    }

    private static Action NormSharpCall(Case c, Pass pass)
    {
        Module layer = c.NormSharp();
        Tensor input = Tensor.Normal(c.Shape, 0.5, 2, generator: new RandomGenerator(1));
        input.RequiresGrad = true;
        Tensor gradOutput = Tensor.Normal(c.Shape, generator: new RandomGenerator(2));
        layer.Train(pass != Pass.EvalForward);
        if (pass == Pass.ForwardBackward)
            return () =>
            {
                using var scope = TensorScope.Begin();
                layer.Forward(input).GradFn!.Backward!(gradOutput);
            };
        return () =>
        {
            using var scope = TensorScope.Begin();
            using (Tensor.NoGrad()) layer.Forward(input);
        };
    }

    private static Action LibTorchCall(Case c, Pass pass)
    {
        var layer = c.LibTorch();
        long[] shape = c.Shape.Select(d => (long)d).ToArray();
        torch.manual_seed(1);
        torch.Tensor input = (torch.randn(shape) * 2 + 0.5).requires_grad_(true);
        torch.Tensor gradOutput = torch.randn(shape);
        layer.train(pass != Pass.EvalForward);
        if (pass == Pass.ForwardBackward)
        {
            var wrt = new List<torch.Tensor> { input };
            wrt.AddRange(layer.parameters());
            return () =>
            {
                using var scope = torch.NewDisposeScope();
                torch.Tensor y = layer.forward(input);
                torch.autograd.grad(new[] { y }, wrt, new[] { gradOutput });
            };
        }
        return () =>
        {
            using var scope = torch.NewDisposeScope();
            using (torch.no_grad()) layer.forward(input);
        };
    }
}
