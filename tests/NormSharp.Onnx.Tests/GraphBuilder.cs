using Google.Protobuf;
using NormSharp.Onnx.Protobuf;

namespace NormSharp.Onnx.Tests;

/// <summary>Builds ONNX graphs node by node with the package's messages, for models NormSharp did not export (as other
/// tools write them) and for broken ones.</summary>
public sealed class GraphBuilder
{
    private readonly GraphProto _graph = new() { Name = "test" };
    private readonly RandomGenerator _random = new(99);

    /// <summary>A float graph input; null dimensions are the symbolic batch size.</summary>
    public GraphBuilder Input(string name, params long?[] dims)
    {
        _graph.Input.Add(ValueInfoProto.FloatTensor(name, dims));
        return this;
    }

    /// <summary>A float graph output.</summary>
    public GraphBuilder Output(string name, params long?[] dims)
    {
        _graph.Output.Add(ValueInfoProto.FloatTensor(name, dims));
        return this;
    }

    /// <summary>A float graph output whose shape is left to the engines.</summary>
    public GraphBuilder UnshapedOutput(string name)
    {
        _graph.Output.Add(new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } } });
        return this;
    }

    /// <summary>A 1-D int64 initializer (a shape, axes); returns its name.</summary>
    public string Int64s(string name, params long[] values)
    {
        _graph.Initializer.Add(TensorProto.FromInt64s(name, new[] { (long)values.Length }, values));
        return name;
    }

    /// <summary>A float initializer of random normal values (mean <paramref name="mean"/>, std 0.5); returns its name.</summary>
    public string Random(string name, double mean, params long[] dims) => Random(name, mean, 0.5, dims);

    /// <summary>A float initializer of random normal values (mean <paramref name="mean"/>, std <paramref name="std"/>).</summary>
    public string Random(string name, double mean, double std, params long[] dims)
    {
        Tensor values = Tensor.Normal(dims.Select(d => (int)d).ToArray(), mean, std, generator: _random);
        return Floats(name, values.ToArray(), dims);
    }

    /// <summary>A float initializer; returns its name.</summary>
    public string Floats(string name, float[] values, params long[] dims)
    {
        _graph.Initializer.Add(TensorProto.FromFloats(name, dims, values));
        return name;
    }

    /// <summary>A node with one output named <paramref name="output"/>.</summary>
    public NodeProto Node(string opType, string[] inputs, string output, params AttributeProto[] attributes)
    {
        var node = new NodeProto { Name = output, OpType = opType };
        node.Input.AddRange(inputs);
        node.Output.Add(output);
        node.Attribute.AddRange(attributes);
        _graph.Node.Add(node);
        return node;
    }

    /// <summary>The model (IR 8 for opsets below 21, else 10) importing <paramref name="opset"/> of the default domain.</summary>
    public ModelProto Model(int opset = OnnxFormat.Opset)
    {
        var model = new ModelProto { IrVersion = opset < 21 ? 8 : 10, ProducerName = "NormSharp.Onnx.Tests", Graph = _graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Version = opset });
        return model;
    }

    /// <summary>The serialized model.</summary>
    public byte[] Build(int opset = OnnxFormat.Opset) => Model(opset).ToByteArray();
}
