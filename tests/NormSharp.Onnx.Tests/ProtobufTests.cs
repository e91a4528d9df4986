using Google.Protobuf;
using NormSharp.Onnx.Protobuf;

namespace NormSharp.Onnx.Tests;

/// <summary>The ONNX messages generated from Schema/onnx.proto: wire bytes checked by hand, both encodings of repeated
/// fields read, unknown fields skipped, and every field written read back.</summary>
public class ProtobufTests
{
    [Fact]
    public void Operator_set_is_written_as_protobuf_specifies()
    {
        // version (field 2, varint): key 2·8 + 0 = 0x10, value 21 = 0x15; the empty domain is not written.
        Assert.Equal(new byte[] { 0x10, 0x15 }, new OperatorSetIdProto { Version = 21 }.ToByteArray());
        // domain (field 1, length-delimited): key 0x0A, length 2, "ai"; then the version.
        Assert.Equal(new byte[] { 0x0A, 0x02, (byte)'a', (byte)'i', 0x10, 0x01 }, new OperatorSetIdProto { Domain = "ai", Version = 1 }.ToByteArray());
    }

    [Fact]
    public void Float_attribute_is_written_as_protobuf_specifies()
    {
        byte[] bytes = AttributeProto.OfFloat("e", 1f).ToByteArray();
        // name (1): 0x0A 0x01 'e'; f (2, fixed32): 0x15 then 1.0f little-endian; type (20, varint): key 160 = 0xA0 0x01, FLOAT = 1.
        Assert.Equal(new byte[] { 0x0A, 0x01, (byte)'e', 0x15, 0x00, 0x00, 0x80, 0x3F, 0xA0, 0x01, 0x01 }, bytes);
    }

    [Fact]
    public void Every_field_written_is_read_back()
    {
        var node = new NodeProto { Name = "n", OpType = "Conv", Domain = "", DocString = "doc" };
        node.Input.AddRange(new[] { "x", "", "w" });
        node.Output.Add("y");
        node.Attribute.Add(AttributeProto.OfInts("pads", 0, 1, -2, 3));
        node.Attribute.Add(AttributeProto.OfString("auto_pad", "NOTSET"));
        node.Attribute.Add(AttributeProto.OfTensor("value", TensorProto.FromInt64s("t", new long[] { 2 }, new long[] { -1, long.MaxValue })));
        node.MetadataProps.Add(new StringStringEntryProto { Key = "k", Value = "v" });
        var graph = new GraphProto { Name = "g", DocString = "graph doc" };
        graph.Node.Add(node);
        graph.Initializer.Add(TensorProto.FromFloats("w", new long[] { 2, 1 }, new[] { 1.5f, -0f }));
        graph.Input.Add(ValueInfoProto.FloatTensor("x", new long?[] { null, 3 }, "batch"));
        graph.Output.Add(ValueInfoProto.FloatTensor("y", new long?[] { 0 }));
        var model = new ModelProto { IrVersion = 10, ProducerName = "p", ProducerVersion = "1", Domain = "d", ModelVersion = 7, DocString = "m", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Version = 21 });
        model.MetadataProps.Add(new StringStringEntryProto { Key = "a", Value = "b" });

