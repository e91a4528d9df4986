using Google.Protobuf;
using Google.Protobuf.Collections;

namespace NormSharp.Onnx.Protobuf;

/// <summary>onnx.ModelProto: the file's top-level message, a graph plus the operator sets it binds to.</summary>
public sealed class ModelProto : OnnxMessage
{
    /// <summary>ir_version (1): the ONNX IR version the model follows.</summary>
    public long IrVersion { get; set; }

    /// <summary>producer_name (2): the tool that wrote the model.</summary>
    public string ProducerName { get; set; } = "";

    /// <summary>producer_version (3).</summary>
    public string ProducerVersion { get; set; } = "";

    /// <summary>domain (4): the model's reverse-DNS namespace.</summary>
    public string Domain { get; set; } = "";

    /// <summary>model_version (5).</summary>
    public long ModelVersion { get; set; }

    /// <summary>doc_string (6): human-readable documentation.</summary>
    public string DocString { get; set; } = "";

    /// <summary>graph (7): the computation.</summary>
    public GraphProto? Graph { get; set; }

    /// <summary>opset_import (8): the operator sets (domain, version) the nodes bind to.</summary>
    public RepeatedField<OperatorSetIdProto> OpsetImport { get; } = new();

    /// <summary>metadata_props (14): free-form key/value metadata.</summary>
    public RepeatedField<StringStringEntryProto> MetadataProps { get; } = new();

    private protected override void VisitFields(FieldSink sink)
    {
        if (IrVersion != 0) sink.Int64(1, IrVersion);
        if (ProducerName.Length > 0) sink.String(2, ProducerName);
        if (ProducerVersion.Length > 0) sink.String(3, ProducerVersion);
        if (Domain.Length > 0) sink.String(4, Domain);
        if (ModelVersion != 0) sink.Int64(5, ModelVersion);
        if (DocString.Length > 0) sink.String(6, DocString);
        if (Graph is not null) sink.Message(7, Graph);
        sink.Messages(8, OpsetImport);
        sink.Messages(14, MetadataProps);
    }

    private protected override bool ReadField(CodedInputStream input, uint tag)
    {
        switch (tag)
        {
            case 1 << 3 | Varint: IrVersion = input.ReadInt64(); return true;
            case 2 << 3 | LengthDelimited: ProducerName = input.ReadString(); return true;
            case 3 << 3 | LengthDelimited: ProducerVersion = input.ReadString(); return true;
            case 4 << 3 | LengthDelimited: Domain = input.ReadString(); return true;
            case 5 << 3 | Varint: ModelVersion = input.ReadInt64(); return true;
            case 6 << 3 | LengthDelimited: DocString = input.ReadString(); return true;
            case 7 << 3 | LengthDelimited: Graph = ReadMessage<GraphProto>(input); return true;
            case 8 << 3 | LengthDelimited: OpsetImport.Add(ReadMessage<OperatorSetIdProto>(input)); return true;
            case 14 << 3 | LengthDelimited: MetadataProps.Add(ReadMessage<StringStringEntryProto>(input)); return true;
            default: return false;
        }
    }
}

/// <summary>onnx.OperatorSetIdProto: an operator set, identified by domain ("" is the default ai.onnx) and version.</summary>
public sealed class OperatorSetIdProto : OnnxMessage
{
    /// <summary>domain (1): "" (or "ai.onnx") for the standard operators.</summary>
    public string Domain { get; set; } = "";

    /// <summary>version (2): the opset version.</summary>
    public long Version { get; set; }

    private protected override void VisitFields(FieldSink sink)
    {
        if (Domain.Length > 0) sink.String(1, Domain);
        sink.Int64(2, Version);
    }

    private protected override bool ReadField(CodedInputStream input, uint tag)
    {
        switch (tag)
        {
            case 1 << 3 | LengthDelimited: Domain = input.ReadString(); return true;
            case 2 << 3 | Varint: Version = input.ReadInt64(); return true;
            default: return false;
        }
    }
}

/// <summary>onnx.StringStringEntryProto: one key/value pair of a metadata list.</summary>
public sealed class StringStringEntryProto : OnnxMessage
{
    /// <summary>key (1).</summary>
    public string Key { get; set; } = "";

    /// <summary>value (2).</summary>
    public string Value { get; set; } = "";

    private protected override void VisitFields(FieldSink sink)
    {
        sink.String(1, Key);
        sink.String(2, Value);
    }

    private protected override bool ReadField(CodedInputStream input, uint tag)
    {
        switch (tag)
        {
            case 1 << 3 | LengthDelimited: Key = input.ReadString(); return true;
            case 2 << 3 | LengthDelimited: Value = input.ReadString(); return true;
            default: return false;
        }
    }
}

/// <summary>onnx.GraphProto: nodes in topological order, the constant tensors they read, and the typed graph inputs
/// and outputs.</summary>
public sealed class GraphProto : OnnxMessage
{
    /// <summary>node (1): the nodes, sorted topologically.</summary>
    public RepeatedField<NodeProto> Node { get; } = new();

