using Google.Protobuf;
using NormSharp.Nn;
using NormSharp.Onnx.Protobuf;
using Xunit.Abstractions;

namespace NormSharp.Onnx.Tests;

/// <summary>Broken, truncated and unsupported models are refused with an exception that names the model and the
/// node (name and op_type); nothing else is thrown and no model is returned.</summary>
public class MalformedModelTests(ITestOutputHelper output)
{
    /// <summary>A small trained network: Conv → BatchNorm2d → ReLU → Flatten → Linear → Softmax.</summary>
    private static ModelProto SmallModel()
    {
        var random = new RandomGenerator(3);
        var network = new Sequential(new Conv2d(1, 2, 3, generator: random), new BatchNorm2d(2), new ReLU(), new Flatten(), new Linear(2 * 4 * 4, 3, generator: random), new Softmax(1));
        TestNetworks.TrainFewSteps(network, new[] { 1, 6, 6 }, 2, random);
        return OnnxExporter.Export(network, new[] { 1, 6, 6 });
    }

    private static Exception Refusal(byte[] bytes, string source)
    {
        Exception e = Assert.ThrowsAny<Exception>(() => OnnxImporter.Import(bytes, source));
        Assert.True(e is InvalidDataException or NotSupportedException, $"{source}: {e.GetType().Name}: {e}");
        Assert.StartsWith($"ONNX model '{source}'", e.Message);
        return e;
    }

    private static Exception Refusal(ModelProto model, string source) => Refusal(model.ToByteArray(), source);

    [Fact]
    public void Every_truncation_of_a_model_is_refused_as_invalid_data()
    {
        byte[] bytes = SmallModel().ToByteArray();
        var kinds = new SortedDictionary<string, int>();
        for (int cut = 0; cut < bytes.Length; cut++)
        {
            Exception e = Refusal(bytes[..cut], $"cut-{cut}");
            Assert.IsType<InvalidDataException>(e);
            string kind = e.Message.Contains("input ended unexpectedly", StringComparison.Ordinal) ? "truncated protobuf field"
                : e.Message.Contains("has no graph", StringComparison.Ordinal) ? "no graph"
                : e.Message.Contains("declares no opset", StringComparison.Ordinal) ? "no opset"
                : e.Message;
            kinds[kind] = kinds.GetValueOrDefault(kind) + 1;
        }
        output.WriteLine($"{bytes.Length} cut points: {string.Join("; ", kinds.Select(k => $"{k.Key} ×{k.Value}"))}");
        Assert.Equal(new[] { "no graph", "no opset", "truncated protobuf field" }, kinds.Keys);
        Assert.Contains("ONNX model 'cut-0': has no graph (an empty or truncated file?).", Refusal(bytes[..0], "cut-0").Message);
        Assert.Contains("ONNX model 'half' is not a valid ModelProto (protobuf wire format): While parsing a protocol message, the input ended unexpectedly in the middle of a field",
            Refusal(bytes[..(bytes.Length / 2)], "half").Message);
        Assert.Contains("declares no opset for the default ONNX domain", Refusal(bytes[..^4], "no-opset").Message);
    }

    public static TheoryData<string> Corrupted() => new("small", "features");

    [Theory]
    [MemberData(nameof(Corrupted))]
    public void Random_byte_corruption_is_refused_or_imported_never_crashes(string name)
    {
        byte[] bytes = (name == "small" ? SmallModel() : OnnxExporter.Export(TestNetworks.Create(name).Network, TestNetworks.Create(name).SampleShape)).ToByteArray();
        var random = new RandomGenerator(2024);
        int refused = 0, imported = 0, trials = 2000;
        for (int trial = 0; trial < trials; trial++)
        {
            byte[] corrupt = (byte[])bytes.Clone();
            for (int flips = 1 + random.NextInt(3); flips > 0; flips--) corrupt[random.NextInt(corrupt.Length)] = (byte)random.NextInt(256);
            try
            {
                var model = OnnxImporter.Import(corrupt, $"trial-{trial}");
                Assert.Equal(1, model.Predict(Tensor.Normal(new[] { 1 }.Concat(model.InputShape).ToArray())).Shape[0]);
                imported++;
            }
            catch (Exception e) when (e is InvalidDataException or NotSupportedException)
            {
                Assert.StartsWith($"ONNX model 'trial-{trial}'", e.Message);
                refused++;
            }
        }
        output.WriteLine($"{name} ({bytes.Length:N0} bytes), {trials} copies with 1–3 random bytes changed: {refused} refused with a message, {imported} imported and ran");
        Assert.True(refused > trials / 10, $"only {refused} of {trials} corruptions were refused");
    }

