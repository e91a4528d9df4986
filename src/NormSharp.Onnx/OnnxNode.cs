using NormSharp.Onnx.Protobuf;

namespace NormSharp.Onnx;

/// <summary>
/// A node as the importer reads it: typed attribute access with ONNX's defaults, constant inputs checked against the
/// shapes the operator needs, and errors that name the model, the node and its operator. Attributes that no reader
/// asked for are rejected at the end, so an attribute NormSharp would silently ignore cannot change the meaning.
/// </summary>
internal sealed class OnnxNode
{
    private readonly Dictionary<string, AttributeProto> _attributes = new();
    private readonly HashSet<string> _read = new();
    private readonly IReadOnlyDictionary<string, TensorProto> _constants;
    private readonly string _source;

    public OnnxNode(NodeProto proto, int index, IReadOnlyDictionary<string, TensorProto> constants, string source)
    {
        Proto = proto;
        _constants = constants;
        _source = source;
        Label = proto.Name.Length > 0 ? $"node '{proto.Name}' ({proto.OpType})" : $"node #{index} ({proto.OpType})";
        foreach (AttributeProto attribute in proto.Attribute)
            if (!_attributes.TryAdd(attribute.Name, attribute)) throw Invalid($"attribute '{attribute.Name}' appears twice");
    }

    public NodeProto Proto { get; }

    /// <summary>"node 'name' (OpType)", or "node #index (OpType)" for an unnamed node.</summary>
    public string Label { get; }

    public string OpType => Proto.OpType;

    public string Output => Proto.Output.Count > 0 ? Proto.Output[0] : throw Invalid("has no output");

    public InvalidDataException Invalid(string what, Exception? inner = null) => new($"ONNX model '{_source}': {Label}: {what}.", inner);

    public NotSupportedException Unsupported(string what) => new($"ONNX model '{_source}': {Label}: {what}.");

    public long Int(string name, long fallback) => Read(name, AttributeProto.Types.AttributeType.Int) is AttributeProto a ? a.I : fallback;

    public long RequiredInt(string name) => Read(name, AttributeProto.Types.AttributeType.Int)?.I ?? throw Invalid($"lacks the required attribute '{name}'");

    public float Float(string name, float fallback) => Read(name, AttributeProto.Types.AttributeType.Float) is AttributeProto a ? a.F : fallback;

    public string String(string name, string fallback) => Read(name, AttributeProto.Types.AttributeType.String) is AttributeProto a ? a.S.ToStringUtf8() : fallback;

    /// <summary>An INTS attribute of <paramref name="count"/> values, or <paramref name="fallback"/> when absent.</summary>
    public long[] Ints(string name, int count, long[] fallback)
    {
        if (Read(name, AttributeProto.Types.AttributeType.Ints) is not AttributeProto a) return fallback;
        if (a.Ints.Count != count) throw Invalid($"attribute '{name}' has {a.Ints.Count} values, expected {count} (NormSharp imports 2-D convolutions and pooling)");
        return a.Ints.ToArray();
    }

    /// <summary>A FLOATS attribute, or an empty array when absent.</summary>
    public float[] FloatList(string name) => Read(name, AttributeProto.Types.AttributeType.Floats)?.Floats.ToArray() ?? Array.Empty<float>();

    /// <summary>An INTS attribute of any length, or null when absent.</summary>
    public long[]? Ints(string name) => Read(name, AttributeProto.Types.AttributeType.Ints)?.Ints.ToArray();

    /// <summary>A TENSOR attribute, or null when absent.</summary>
    public TensorProto? Tensor(string name) => Read(name, AttributeProto.Types.AttributeType.Tensor)?.T;

    /// <summary>Throws for attributes no reader asked for: NormSharp cannot honour them.</summary>
    public void RejectUnreadAttributes()
    {
        foreach (string name in _attributes.Keys)
            if (!_read.Contains(name)) throw Unsupported($"attribute '{name}' is not supported");
    }

    /// <summary>The node's value input <paramref name="index"/>, checked to be <paramref name="expected"/>.</summary>
    public void RequireInput(int index, string expected)
    {
        string actual = InputName(index);
        if (actual != expected)
            throw Unsupported($"input {index} is '{actual}', expected '{expected}'");
    }

    /// <summary>The name of input <paramref name="index"/>, "" when omitted.</summary>
    public string InputName(int index) => index < Proto.Input.Count ? Proto.Input[index] : "";

    /// <summary>Constant input <paramref name="index"/> (an initializer or a Constant node's output), or null when the
    /// optional input is omitted.</summary>
    public TensorProto? OptionalConstant(int index)
    {
        string name = InputName(index);
        if (name.Length == 0) return null;
        return _constants.TryGetValue(name, out TensorProto? tensor) ? tensor
            : throw Unsupported($"input {index} ('{name}') is not a constant: NormSharp reads this operator's weights from initializers or Constant nodes");
    }

    /// <summary>Constant input <paramref name="index"/>, required.</summary>
    public TensorProto Constant(int index) => OptionalConstant(index) ?? throw Invalid($"lacks the required input {index}");

    /// <summary>The float elements of constant input <paramref name="index"/>, whose shape must be
    /// <paramref name="dims"/>.</summary>
    public float[] Floats(int index, params long[] dims) => Floats(Constant(index), index, dims);

    /// <summary>The float elements of <paramref name="tensor"/> (input <paramref name="index"/>), whose shape must be
    /// <paramref name="dims"/>.</summary>
    public float[] Floats(TensorProto tensor, int index, params long[] dims)
    {
        if (!tensor.Dims.SequenceEqual(dims))
            throw Invalid($"input {index} ('{tensor.Name}') has shape {tensor.FormatDims()}, expected {Shapes.Format(dims)}");
        return Decode(tensor, t => t.ToFloats());
    }

    /// <summary>The elements of a constant as int64 (shapes, axes).</summary>
    public long[] Int64s(TensorProto tensor) => Decode(tensor, t => t.ToInt64s());

    /// <summary>Decodes a constant, reporting a type or length mismatch against this node.</summary>
    public T Decode<T>(TensorProto tensor, Func<TensorProto, T> decode)
    {
        try { return decode(tensor); }
        catch (InvalidDataException e) { throw Invalid(e.Message.TrimEnd('.'), e); }
    }

    private AttributeProto? Read(string name, AttributeProto.Types.AttributeType type)
    {
        _read.Add(name);
        if (!_attributes.TryGetValue(name, out AttributeProto? attribute)) return null;
        if (attribute.Type != type) throw Invalid($"attribute '{name}' has type {attribute.Type}, expected {type}");
        return attribute;
    }
}
