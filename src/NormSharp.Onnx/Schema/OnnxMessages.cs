using System.Buffers.Binary;
using Google.Protobuf;

namespace NormSharp.Onnx.Protobuf;

// The message classes themselves are generated from Schema/onnx.proto by Grpc.Tools at build time; this file adds only
// what NormSharp needs on top of them: factories for the values the exporter writes, and checked decoding of tensors.

/// <summary>Parsing of ONNX messages with errors that name what was parsed.</summary>
public static class OnnxMessage
{
    /// <summary>Parses <paramref name="bytes"/> as a <typeparamref name="TMessage"/>; a malformed wire format throws an
    /// <see cref="InvalidDataException"/> naming <paramref name="source"/>.</summary>
    public static TMessage Parse<TMessage>(byte[] bytes, string source = "the data") where TMessage : IMessage<TMessage>, new()
    {
        ArgumentNullException.ThrowIfNull(bytes);
        var message = new TMessage();
        try { message.MergeFrom(bytes); }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"{source} is not a valid {typeof(TMessage).Name} (protobuf wire format): {e.Message}", e);
        }
        return message;
    }
}

/// <summary>onnx.TensorProto: NormSharp writes the elements as little-endian raw_data and reads raw_data or the typed
/// float_data/double_data/int32_data/int64_data lists.</summary>
public sealed partial class TensorProto
{
    /// <summary>A float tensor named <paramref name="name"/> of shape <paramref name="dims"/>.</summary>
    public static TensorProto FromFloats(string name, IEnumerable<long> dims, ReadOnlySpan<float> values)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)Types.DataType.Float };
        tensor.Dims.AddRange(dims);
        var bytes = new byte[values.Length * sizeof(float)];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * sizeof(float)), values[i]);
        tensor.RawData = UnsafeByteOperations.UnsafeWrap(bytes); // no copy: the array is ours and never changes again
        return tensor;
    }

    /// <summary>An int64 tensor (a shape, axes) named <paramref name="name"/> of shape <paramref name="dims"/>.</summary>
    public static TensorProto FromInt64s(string name, IEnumerable<long> dims, ReadOnlySpan<long> values)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)Types.DataType.Int64 };
        tensor.Dims.AddRange(dims);
        var bytes = new byte[values.Length * sizeof(long)];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(i * sizeof(long)), values[i]);
        tensor.RawData = UnsafeByteOperations.UnsafeWrap(bytes);
        return tensor;
    }

    /// <summary>The element type as the enum (data_type is an int32 field in the schema).</summary>
    public Types.DataType ElementType => (Types.DataType)DataType;

    /// <summary>The number of elements the shape holds; negative dimensions or more than 2³¹ elements throw.</summary>
    public int ElementCount()
    {
        foreach (long d in Dims)
            if (d < 0) throw Invalid($"has a negative dimension {d}");
        if (Dims.Contains(0)) return 0;
        long count = 1;
        foreach (long d in Dims)
        {
            // Bounding each factor keeps the product in range: otherwise dimensions like (4, 2^62) wrap around to 0.
            if (d > int.MaxValue || (count *= d) > int.MaxValue) throw Invalid("has more than 2^31 elements");
        }
        return (int)count;
    }

    /// <summary>The elements of a float or double tensor as float32.</summary>
    public float[] ToFloats()
    {
        bool single = ElementType == Types.DataType.Float;
        int count = StoredCount(single ? sizeof(float) : sizeof(double), single ? FloatData.Count : DoubleData.Count, single ? "float_data" : "double_data", Types.DataType.Float, Types.DataType.Double);
        var values = new float[count];
        ReadOnlySpan<byte> raw = RawData.Span;
        for (int i = 0; i < count; i++)
            values[i] = !raw.IsEmpty ? (single ? BinaryPrimitives.ReadSingleLittleEndian(raw[(i * sizeof(float))..]) : (float)BinaryPrimitives.ReadDoubleLittleEndian(raw[(i * sizeof(double))..]))
                : single ? FloatData[i] : (float)DoubleData[i];
        return values;
    }

    /// <summary>The elements of an int64 or int32 tensor as int64.</summary>
    public long[] ToInt64s()
    {
        bool wide = ElementType == Types.DataType.Int64;
        int count = StoredCount(wide ? sizeof(long) : sizeof(int), wide ? Int64Data.Count : Int32Data.Count, wide ? "int64_data" : "int32_data", Types.DataType.Int64, Types.DataType.Int32);
        var values = new long[count];
        ReadOnlySpan<byte> raw = RawData.Span;
        for (int i = 0; i < count; i++)
            values[i] = !raw.IsEmpty ? (wide ? BinaryPrimitives.ReadInt64LittleEndian(raw[(i * sizeof(long))..]) : BinaryPrimitives.ReadInt32LittleEndian(raw[(i * sizeof(int))..]))
                : wide ? Int64Data[i] : Int32Data[i];
        return values;
    }

    /// <summary>The elements of a bool tensor.</summary>
    public bool[] ToBools()
    {
        int count = StoredCount(sizeof(byte), Int32Data.Count, "int32_data", Types.DataType.Bool);
        return RawData.IsEmpty ? Int32Data.Select(v => v != 0).ToArray() : RawData.Span[..count].ToArray().Select(b => b != 0).ToArray();
    }

    /// <summary>The shape in NormSharp's notation, e.g. (3, 4).</summary>
    public string FormatDims() => Shapes.Format(Dims);

    private int StoredCount(int width, int listCount, string listField, params Types.DataType[] types)
    {
        if (DataLocation == Types.DataLocation.External) throw Invalid("keeps its data in an external file, which NormSharp does not read");
        if (!types.Contains(ElementType)) throw Invalid($"has data type {ElementType}, expected {string.Join(" or ", types)}");
        int count = ElementCount();
        if (!RawData.IsEmpty && RawData.Length != (long)count * width)
            throw Invalid($"of shape {FormatDims()} needs {(long)count * width} bytes of raw_data, it holds {RawData.Length}");
        if (RawData.IsEmpty && listCount != count)
            throw Invalid($"of shape {FormatDims()} holds {listCount} values in {listField}, expected {count}");
        return count;
    }

    private InvalidDataException Invalid(string what) => new($"Tensor '{Name}' {what}.");
}

