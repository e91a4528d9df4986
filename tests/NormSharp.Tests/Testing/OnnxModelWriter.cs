using System.Text;

namespace NormSharp.Tests.Testing;

/// <summary>
/// Writes a single-node ONNX model (ModelProto) by hand: protobuf's wire format is only varints and
/// length-delimited fields, so a few dozen lines cover the messages needed — ModelProto, OperatorSetIdProto,
/// GraphProto, NodeProto, AttributeProto and ValueInfoProto/TypeProto/TensorShapeProto (field numbers from onnx.proto).
/// Every node input is a float32 graph input of a fixed shape; the one output has the first input's shape.
/// </summary>
public sealed class OnnxModelWriter
{
    private const int FloatType = 1;
    private readonly List<(string Name, int[] Shape)> _inputs = new();
    private readonly List<byte[]> _attributes = new();
    private readonly string _opType;

    /// <summary>A model with one node of <paramref name="opType"/>.</summary>
    public OnnxModelWriter(string opType) => _opType = opType;

    /// <summary>Adds a float32 graph input, wired in order to the node's inputs.</summary>
    public OnnxModelWriter Input(string name, params int[] shape)
    {
        _inputs.Add((name, shape));
        return this;
    }

    /// <summary>A float attribute (AttributeProto type FLOAT = 1, value in field f = 2).</summary>
    public OnnxModelWriter Attribute(string name, float value) =>
        AddAttribute(Message(w => { w.String(1, name); w.Fixed32(2, BitConverter.SingleToUInt32Bits(value)); w.Varint(20, 1); }));

    /// <summary>An integer attribute (AttributeProto type INT = 2, value in field i = 3).</summary>
    public OnnxModelWriter Attribute(string name, long value) =>
        AddAttribute(Message(w => { w.String(1, name); w.Varint(3, (ulong)value); w.Varint(20, 2); }));

    private OnnxModelWriter AddAttribute(byte[] attribute)
    {
        _attributes.Add(attribute);
        return this;
    }

    /// <summary>The serialized ModelProto for opset <paramref name="opset"/> of the default domain.</summary>
    public byte[] Build(int opset, int irVersion = 10)
    {
        byte[] node = Message(w =>
        {
            foreach (var (name, _) in _inputs) w.String(1, name);
            w.String(2, "Y");
            w.String(3, "node");
            w.String(4, _opType);
            foreach (byte[] a in _attributes) w.Bytes(5, a);
        });
        byte[] graph = Message(w =>
        {
            w.Bytes(1, node);
            w.String(2, "conformance");
            foreach (var (name, shape) in _inputs) w.Bytes(11, ValueInfo(name, shape));
            w.Bytes(12, ValueInfo("Y", _inputs[0].Shape));
        });
        return Message(w =>
        {
            w.Varint(1, (ulong)irVersion);
            w.String(2, "NormSharp.Tests");
            w.Bytes(7, graph);
            w.Bytes(8, Message(o => { o.String(1, ""); o.Varint(2, (ulong)opset); }));
        });
    }

    /// <summary>ValueInfoProto{name, TypeProto{tensor_type{elem_type FLOAT, shape{dim{dim_value}}}}}.</summary>
    private static byte[] ValueInfo(string name, int[] shape)
    {
        byte[] tensorShape = Message(w => { foreach (int d in shape) w.Bytes(1, Message(dim => dim.Varint(1, (ulong)d))); });
        byte[] tensorType = Message(w => { w.Varint(1, FloatType); w.Bytes(2, tensorShape); });
        return Message(w => { w.String(1, name); w.Bytes(2, Message(t => t.Bytes(1, tensorType))); });
    }

    private static byte[] Message(Action<ProtoWriter> write)
    {
        var writer = new ProtoWriter();
        write(writer);
        return writer.ToArray();
    }

    /// <summary>Protobuf wire format: a key (field number · 8 + wire type) before each value.</summary>
    private sealed class ProtoWriter
    {
        private readonly MemoryStream _stream = new();

        public void Varint(int field, ulong value)
        {
            Key(field, 0);
            Raw(value);
        }

        public void Fixed32(int field, uint value)
        {
            Key(field, 5);
            for (int i = 0; i < 4; i++) _stream.WriteByte((byte)(value >> (8 * i)));
        }

        public void Bytes(int field, byte[] value)
        {
            Key(field, 2);
            Raw((ulong)value.Length);
            _stream.Write(value);
        }

        public void String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

        public byte[] ToArray() => _stream.ToArray();

        private void Key(int field, int wireType) => Raw((ulong)(field << 3 | wireType));

        private void Raw(ulong value)
        {
            do
            {
                byte b = (byte)(value & 0x7F);
                value >>= 7;
                _stream.WriteByte(value == 0 ? b : (byte)(b | 0x80));
            }
            while (value != 0);
        }
    }
}
