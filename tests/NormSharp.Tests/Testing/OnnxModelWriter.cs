using Google.Protobuf;
using NormSharp.Onnx.Protobuf;

namespace NormSharp.Tests.Testing;

/// <summary>
/// A single-node ONNX model (ModelProto) built with NormSharp.Onnx's protobuf messages: every node input is a float32
/// graph input of a fixed shape, wired in order, and the one output "Y" has the first input's shape.
/// </summary>
public sealed class OnnxModelWriter
{
    private readonly List<(string Name, int[] Shape)> _inputs = new();
    private readonly List<AttributeProto> _attributes = new();
    private readonly string _opType;

    /// <summary>A model with one node of <paramref name="opType"/>.</summary>
    public OnnxModelWriter(string opType) => _opType = opType;

    /// <summary>Adds a float32 graph input, wired in order to the node's inputs.</summary>
    public OnnxModelWriter Input(string name, params int[] shape)
    {
        _inputs.Add((name, shape));
        return this;
    }

    /// <summary>A FLOAT attribute.</summary>
    public OnnxModelWriter Attribute(string name, float value)
    {
        _attributes.Add(AttributeProto.OfFloat(name, value));
        return this;
    }

    /// <summary>An INT attribute.</summary>
    public OnnxModelWriter Attribute(string name, long value)
    {
        _attributes.Add(AttributeProto.OfInt(name, value));
        return this;
    }

    /// <summary>The serialized ModelProto for opset <paramref name="opset"/> of the default domain.</summary>
    public byte[] Build(int opset, int irVersion = 10)
    {
        var node = new NodeProto { Name = "node", OpType = _opType };
        node.Input.AddRange(_inputs.Select(i => i.Name));
        node.Output.Add("Y");
        node.Attribute.AddRange(_attributes);
        var graph = new GraphProto { Name = "conformance" };
        graph.Node.Add(node);
        foreach (var (name, shape) in _inputs) graph.Input.Add(ValueInfoProto.FloatTensor(name, shape.Select(d => (long?)d)));
        graph.Output.Add(ValueInfoProto.FloatTensor("Y", _inputs[0].Shape.Select(d => (long?)d)));
        var model = new ModelProto { IrVersion = irVersion, ProducerName = "NormSharp.Tests", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Version = opset });
        return model.ToByteArray();
    }
}