        byte[] bytes = model.ToByteArray();
        Assert.Equal(model.CalculateSize(), bytes.Length);
        ModelProto read = OnnxMessage.Parse<ModelProto>(bytes);
        Assert.Equal(bytes, read.ToByteArray());
        Assert.Equal((10L, "p", "1", "d", 7L, "m"), (read.IrVersion, read.ProducerName, read.ProducerVersion, read.Domain, read.ModelVersion, read.DocString));
        NodeProto n = read.Graph!.Node.Single();
        Assert.Equal(new[] { "x", "", "w" }, n.Input);
        Assert.Equal(new long[] { 0, 1, -2, 3 }, n.Attribute[0].Ints);
        Assert.Equal("NOTSET", n.Attribute[1].S.ToStringUtf8());
        Assert.Equal(new long[] { -1, long.MaxValue }, n.Attribute[2].T!.ToInt64s());
        Assert.Equal("v", OnnxFormat.Metadata(n, "k"));
        Assert.Equal(new[] { 1.5f, -0f }, read.Graph.Initializer[0].ToFloats());
        Assert.Equal("batch", read.Graph.Input[0].Type!.TensorType!.Shape!.Dim[0].DimParam);
        Assert.Equal(0, read.Graph.Output[0].Type!.TensorType!.Shape!.Dim[0].Size);
    }

    [Fact]
    public void Repeated_fields_are_read_packed_and_unpacked_and_typed_data_lists_decode()
    {
        var stream = new MemoryStream();
        var output = new CodedOutputStream(stream);
        // dims (1) packed although onnx.proto leaves it unpacked; float_data (4) unpacked although it is declared packed.
        output.WriteTag(1, WireFormat.WireType.LengthDelimited);
        output.WriteLength(2);
        output.WriteInt64(2);
        output.WriteInt64(1);
        output.WriteTag(2, WireFormat.WireType.Varint);
        output.WriteInt32((int)TensorProto.Types.DataType.Float);
        foreach (float v in new[] { 0.25f, -4f })
        {
            output.WriteTag(4, WireFormat.WireType.Fixed32);
            output.WriteFloat(v);
        }
        output.WriteTag(99, WireFormat.WireType.LengthDelimited); // a field from a newer onnx.proto
        output.WriteString("skipped");
        output.Flush();
        TensorProto tensor = OnnxMessage.Parse<TensorProto>(stream.ToArray());
        Assert.Equal(new long[] { 2, 1 }, tensor.Dims);
        Assert.Equal(new[] { 0.25f, -4f }, tensor.ToFloats());

        var doubles = new TensorProto { Name = "d", DataType = (int)TensorProto.Types.DataType.Double };
        doubles.Dims.Add(2);
        doubles.DoubleData.AddRange(new[] { 0.5, 1e-3 });
        Assert.Equal(new[] { 0.5f, 1e-3f }, OnnxMessage.Parse<TensorProto>(doubles.ToByteArray()).ToFloats());
        var ints = new TensorProto { Name = "i", DataType = (int)TensorProto.Types.DataType.Int32 };
        ints.Dims.Add(3);
        ints.Int32Data.AddRange(new[] { -1, 0, 7 });
        Assert.Equal(new long[] { -1, 0, 7 }, OnnxMessage.Parse<TensorProto>(ints.ToByteArray()).ToInt64s());
    }

    [Fact]
    public void Tensor_data_that_does_not_match_its_shape_is_reported_by_name()
    {
        var tensor = new TensorProto { Name = "w", DataType = (int)TensorProto.Types.DataType.Float };
        tensor.Dims.AddRange(new long[] { 2, 3 });
        tensor.FloatData.AddRange(new[] { 1f, 2f });
        Assert.Equal("Tensor 'w' of shape (2, 3) holds 2 values in float_data, expected 6.", Assert.Throws<InvalidDataException>(() => tensor.ToFloats()).Message);
        Assert.Equal("Tensor 'w' has data type Float, expected Int64 or Int32.", Assert.Throws<InvalidDataException>(() => tensor.ToInt64s()).Message);
        tensor.Dims[0] = 1L << 40;
        Assert.Equal("Tensor 'w' has more than 2^31 elements.", Assert.Throws<InvalidDataException>(() => tensor.ToFloats()).Message);
        (tensor.Dims[0], tensor.Dims[1]) = (4, 1L << 62); // 2^64 elements, which wrap around to 0 in a long
        Assert.Equal("Tensor 'w' has more than 2^31 elements.", Assert.Throws<InvalidDataException>(() => tensor.ToFloats()).Message);
    }

    [Fact]
    public void Decimal_readings_of_float_attributes_give_what_was_written()
    {
        Assert.Equal(1e-5, OnnxFormat.ShortestDecimal(1e-5f));
        Assert.Equal(0.2, OnnxFormat.ShortestDecimal(0.2f));
        Assert.Equal(0.1, OnnxFormat.Complement(0.9f));
        Assert.Equal(0.01, OnnxFormat.Complement(0.99f));
    }
}
