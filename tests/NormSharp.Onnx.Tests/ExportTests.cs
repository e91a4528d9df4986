using Google.Protobuf;
using NormSharp.Keras;
using Dropout = NormSharp.Nn.Dropout;
using Flatten = NormSharp.Nn.Flatten;
using Sequential = NormSharp.Nn.Sequential;
using NormSharp.Nn;
using NormSharp.Onnx.Protobuf;
using Xunit.Abstractions;
using static NormSharp.Onnx.Tests.OnnxRuntimeCheck;

namespace NormSharp.Onnx.Tests;

/// <summary>Exported models run in ONNX Runtime give NormSharp's evaluation-mode outputs on random inputs (metric:
/// see <see cref="OnnxRuntimeCheck"/>; tolerance 1e-5).</summary>
public class ExportTests(ITestOutputHelper output)
{
    public static TheoryData<string> Networks() => new(TestNetworks.Names);

    public static TheoryData<string> FoldableNetworks() => new(TestNetworks.Foldable);

    private double Compare(string name, Module network, int[] sample, OnnxExportOptions? options = null, int batch = 5)
    {
        byte[] model = OnnxExporter.Export(network, sample, options).ToByteArray();
        Tensor x = Tensor.Normal(new[] { batch }.Concat(sample).ToArray(), 0.3, 1.5, generator: new RandomGenerator(11));
        double error = MaxRelativeError(Run(model, x), Forward(network, x));
        output.WriteLine($"{name}{(options?.FoldBatchNorm == true ? " (BatchNorm folded)" : "")}: NormSharp vs ONNX Runtime {error:E2} over {batch} random inputs; {model.Length:N0} bytes");
        return error;
    }

    [Theory]
    [MemberData(nameof(Networks))]
    public void Exported_network_gives_NormSharps_outputs_in_ONNX_Runtime(string name)
    {
        var (network, sample) = TestNetworks.Create(name);
        Assert.InRange(Compare(name, network, sample), 0, Tolerance);
    }

    [Theory]
    [MemberData(nameof(FoldableNetworks))]
    public void Export_with_BatchNorm_folded_gives_the_same_outputs_with_fewer_nodes(string name)
    {
        var (network, sample) = TestNetworks.Create(name);
        int unfolded = OnnxExporter.Export(network, sample).Graph!.Node.Count(n => n.OpType == "BatchNormalization");
        ModelProto folded = OnnxExporter.Export(network, sample, new OnnxExportOptions { FoldBatchNorm = true });
        int remaining = folded.Graph!.Node.Count(n => n.OpType == "BatchNormalization");
        int foldable = network.Layers.Zip(network.Layers.Skip(1)).Count(p => p.First is Conv2d or ConvTranspose2d or Linear && p.Second is BatchNorm);
        Assert.Equal(unfolded - foldable, remaining);
        Assert.Equal(foldable, folded.Graph.Node.Count(n => OnnxFormat.Metadata(n, OnnxFormat.FoldedKey) is not null));
        Assert.InRange(Compare(name, network, sample, new OnnxExportOptions { FoldBatchNorm = true }), 0, Tolerance);
    }

    [Fact]
    public void Seed_cnn_logits_before_the_softmax_agree_too()
    {
        // Softmax probabilities lie in [0, 1], where the metric is an absolute error; the logits are larger.
        var (network, sample) = TestNetworks.Create("seed-cnn");
        var logits = new Sequential(network.Layers.SkipLast(1).ToArray());
        Tensor x = Tensor.Normal(new[] { 5 }.Concat(sample).ToArray(), 0.3, 1.5, generator: new RandomGenerator(11));
        float[] ours = Forward(logits, x);
        Assert.True(ours.Max(Math.Abs) > 1, "the logits reach beyond ±1, where the metric is relative");
        Assert.InRange(Compare("seed-cnn logits", logits, sample), 0, Tolerance);
    }

