using Google.Protobuf;
using NormSharp.Nn;
using NormSharp.Onnx.Protobuf;
using NormSharp.Optim;
using NormSharp.Training;
using Xunit.Abstractions;
using static NormSharp.Onnx.Tests.OnnxRuntimeCheck;

namespace NormSharp.Onnx.Tests;

/// <summary>Import: exported models come back as the same layers with the same state, computing the same outputs
/// bit for bit; models written by hand in the ways other tools write them import and agree with ONNX Runtime.</summary>
public class ImportTests(ITestOutputHelper output)
{
    public static TheoryData<string> Networks() => new(TestNetworks.Names);

    private static Tensor RandomInput(int batch, IEnumerable<int> sample, ulong seed = 21) =>
        Tensor.Normal(new[] { batch }.Concat(sample).ToArray(), 0.3, 1.5, generator: new RandomGenerator(seed));

    [Theory]
    [MemberData(nameof(Networks))]
    public void Export_then_import_gives_the_same_layers_state_and_outputs(string name)
    {
        var (network, sample) = TestNetworks.Create(name);
        Model imported = OnnxImporter.Import(OnnxExporter.Export(network, sample).ToByteArray(), name);

        var copy = Assert.IsType<Sequential>(imported.Network);
        Assert.Equal(network.ToString(), copy.ToString());
        Assert.Equal(sample, imported.InputShape);
        Assert.All(copy.NamedModules(), m => Assert.False(m.Module.IsTraining));
        var expected = network.StateDict();
        var actual = copy.StateDict();
        Assert.Equal(expected.Keys, actual.Keys);
        foreach (var (key, tensor) in expected) Assert.True(tensor.ToArray().SequenceEqual(actual[key].ToArray()), $"{name}: state '{key}' differs");
        Tensor x = RandomInput(4, sample);
        Assert.Equal(Forward(network, x), Forward(copy, x));
        output.WriteLine($"{name}: {copy.Count} layers and {actual.Count} state tensors round-trip exactly");
    }

    [Theory]
    [MemberData(nameof(FoldableNetworks))]
    public void Folded_export_imports_without_the_folded_BatchNorm_layers(string name)
    {
        var (network, sample) = TestNetworks.Create(name);
        ModelProto folded = OnnxExporter.Export(network, sample, new OnnxExportOptions { FoldBatchNorm = true });
        var copy = (Sequential)OnnxImporter.Import(folded, name).Network;
        int foldedLayers = folded.Graph!.Node.Count(n => OnnxFormat.Metadata(n, OnnxFormat.FoldedKey) is not null);
        Assert.Equal(network.Count - foldedLayers, copy.Count);
        Tensor x = RandomInput(3, sample);
        double error = MaxRelativeError(Forward(network, x), Forward(copy, x));
        output.WriteLine($"{name}: folded import vs original {error:E2}");
        Assert.InRange(error, 0, Tolerance);
    }

    public static TheoryData<string> FoldableNetworks() => new(TestNetworks.Foldable);

    [Fact]
    public void Imported_seed_cnn_fine_tunes_with_BatchNorm_statistics_as_buffers()
    {
        var (network, sample) = TestNetworks.Create("seed-cnn");
        var copy = (Sequential)OnnxImporter.Import(OnnxExporter.Export(network, sample).ToByteArray()).Network;
        var batchNorm = Assert.IsType<KerasBatchNormalization>(copy[1]);
        Assert.Equal(3, batchNorm.NumBatchesTracked!.Item());
        Assert.Contains(copy.NamedBuffers(), b => b.Name == "1.running_mean");
        Assert.DoesNotContain(copy.NamedParameters(), p => p.Name == "1.running_mean");
        float[] runningMean = batchNorm.RunningMean!.ToArray(), kernel = ((Conv2d)copy[0]).Weight.ToArray();
        Assert.All(copy.Parameters(), p => Assert.True(p.RequiresGrad));

        TestNetworks.TrainFewSteps(copy, sample, steps: 2, new RandomGenerator(4));

        Assert.Equal(5, batchNorm.NumBatchesTracked.Item());
        Assert.NotEqual(runningMean, batchNorm.RunningMean.ToArray());
        Assert.NotEqual(kernel, ((Conv2d)copy[0]).Weight.ToArray());
        // Keras's moving averages: decay 0.99, so the statistics moved by about 1 % per step.
        Assert.Equal(0.99, batchNorm.KerasMomentum, 12);
    }

    [Fact]
    public void Import_does_not_advance_the_default_random_generator()
    {
        var (network, sample) = TestNetworks.Create("seed-cnn-small");
        byte[] bytes = OnnxExporter.Export(network, sample).ToByteArray();
        Tensor.ManualSeed(5);
        double expected = Tensor.Normal(new[] { 1 }).Item();
        Tensor.ManualSeed(5);
        OnnxImporter.Import(bytes);
        Assert.Equal(expected, Tensor.Normal(new[] { 1 }).Item());
    }

