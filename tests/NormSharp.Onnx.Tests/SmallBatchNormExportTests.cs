using Google.Protobuf;
using NormSharp.Nn;
using static NormSharp.Onnx.Tests.OnnxRuntimeCheck;
using Sequential = NormSharp.Nn.Sequential;

namespace NormSharp.Onnx.Tests;

/// <summary>Batch Renormalization and Ghost Batch Normalization export as their inference form, ONNX
/// BatchNormalization with the running statistics, and give NormSharp's evaluation outputs in ONNX Runtime.</summary>
public class SmallBatchNormExportTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Trained_renorm_and_ghost_layers_export_as_BatchNormalization(bool fold)
    {
        var network = new Sequential(
            new Conv2d(1, 3, 3, padding: ConvPadding.Same, generator: new RandomGenerator(1)), new BatchRenorm2d(3, clipping: new BatchRenormClipping(2, 1, 0, 0, 0)), new ReLU(),
            new KerasBatchNormalization(3, renorm: true, virtualBatchSize: 4), new NormSharp.Nn.Flatten(), new Linear(3 * 4 * 4, 5, generator: new RandomGenerator(2)),
            new GhostBatchNorm1d(5, virtualBatchSize: 4));
        network.Train();
        for (int step = 0; step < 3; step++) network.Forward(Tensor.Normal(new[] { 8, 1, 4, 4 }, generator: new RandomGenerator((ulong)step)));
        network.Eval();
        var model = OnnxExporter.Export(network, new[] { 1, 4, 4 }, new OnnxExportOptions { FoldBatchNorm = fold });
        Assert.Equal(fold ? 1 : 3, model.Graph!.Node.Count(n => n.OpType == "BatchNormalization"));
        Tensor x = Tensor.Normal(new[] { 5, 1, 4, 4 }, 0.3, 1.5, generator: new RandomGenerator(11));
        Assert.InRange(MaxRelativeError(Run(model.ToByteArray(), x), Forward(network, x)), 0, Tolerance);
    }
}