    [Fact]
    public void Seed_cnn_exports_Conv_BatchNormalization_Relu_MaxPool_Gemm_Softmax_with_PyTorch_names()
    {
        var (network, sample) = TestNetworks.Create("seed-cnn");
        GraphProto graph = OnnxExporter.Export(network, sample).Graph!;
        Assert.Equal(new[] { "Conv", "BatchNormalization", "Relu", "MaxPool" }, graph.Node.Take(4).Select(n => n.OpType));
        Assert.Equal(new[] { "Flatten", "Gemm", "Relu", "BatchNormalization", "Gemm", "Softmax" }, graph.Node.TakeLast(6).Select(n => n.OpType));
        Assert.Equal(new[] { "input", "0.weight", "0.bias" }, graph.Node[0].Input);
        Assert.Equal(new[] { "0", "1.weight", "1.bias", "1.running_mean", "1.running_var" }, graph.Node[1].Input);
        Assert.Equal("output", graph.Node[^1].Output.Single());
        Assert.Equal("KerasBatchNormalization", OnnxFormat.Metadata(graph.Node[1], OnnxFormat.ModuleKey));
        Assert.Equal("3", OnnxFormat.Metadata(graph.Node[1], OnnxFormat.BatchesTrackedKey));
        Assert.Equal(new long[] { 1, 1, 1, 1 }, graph.Node[0].Attribute.Single(a => a.Name == "pads").Ints); // padding "same", 3×3
        // The state dictionary and the initializers hold the same names and values.
        var initializers = graph.Initializer.ToDictionary(t => t.Name);
        foreach (var (name, tensor) in network.StateDict().Where(kv => !kv.Key.EndsWith("num_batches_tracked", StringComparison.Ordinal)))
            Assert.Equal(tensor.ToArray(), initializers[name].ToFloats());
        // Batch axis symbolic, sample axes fixed.
        var inputShape = graph.Input.Single().Type!.TensorType!.Shape!.Dim;
        Assert.Equal("N", inputShape[0].DimParam);
        Assert.Equal(new long?[] { 1, 28, 28 }, inputShape.Skip(1).Select(d => d.Size));
        Assert.Equal(new long?[] { 10 }, graph.Output.Single().Type!.TensorType!.Shape!.Dim.Skip(1).Select(d => d.Size));
    }

    [Fact]
    public void Keras_model_exports_with_its_input_shape()
    {
        NormSharp.Keras.Sequential model = SeedModels.SmallCnn(generator: new RandomGenerator(3));
        ModelProto proto = OnnxExporter.Export(model);
        Assert.Equal(OnnxFormat.Opset, proto.OpsetImport.Single().Version);
        Assert.Equal(OnnxFormat.IrVersion, proto.IrVersion);
        Assert.Equal("NormSharp", proto.ProducerName);
        Assert.Equal(new long?[] { null, 1, 28, 28 }, proto.Graph!.Input.Single().Type!.TensorType!.Shape!.Dim.Select(d => d.Size));
    }

    [Fact]
    public void Nested_sequentials_export_as_one_chain_named_by_module_path()
    {
        var random = new RandomGenerator(5);
        var network = new Sequential(
            new Sequential(new Conv2d(1, 4, 3, generator: random), new BatchNorm2d(4), new ReLU()),
            new Sequential(new Flatten(), new Sequential(new Linear(4 * 6 * 6, 3, generator: random))));
        TestNetworks.TrainFewSteps(network, new[] { 1, 8, 8 }, 2, random);
        GraphProto graph = OnnxExporter.Export(network, new[] { 1, 8, 8 }).Graph!;
        Assert.Equal(new[] { "0.0", "0.1", "0.2", "1.0", "1.1.0" }, graph.Node.Select(n => n.Name));
        Assert.Equal(new[] { "0.0.weight", "0.0.bias", "0.1.weight", "0.1.bias", "0.1.running_mean", "0.1.running_var", "1.1.0.weight", "1.1.0.bias" }, graph.Initializer.Select(t => t.Name));
        Assert.True(network.IsTraining, "export restores the training mode");
        Assert.InRange(Compare("nested", network, new[] { 1, 8, 8 }), 0, Tolerance);
    }

    [Fact]
    public void Flatten_of_inner_axes_exports_as_a_Reshape_keeping_the_batch_axis()
    {
        var network = new Sequential(new Conv2d(2, 3, 3, generator: new RandomGenerator(1)), new Flatten(2, 3), new Softmax(-1));
        GraphProto graph = OnnxExporter.Export(network, new[] { 2, 5, 6 }).Graph!;
        Assert.Equal("Reshape", graph.Node[1].OpType);
        Assert.Equal(new long[] { 0, 3, 12 }, graph.Initializer.Single(t => t.Name == "1.shape").ToInt64s());
        Assert.InRange(Compare("flatten(2, 3)", network, new[] { 2, 5, 6 }), 0, Tolerance);
    }

