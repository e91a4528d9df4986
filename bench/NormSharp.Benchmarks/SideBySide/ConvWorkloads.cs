using NormSharp.Nn;
using TorchSharp;
using static TorchSharp.torch;

namespace NormSharp.Benchmarks.SideBySide;

/// <summary>
/// The seed CNN's three convolutions (3×3, padding 1, batch 128), forward (no graph) and backward. The backward is
/// timed alone on a retained graph: dW, db, and dx for conv2 and conv3 (conv1's input is data and needs no gradient),
/// accumulated into .grad by both engines. FLOPs: 2·N·Cout·H·W·Cin·9 per forward; the backward counts one such
/// product for dW and another for dx.
/// </summary>
public static class ConvWorkloads
{
    /// <summary>The seed CNN's convolutions: name, input channels, output channels, image side.</summary>
    public static readonly (string Name, int InChannels, int OutChannels, int Size)[] Layers =
    {
        ("conv1 1→32 28×28", 1, 32, 28),
        ("conv2 32→64 14×14", 32, 64, 14),
        ("conv3 64→128 7×7", 64, 128, 7),
    };

    private const int Batch = 128;

    public static IEnumerable<Workload> Create()
    {
        foreach (var (name, cin, cout, size) in Layers)
        {
            double forwardFlops = 2.0 * Batch * cout * size * size * cin * 9;
            bool inputGradient = cin > 1;
            yield return new Workload("conv", $"{name} fwd", RateUnit.Flops, forwardFlops,
                () => NormSharp(cin, cout, size, backward: false), () => LibTorch(cin, cout, size, backward: false));
            yield return new Workload("conv", $"{name} bwd", RateUnit.Flops, forwardFlops * (inputGradient ? 2 : 1),
                () => NormSharp(cin, cout, size, backward: true), () => LibTorch(cin, cout, size, backward: true));
        }
    }

    private static Action NormSharp(int cin, int cout, int size, bool backward)
    {
        var conv = new Conv2d(cin, cout, 3, padding: "same", generator: new RandomGenerator(1));
        Tensor input = Tensor.Normal(new[] { Batch, cin, size, size }, generator: new RandomGenerator(2));
        input.RequiresGrad = cin > 1;
        Tensor gradOutput = Tensor.Normal(new[] { Batch, cout, size, size }, generator: new RandomGenerator(3));
        if (!backward)
            return () =>
            {
                using var scope = TensorScope.Begin();
                using (Tensor.NoGrad()) conv.Forward(input);
            };
        Tensor output = conv.Forward(input);
        return () =>
        {
            using var scope = TensorScope.Begin();
            output.Backward(gradOutput, retainGraph: true);
        };
    }

    private static Action LibTorch(int cin, int cout, int size, bool backward)
    {
        torch.manual_seed(1);
        var conv = nn.Conv2d(cin, cout, 3, padding: 1);
        torch.Tensor input = torch.randn(Batch, cin, size, size).requires_grad_(cin > 1);
        torch.Tensor gradOutput = torch.randn(Batch, cout, size, size);
        if (!backward)
            return () =>
            {
                using var scope = torch.NewDisposeScope();
                using (torch.no_grad()) conv.forward(input);
            };
        torch.Tensor output = conv.forward(input);
        return () => output.backward(new[] { gradOutput }, retain_graph: true);
    }
}
