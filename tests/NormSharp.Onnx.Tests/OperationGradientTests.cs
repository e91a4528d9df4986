using NormSharp.Onnx.Protobuf;
using NormSharp.Tests.Testing;

namespace NormSharp.Onnx.Tests;

/// <summary>The importer's parameter-free operations are compositions of NormSharp's differentiable tensor operations;
/// their backward passes are checked here against central finite differences in float64, as every op's is.</summary>
public class OperationGradientTests
{
    private static Tensor Random(ulong seed, params int[] shape) => Tensor.Normal(shape, dtype: DType.Float64, generator: new RandomGenerator(seed));

    /// <summary>The operation of a node of <paramref name="opType"/> reading as many inputs as given.</summary>
    private static Func<Tensor[], Tensor> Operation(string opType, int opset, int inputs, params AttributeProto[] attributes)
    {
        var proto = new NodeProto { Name = "n", OpType = opType };
        proto.Input.AddRange(Enumerable.Range(0, inputs).Select(i => $"x{i}"));
        proto.Output.Add("y");
        proto.Attribute.AddRange(attributes);
        var constants = new Dictionary<string, TensorProto>();
        var operation = OnnxOperations.Create(new OnnxNode(proto, 0, constants, "gradients"), opset, constants);
        return x => (Tensor)operation(x.Cast<object?>().ToArray())[0]!;
    }

    public static TheoryData<string, int, AttributeProto[]> Unary() => new()
    {
        { "Elu", 13, new[] { AttributeProto.OfFloat("alpha", 0.7f) } },
        { "Selu", 13, Array.Empty<AttributeProto>() },
        { "HardSigmoid", 13, new[] { AttributeProto.OfFloat("alpha", 0.3f) } },
        { "HardSwish", 14, Array.Empty<AttributeProto>() },
        { "Clip", 6, new[] { AttributeProto.OfFloat("min", -0.5f), AttributeProto.OfFloat("max", 0.5f) } },
        { "Softplus", 13, Array.Empty<AttributeProto>() },
        { "LRN", 13, new[] { AttributeProto.OfInt("size", 3), AttributeProto.OfFloat("alpha", 0.5f) } },
        { "Softmax", 11, new[] { AttributeProto.OfInt("axis", 1) } },
        { "LogSoftmax", 11, new[] { AttributeProto.OfInt("axis", 2) } },
        { "GlobalMaxPool", 13, Array.Empty<AttributeProto>() },
        { "GlobalAveragePool", 13, Array.Empty<AttributeProto>() },
        { "Pad", 6, new[] { AttributeProto.OfString("mode", "reflect"), AttributeProto.OfInts("pads", 0, 0, 1, 2, 0, 0, 2, 1) } },
        { "Pad", 6, new[] { AttributeProto.OfString("mode", "edge"), AttributeProto.OfInts("pads", 0, 0, 2, 0, 0, 0, 0, 1) } },
        { "Pad", 6, new[] { AttributeProto.OfString("mode", "constant"), AttributeProto.OfFloat("value", 1.5f), AttributeProto.OfInts("pads", 0, 1, 1, 0, 0, 0, 1, 2) } },
        { "MaxPool", 13, new[] { AttributeProto.OfInts("kernel_shape", 2, 2), AttributeProto.OfInts("pads", 0, 1, 1, 0) } },
        { "Transpose", 13, new[] { AttributeProto.OfInts("perm", 0, 2, 3, 1) } },
    };

    [Theory]
    [MemberData(nameof(Unary))]
    public void Backward_matches_finite_differences(string opType, int opset, AttributeProto[] attributes)
    {
        Func<Tensor[], Tensor> f = Operation(opType, opset, 1, attributes);
        GradCheck.Check(f, Random(1, 2, 3, 4, 4));
    }

    [Fact]
    public void PRelu_backward_matches_finite_differences_for_input_and_slope()
    {
        GradCheck.Check(Operation("PRelu", 13, 2), Random(2, 2, 3, 4, 4), Random(3, 3, 1, 1));
        GradCheck.Check(Operation("PRelu", 6, 2), Random(4, 2, 3, 5), Random(5, 3)); // opset 6: one slope per channel
    }

    [Fact]
    public void Max_and_Min_backward_match_finite_differences()
    {
        GradCheck.Check(Operation("Max", 13, 2), Random(6, 2, 5), Random(7, 2, 5));
        GradCheck.Check(Operation("Min", 13, 2), Random(8, 2, 5), Random(9, 1, 5));
    }

    [Fact]
    public void Grouped_convolution_with_asymmetric_pads_backward_matches_finite_differences()
    {
        var f = Operation("Conv", 13, 3, AttributeProto.OfInt("group", 2), AttributeProto.OfInts("pads", 0, 1, 1, 0), AttributeProto.OfInts("strides", 1, 2));
        GradCheck.Check(f, Random(10, 2, 4, 5, 5), Random(11, 6, 2, 3, 3), Random(12, 6));
        GradCheck.CheckModule(new GroupedConv2d(4, 4, (3, 3), groups: 4, padding: (1, 1)), Random(13, 2, 4, 4, 4));
    }
}