    [Fact]
    public void Load_reads_a_file_written_by_Save()
    {
        string path = Path.Combine(Path.GetTempPath(), $"normsharp-import-{Guid.NewGuid():N}.onnx");
        try
        {
            var (network, sample) = TestNetworks.Create("gan-generator");
            OnnxExporter.Save(network, sample, path);
            Model model = OnnxImporter.Load(path);
            Tensor z = RandomInput(2, sample);
            Assert.Equal(Forward(network, z), model.Predict(z).ToArray());
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Gemm_MatMul_and_Constant_shapes_as_other_exporters_write_them_agree_with_ONNX_Runtime()
    {
        var g = new GraphBuilder().Input("x", null, 2, 3, 4).Output("y", null, 5);
        g.Node("MatMul", new[] { "x", g.Random("w1", 0, 4, 6) }, "h1");
        g.Node("Add", new[] { g.Random("b1", 0, 6), "h1" }, "h2");                                          // bias first
        g.Node("Relu", new[] { "h2" }, "h3");
        g.Node("Constant", Array.Empty<string>(), "shape", AttributeProto.OfTensor("value", TensorProto.FromInt64s("", new long[] { 2 }, new long[] { -1, 36 })));
        g.Node("Reshape", new[] { "h3", "shape" }, "h4");                                                   // (N, 36) via −1
        g.Node("Gemm", new[] { "h4", g.Random("w2", 0, 36, 7), g.Random("b2", 0, 1, 7) }, "h5",             // transB = 0, C (1, 7)
            AttributeProto.OfFloat("alpha", 0.5f), AttributeProto.OfFloat("beta", 2f));
        g.Node("BatchNormalization", new[] { "h5", g.Random("s", 1, 7), g.Random("o", 0, 7), g.Random("m", 0, 7), g.Floats("v", Enumerable.Range(1, 7).Select(i => i / 3f).ToArray(), 7) }, "h6");
        g.Node("Gemm", new[] { "h6", g.Random("w3", 0, 5, 7) }, "h7", AttributeProto.OfInt("transB", 1));  // no bias
        g.Node("Softmax", new[] { "h7" }, "y");
        var copy = CompareWithOnnxRuntime("gemm-matmul", g.Build(opset: 17), new[] { 2, 3, 4 });
        Assert.Equal(new[] { "Linear", "ReLU", "Reshape", "Linear", "BatchNorm1d", "Linear", "Softmax" }, copy.Layers.Select(l => l.GetType().Name));
        Assert.Equal(0.1, ((BatchNorm1d)copy[4]).Momentum!.Value, 15); // ONNX's default momentum 0.9
    }

    [Fact]
    public void Convolutions_and_pooling_with_ONNX_defaults_agree_with_ONNX_Runtime()
    {
        var g = new GraphBuilder().Input("x", null, 3, 10, 9).Output("y", null, 2, 9, 7);
        g.Node("Conv", new[] { "x", g.Random("w1", 0, 4, 3, 3, 3), g.Random("b1", 0, 4) }, "c1", AttributeProto.OfString("auto_pad", "SAME_UPPER"));
        g.Node("BatchNormalization", new[] { "c1", g.Random("s", 1, 4), g.Random("o", 0, 4), g.Random("m", 0, 4), g.Floats("v", new[] { 0.5f, 1, 2, 3 }, 4) }, "c2", AttributeProto.OfFloat("epsilon", 1e-3f));
        g.Node("Conv", new[] { "c2", g.Random("w2", 0, 4, 4, 2, 2) }, "c3", AttributeProto.OfInts("pads", 0, 0, 1, 1));  // PyTorch "same", even kernel
        g.Node("MaxPool", new[] { "c3" }, "p1", AttributeProto.OfInts("kernel_shape", 2, 2));                            // ONNX's stride default 1
        g.Node("AveragePool", new[] { "p1" }, "p2", AttributeProto.OfInts("kernel_shape", 3, 3), AttributeProto.OfInts("strides", 2, 2), AttributeProto.OfInts("pads", 1, 1, 1, 1)); // count_include_pad 0
        g.Node("ConvTranspose", new[] { "p2", g.Random("w3", 0, 4, 2, 3, 3) }, "t1", AttributeProto.OfInts("strides", 2, 2), AttributeProto.OfInts("pads", 1, 1, 1, 1));
        g.Node("InstanceNormalization", new[] { "t1", g.Random("is", 1, 2), g.Random("ib", 0, 2) }, "n1");
        g.Node("LeakyRelu", new[] { "n1" }, "y");
        var copy = CompareWithOnnxRuntime("convolutions", g.Build(opset: 18), new[] { 3, 10, 9 });
        Assert.Equal(ConvPadding.Same, ((Conv2d)copy[0]).Padding);
        Assert.Equal(ConvPadding.Same, ((Conv2d)copy[2]).Padding);
        Assert.False(((AvgPool2d)copy[4]).CountIncludePad);
        Assert.Equal(new Size2(1, 1), ((MaxPool2d)copy[3]).Stride);
    }

    [Fact]
    public void GroupNormalization_of_opset_18_has_per_group_scale_which_expands_to_channels()
    {
        var g = new GraphBuilder().Input("x", null, 6, 4).Output("y", null, 6, 4);
        g.Node("GroupNormalization", new[] { "x", g.Random("scale", 1, 3), g.Random("bias", 0, 3) }, "y", AttributeProto.OfInt("num_groups", 3), AttributeProto.OfFloat("epsilon", 1e-4f));
        var copy = CompareWithOnnxRuntime("groupnorm-18", g.Build(opset: 18), new[] { 6, 4 });
        var groupNorm = (GroupNorm)copy[0];
        float[] perGroup = g.Model(opset: 18).Graph!.Initializer[0].ToFloats();
        Assert.Equal(perGroup.SelectMany(v => new[] { v, v }), groupNorm.Weight!.ToArray());
        Assert.Equal(1e-4, groupNorm.Eps);
    }

    private Sequential CompareWithOnnxRuntime(string name, byte[] model, int[] sample)
    {
        var network = (Sequential)OnnxImporter.Import(model, name).Network;
        Tensor x = RandomInput(3, sample);
        double error = MaxRelativeError(Run(model, x), Forward(network, x));
        output.WriteLine($"{name}: imported NormSharp vs ONNX Runtime {error:E2}");
        Assert.InRange(error, 0, Tolerance);
        return network;
    }
}