    /// <summary>name (2).</summary>
    public string Name { get; set; } = "";

    /// <summary>initializer (5): named constant tensors (weights).</summary>
    public RepeatedField<TensorProto> Initializer { get; } = new();

    /// <summary>doc_string (10).</summary>
    public string DocString { get; set; } = "";

    /// <summary>input (11): the graph inputs with their types.</summary>
    public RepeatedField<ValueInfoProto> Input { get; } = new();

    /// <summary>output (12): the graph outputs with their types.</summary>
    public RepeatedField<ValueInfoProto> Output { get; } = new();

    /// <summary>value_info (13): optional types of intermediate values.</summary>
    public RepeatedField<ValueInfoProto> ValueInfo { get; } = new();

    private protected override void VisitFields(FieldSink sink)
    {
        sink.Messages(1, Node);
        if (Name.Length > 0) sink.String(2, Name);
        sink.Messages(5, Initializer);
        if (DocString.Length > 0) sink.String(10, DocString);
        sink.Messages(11, Input);
        sink.Messages(12, Output);
        sink.Messages(13, ValueInfo);
    }

    private protected override bool ReadField(CodedInputStream input, uint tag)
    {
        switch (tag)
        {
            case 1 << 3 | LengthDelimited: Node.Add(ReadMessage<NodeProto>(input)); return true;
            case 2 << 3 | LengthDelimited: Name = input.ReadString(); return true;
            case 5 << 3 | LengthDelimited: Initializer.Add(ReadMessage<TensorProto>(input)); return true;
            case 10 << 3 | LengthDelimited: DocString = input.ReadString(); return true;
            case 11 << 3 | LengthDelimited: Input.Add(ReadMessage<ValueInfoProto>(input)); return true;
            case 12 << 3 | LengthDelimited: Output.Add(ReadMessage<ValueInfoProto>(input)); return true;
            case 13 << 3 | LengthDelimited: ValueInfo.Add(ReadMessage<ValueInfoProto>(input)); return true;
            default: return false;
        }
    }
}

/// <summary>onnx.NodeProto: one operator application, wired to other nodes by value names.</summary>
public sealed class NodeProto : OnnxMessage
{
    private static readonly FieldCodec<string> s_inputCodec = FieldCodec.ForString(Tag(1, LengthDelimited));
    private static readonly FieldCodec<string> s_outputCodec = FieldCodec.ForString(Tag(2, LengthDelimited));

    /// <summary>input (1): the names of the values the node reads ("" for an omitted optional input).</summary>
    public RepeatedField<string> Input { get; } = new();

    /// <summary>output (2): the names of the values the node produces.</summary>
    public RepeatedField<string> Output { get; } = new();

    /// <summary>name (3): an optional identifier, used in error messages.</summary>
    public string Name { get; set; } = "";

    /// <summary>op_type (4): the operator, e.g. "Conv".</summary>
    public string OpType { get; set; } = "";

    /// <summary>attribute (5): the operator's attributes.</summary>
    public RepeatedField<AttributeProto> Attribute { get; } = new();

    /// <summary>doc_string (6).</summary>
    public string DocString { get; set; } = "";

    /// <summary>domain (7): the operator set's domain, "" for the standard operators.</summary>
    public string Domain { get; set; } = "";

    /// <summary>metadata_props (9, IR 10): free-form key/value metadata; NormSharp records the exported module's
    /// type here so that an import can restore it.</summary>
    public RepeatedField<StringStringEntryProto> MetadataProps { get; } = new();

    private protected override void VisitFields(FieldSink sink)
    {
        sink.Repeated(Input, s_inputCodec);
        sink.Repeated(Output, s_outputCodec);
        if (Name.Length > 0) sink.String(3, Name);
        sink.String(4, OpType);
        sink.Messages(5, Attribute);
        if (DocString.Length > 0) sink.String(6, DocString);
        if (Domain.Length > 0) sink.String(7, Domain);
        sink.Messages(9, MetadataProps);
    }

    private protected override bool ReadField(CodedInputStream input, uint tag)
    {
        switch (tag)
        {
            case 1 << 3 | LengthDelimited: Input.Add(input.ReadString()); return true;
            case 2 << 3 | LengthDelimited: Output.Add(input.ReadString()); return true;
            case 3 << 3 | LengthDelimited: Name = input.ReadString(); return true;
            case 4 << 3 | LengthDelimited: OpType = input.ReadString(); return true;
            case 5 << 3 | LengthDelimited: Attribute.Add(ReadMessage<AttributeProto>(input)); return true;
            case 6 << 3 | LengthDelimited: DocString = input.ReadString(); return true;
            case 7 << 3 | LengthDelimited: Domain = input.ReadString(); return true;
            case 9 << 3 | LengthDelimited: MetadataProps.Add(ReadMessage<StringStringEntryProto>(input)); return true;
            default: return false;
        }
    }
}