/// <summary>onnx.AttributeProto: factories for the attribute kinds the exporter writes.</summary>
public sealed partial class AttributeProto
{
    /// <summary>An INT attribute.</summary>
    public static AttributeProto OfInt(string name, long value) => new() { Name = name, Type = Types.AttributeType.Int, I = value };

    /// <summary>A FLOAT attribute.</summary>
    public static AttributeProto OfFloat(string name, float value) => new() { Name = name, Type = Types.AttributeType.Float, F = value };

    /// <summary>A STRING attribute (UTF-8).</summary>
    public static AttributeProto OfString(string name, string value) => new() { Name = name, Type = Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };

    /// <summary>An INTS attribute.</summary>
    public static AttributeProto OfInts(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    /// <summary>A TENSOR attribute.</summary>
    public static AttributeProto OfTensor(string name, TensorProto value) => new() { Name = name, Type = Types.AttributeType.Tensor, T = value };
}

/// <summary>onnx.ValueInfoProto: the factory for graph inputs and outputs.</summary>
public sealed partial class ValueInfoProto
{
    /// <summary>A float tensor value; a null dimension is symbolic, named <paramref name="symbolicName"/>.</summary>
    public static ValueInfoProto FloatTensor(string name, IEnumerable<long?> dims, string symbolicName = "N")
    {
        var shape = new TensorShapeProto();
        foreach (long? d in dims)
            shape.Dim.Add(d is long size ? new TensorShapeProto.Types.Dimension { DimValue = size } : new TensorShapeProto.Types.Dimension { DimParam = symbolicName });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } } };
    }
}

/// <summary>onnx.TensorShapeProto.</summary>
public sealed partial class TensorShapeProto
{
    /// <summary>onnx.TensorShapeProto.Dimension.</summary>
    public static partial class Types
    {
        /// <summary>One axis: a fixed size (dim_value) or a symbolic name (dim_param).</summary>
        public sealed partial class Dimension
        {
            /// <summary>The fixed size, or null for a symbolic or unknown axis.</summary>
            public long? Size => HasDimValue ? DimValue : null;
        }
    }
}