    [Fact]
    public void Unknown_operator_is_named_with_the_node()
    {
        ModelProto model = SmallModel();
        model.Graph!.Node[2].OpType = "Swish";
        var e = Assert.IsType<NotSupportedException>(Refusal(model, "unknown-op"));
        Assert.StartsWith("ONNX model 'unknown-op': unsupported operator: node '2' (Swish) at opset 21. NormSharp imports Abs, Add, AveragePool, BatchNormalization", e.Message);
    }

    [Fact]
    public void Operator_of_another_domain_is_named_with_the_node()
    {
        ModelProto model = SmallModel();
        model.Graph!.Node[2].Domain = "com.microsoft";
        Assert.Contains("unsupported operator: node '2' (Relu) of domain 'com.microsoft'", Refusal(model, "domain").Message);
    }

    [Fact]
    public void Initializer_of_the_wrong_shape_is_named_with_the_node_and_input()
    {
        ModelProto model = SmallModel();
        TensorProto scale = model.Graph!.Initializer.Single(t => t.Name == "1.weight");
        model.Graph.Initializer[model.Graph.Initializer.IndexOf(scale)] = TensorProto.FromFloats("1.weight", new long[] { 3 }, new[] { 1f, 2, 3 });
        var e = Assert.IsType<InvalidDataException>(Refusal(model, "wrong-shape"));
        Assert.Equal("ONNX model 'wrong-shape': node '1' (BatchNormalization): input 1 ('1.weight') has shape (3,), expected (2,).", e.Message);
    }

    [Fact]
    public void Convolution_weight_for_other_input_channels_is_named_with_the_node()
    {
        ModelProto model = SmallModel();
        TensorProto weight = model.Graph!.Initializer.Single(t => t.Name == "0.weight");
        model.Graph.Initializer[model.Graph.Initializer.IndexOf(weight)] = TensorProto.FromFloats("0.weight", new long[] { 2, 3, 3, 3 }, new float[54]);
        Assert.Equal("ONNX model 'channels': node '0' (Conv): input 1 ('0.weight') has shape (2, 3, 3, 3), expected (2, 1, kh, kw) for inputs of shape (1, 1, 6, 6).",
            Refusal(model, "channels").Message);
    }

    [Fact]
    public void Initializer_with_too_little_data_is_named_with_the_node()
    {
        ModelProto model = SmallModel();
        TensorProto weight = model.Graph!.Initializer.Single(t => t.Name == "4.weight");
        weight.RawData = ByteString.CopyFrom(weight.RawData.Span[..^4]);
        Assert.Equal("ONNX model 'short': node '4' (Gemm): Tensor '4.weight' of shape (3, 32) needs 384 bytes of raw_data, it holds 380.", Refusal(model, "short").Message);
    }

    [Fact]
    public void Unsupported_attributes_are_named_with_the_node()
    {
        ModelProto grouped = SmallModel();
        grouped.Graph!.Node[0].Attribute.Add(AttributeProto.OfInt("group", 2));
        Assert.EndsWith("node '0' (Conv): input 1 ('0.weight') has shape (2, 1, 3, 3), which does not fit group=2 for inputs of shape (1, 1, 6, 6).", Refusal(grouped, "group").Message);

        ModelProto unknown = SmallModel();
        unknown.Graph!.Node[2].Attribute.Add(AttributeProto.OfFloat("slope", 0.5f));
        Assert.EndsWith("node '2' (Relu): attribute 'slope' is not supported.", Refusal(unknown, "attribute").Message);

        ModelProto mistyped = SmallModel();
        mistyped.Graph!.Node[5].Attribute[0] = AttributeProto.OfFloat("axis", 1);
        Assert.EndsWith("node '5' (Softmax): attribute 'axis' has type Float, expected Int.", Refusal(mistyped, "mistyped").Message);

        ModelProto training = SmallModel();
        training.Graph!.Node[1].Attribute.Add(AttributeProto.OfInt("training_mode", 1));
        Assert.EndsWith("node '1' (BatchNormalization): training_mode=1 (batch statistics at inference) is not supported.", Refusal(training, "training").Message);
    }