    [Fact]
    public void Max_pooling_in_ceil_mode_drops_a_last_window_that_starts_in_the_padding_as_PyTorch_does()
    {
        // H = W = 3, kernel 2, stride 2, padding 1: ceil gives 3 windows, the third would start at row 4 ≥ 3 + 1.
        var network = new Sequential(new MaxPool2d(2, stride: 2, padding: 1, ceilMode: true), new AvgPool2d(2, stride: 1, padding: 1, ceilMode: true));
        Assert.InRange(Compare("ceil-mode pooling", network, new[] { 2, 3, 3 }), 0, Tolerance);
    }

    [Fact]
    public void Graph_names_are_configurable_and_must_not_collide_with_nodes()
    {
        var options = new OnnxExportOptions { InputName = "images", OutputName = "probabilities", GraphName = "classifier" };
        GraphProto graph = OnnxExporter.Export(new Sequential(new Linear(3, 2, generator: new RandomGenerator(1)), new Softmax()), new[] { 3 }, options).Graph!;
        Assert.Equal(("classifier", "images", "probabilities"), (graph.Name, graph.Input.Single().Name, graph.Output.Single().Name));
        Assert.Equal("images", graph.Node[0].Input[0]);

        GraphProto empty = OnnxExporter.Export(new Sequential(), new[] { 3 }).Graph!;
        Assert.Equal("Identity", empty.Node.Single().OpType);
        Tensor x = Tensor.Normal(new[] { 2, 3 });
        Assert.Equal(x.ToArray(), Run(OnnxExporter.Export(new Sequential(), new[] { 3 }).ToByteArray(), x));

        var e = Assert.Throws<ArgumentException>(() => OnnxExporter.Export(new Sequential(new ReLU(), new Tanh()), new[] { 3 }, new OnnxExportOptions { InputName = "0" }));
        Assert.Contains("must be distinct, non-empty and differ from the node and weight names", e.Message);
    }

    [Fact]
    public void Unknown_module_is_reported_with_its_path_and_type()
    {
        var network = new Sequential(new Linear(4, 4), new Sequential(new ReLU(), new Doubler()));
        var e = Assert.Throws<NotSupportedException>(() => OnnxExporter.Export(network, new[] { 4 }));
        Assert.Contains("module '1.1' (Doubler) has no ONNX form", e.Message);
    }

    [Fact]
    public void BatchNorm_without_running_statistics_is_reported()
    {
        var network = new Sequential(new Linear(4, 4), new BatchNorm1d(4, trackRunningStats: false));
        var e = Assert.Throws<NotSupportedException>(() => OnnxExporter.Export(network, new[] { 4 }));
        Assert.Contains("module '1' (BatchNorm1d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=False)): without running statistics", e.Message);
    }

    [Fact]
    public void Convolution_of_an_input_without_channels_is_reported()
    {
        var e = Assert.Throws<NotSupportedException>(() => OnnxExporter.Export(new Sequential(new MaxPool2d(2)), new[] { 8, 8 }));
        Assert.Contains("exports for (N, C, H, W) inputs, got (1, 8, 8)", e.Message);
    }

    [Fact]
    public void Save_writes_the_file_atomically_and_ONNX_Runtime_loads_it()
    {
        string path = Path.Combine(Path.GetTempPath(), $"normsharp-export-{Guid.NewGuid():N}.onnx");
        try
        {
            var (network, sample) = TestNetworks.Create("mlp-layernorm");
            OnnxExporter.Save(network, sample, path);
            Assert.Equal(OnnxExporter.Export(network, sample).ToByteArray(), File.ReadAllBytes(path));
            Tensor x = Tensor.Normal(new[] { 2 }.Concat(sample).ToArray());
            Assert.InRange(MaxRelativeError(Run(File.ReadAllBytes(path), x), Forward(network, x)), 0, Tolerance);
            Assert.Empty(Directory.GetFiles(Path.GetTempPath(), $".{Path.GetFileName(path)}.*.tmp"));
        }
        finally { File.Delete(path); }
    }

    private sealed class Doubler : Module
    {
        public override Tensor Forward(Tensor input) => input * 2;
    }
}