    [Fact]
    public void Graph_that_is_not_a_chain_imports_as_a_graph_and_a_Model_needs_one_input()
    {
        var branch = new GraphBuilder().Input("x", null, 4).Output("y", null, 4);
        branch.Node("Relu", new[] { "x" }, "a");
        branch.Node("Sigmoid", new[] { "x" }, "b");
        branch.Node("Add", new[] { "a", "b" }, "y");
        var graph = Assert.IsType<GraphModule>(OnnxImporter.Import(branch.Build(), "branch").Network);
        Tensor x = Tensor.FromArray(new[] { -1f, 0, 1, 2 }, 1, 4);
        Assert.Equal(new[] { 1 / (1 + MathF.E), 0.5f, 1 + 1 / (1 + 1 / MathF.E), 2 + 1 / (1 + MathF.Exp(-2)) }.Select(v => Math.Round(v, 5)),
            OnnxRuntimeCheck.Forward(graph, x).Select(v => Math.Round((double)v, 5)));

        var twoInputs = new GraphBuilder().Input("x", null, 4).Input("z", null, 4).Output("y", null, 4);
        twoInputs.Node("Sub", new[] { "x", "z" }, "y");
        Assert.Equal("ONNX model 'inputs': the graph has 2 inputs and 1 outputs; a Model takes one of each (use OnnxImporter.ImportGraph for several).", Refusal(twoInputs.Build(), "inputs").Message);
        Assert.Equal(new[] { -1f, -1, -1, -1 }, OnnxImporter.ImportGraph(twoInputs.Build()).Run(x, x + 1)[0].ToArray());

        var variableWeight = new GraphBuilder().Input("x", null, 4).Output("y", null, 4);
        variableWeight.Node("Relu", new[] { "x" }, "w");
        variableWeight.Node("Gemm", new[] { "w", "w" }, "y");
        Assert.StartsWith("ONNX model 'variable': node 'y' (Gemm): the operation does not accept its inputs of shape (1, 4), (1, 4): MatMul: inner sizes do not match",
            Refusal(variableWeight.Build(), "variable").Message);
    }

    [Fact]
    public void Unsupported_opsets_and_inputs_are_refused()
    {
        var g = new GraphBuilder().Input("x", null, 4).Output("y", null, 4);
        g.Node("Relu", new[] { "x" }, "y");
        Assert.Equal("ONNX model 'old': opset 5 is not supported; NormSharp imports opsets 6 to 23.", Refusal(g.Build(opset: 5), "old").Message);

        var dynamic = new GraphBuilder().Input("x", null, null).Output("y", null, null);
        dynamic.Node("Relu", new[] { "x" }, "y");
        Assert.Equal("ONNX model 'dynamic': graph input 'x' has axis 1 of size unknown; NormSharp needs fixed positive sizes after the batch axis.", Refusal(dynamic.Build(), "dynamic").Message);

        ModelProto doubles = SmallModel();
        doubles.Graph!.Input[0].Type!.TensorType!.ElemType = (int)TensorProto.Types.DataType.Double;
        Assert.Equal("graph input 'input' is float64; NormSharp computes the graph in float32", OnnxImporter.ImportGraph(doubles, "double").Warnings.Single());
        doubles.Graph!.Input[0].Type!.TensorType!.ElemType = (int)TensorProto.Types.DataType.Int64;
        Assert.Equal("ONNX model 'int64': graph input 'input' has element type Int64; NormSharp imports float32 (or float64, computed in float32) models.", Refusal(doubles, "int64").Message);

        ModelProto external = SmallModel();
        external.Graph!.Initializer[0].DataLocation = TensorProto.Types.DataLocation.External;
        Assert.Equal("ONNX model 'external': node '0' (Conv): Tensor '0.weight' keeps its data in an external file, which NormSharp does not read.", Refusal(external, "external").Message);
    }

    [Fact]
    public void Bytes_that_are_not_protobuf_are_refused()
    {
        var e = Refusal("this is not an ONNX model"u8.ToArray(), "text");
        Assert.IsType<InvalidDataException>(e);
        Assert.Contains("is not a valid ModelProto (protobuf wire format)", e.Message);
    }
}
