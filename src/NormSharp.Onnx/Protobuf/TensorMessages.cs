using System.Buffers.Binary;
using Google.Protobuf;
using Google.Protobuf.Collections;

namespace NormSharp.Onnx.Protobuf;

/// <summary>onnx.TensorProto.DataType: the element types of tensors (the values NormSharp reads are named).</summary>
public enum OnnxDataType
{
    /// <summary>Not set.</summary>
    Undefined = 0,
    /// <summary>IEEE 754 float32.</summary>
    Float = 1,
    /// <summary>Signed 32-bit integer.</summary>
    Int32 = 6,
    /// <summary>Signed 64-bit integer (shapes, axes).</summary>
    Int64 = 7,
    /// <summary>Boolean, one byte per element.</summary>
    Bool = 9,
    /// <summary>IEEE 754 float64.</summary>
    Double = 11,
}

/// <summary>onnx.TensorProto: a constant tensor (an initializer or an attribute value). NormSharp writes the elements
/// as little-endian raw_data and reads raw_data or the typed float_data/double_data/int32_data/int64_data lists.</summary>
public sealed class TensorProto : OnnxMessage
{
    private static readonly FieldCodec<long> s_dimsCodec = FieldCodec.ForInt64(Tag(1, Varint));
    private static readonly FieldCodec<float> s_floatCodec = FieldCodec.ForFloat(Tag(4, LengthDelimited));
    private static readonly FieldCodec<int> s_int32Codec = FieldCodec.ForInt32(Tag(5, LengthDelimited));
    private static readonly FieldCodec<long> s_int64Codec = FieldCodec.ForInt64(Tag(7, LengthDelimited));
    private static readonly FieldCodec<double> s_doubleCodec = FieldCodec.ForDouble(Tag(10, LengthDelimited));
    private const int ExternalDataLocation = 1;

    /// <summary>dims (1): the shape.</summary>
    public RepeatedField<long> Dims { get; } = new();

    /// <summary>data_type (2): the element type.</summary>
    public OnnxDataType DataType { get; set; }

    /// <summary>float_data (4, packed): float elements when raw_data is not used.</summary>
    public RepeatedField<float> FloatData { get; } = new();

    /// <summary>int32_data (5, packed): int32 (and narrower integer or bool) elements when raw_data is not used.</summary>
    public RepeatedField<int> Int32Data { get; } = new();

    /// <summary>int64_data (7, packed): int64 elements when raw_data is not used.</summary>
    public RepeatedField<long> Int64Data { get; } = new();

    /// <summary>name (8): the value name (for an initializer, the name nodes read it by).</summary>
    public string Name { get; set; } = "";

    /// <summary>raw_data (9): the elements as fixed-width little-endian bytes.</summary>
    public ByteString RawData { get; set; } = ByteString.Empty;

    /// <summary>double_data (10, packed): float64 elements when raw_data is not used.</summary>
    public RepeatedField<double> DoubleData { get; } = new();

    /// <summary>doc_string (12).</summary>
    public string DocString { get; set; } = "";

    /// <summary>data_location (14): 1 means the elements live in an external file, which NormSharp does not read.</summary>
    public int DataLocation { get; set; }

    /// <summary>A float32 tensor of shape <paramref name="dims"/> stored as raw_data.</summary>
    public static TensorProto FromFloats(string name, IEnumerable<long> dims, ReadOnlySpan<float> values)
    {
        var tensor = new TensorProto { Name = name, DataType = OnnxDataType.Float };
        tensor.Dims.AddRange(dims);
        var bytes = new byte[values.Length * sizeof(float)];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * sizeof(float)), values[i]);
        tensor.RawData = UnsafeByteOperations.UnsafeWrap(bytes); // no copy: the array is ours and never changes again
        return tensor;
    }

    /// <summary>An int64 tensor of shape <paramref name="dims"/> stored as raw_data.</summary>
    public static TensorProto FromInt64s(string name, IEnumerable<long> dims, ReadOnlySpan<long> values)
    {
        var tensor = new TensorProto { Name = name, DataType = OnnxDataType.Int64 };
        tensor.Dims.AddRange(dims);
        var bytes = new byte[values.Length * sizeof(long)];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(i * sizeof(long)), values[i]);
        tensor.RawData = UnsafeByteOperations.UnsafeWrap(bytes); // no copy: the array is ours and never changes again
        return tensor;
    }

    /// <summary>The number of elements the shape describes; an <see cref="InvalidDataException"/> for a negative
    /// dimension or more than int.MaxValue elements.</summary>
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

    /// <summary>The elements of a FLOAT or DOUBLE tensor as float32, row-major; an <see cref="InvalidDataException"/>
    /// naming the tensor when its type is another or its data does not match its shape.</summary>
    public float[] ToFloats()
    {
        bool single = DataType == OnnxDataType.Float;
        int count = StoredCount(single ? sizeof(float) : sizeof(double), single ? FloatData.Count : DoubleData.Count, single ? "float_data" : "double_data", OnnxDataType.Float, OnnxDataType.Double);
        var values = new float[count];
        ReadOnlySpan<byte> raw = RawData.Span;
        for (int i = 0; i < count; i++)
            values[i] = !raw.IsEmpty ? (single ? BinaryPrimitives.ReadSingleLittleEndian(raw[(i * sizeof(float))..]) : (float)BinaryPrimitives.ReadDoubleLittleEndian(raw[(i * sizeof(double))..]))
                : single ? FloatData[i] : (float)DoubleData[i];
        return values;
    }

    /// <summary>The elements of an INT64 or INT32 tensor as int64, row-major; an <see cref="InvalidDataException"/>
    /// naming the tensor when its type is another or its data does not match its shape.</summary>
    public long[] ToInt64s()
    {
        bool wide = DataType == OnnxDataType.Int64;
        int count = StoredCount(wide ? sizeof(long) : sizeof(int), wide ? Int64Data.Count : Int32Data.Count, wide ? "int64_data" : "int32_data", OnnxDataType.Int64, OnnxDataType.Int32);
        var values = new long[count];
        ReadOnlySpan<byte> raw = RawData.Span;
        for (int i = 0; i < count; i++)
            values[i] = !raw.IsEmpty ? (wide ? BinaryPrimitives.ReadInt64LittleEndian(raw[(i * sizeof(long))..]) : BinaryPrimitives.ReadInt32LittleEndian(raw[(i * sizeof(int))..]))
                : wide ? Int64Data[i] : Int32Data[i];
        return values;
    }

    /// <summary>The elements of a BOOL tensor (raw_data bytes or int32_data); an <see cref="InvalidDataException"/>
    /// naming the tensor when its type is another or its data does not match its shape.</summary>
    public bool[] ToBools()
    {
        int count = StoredCount(sizeof(byte), Int32Data.Count, "int32_data", OnnxDataType.Bool);
        return RawData.IsEmpty ? Int32Data.Select(v => v != 0).ToArray() : RawData.Span[..count].ToArray().Select(b => b != 0).ToArray();
    }

    /// <summary>The element count, after checking the type, the location and that the stored data — raw_data of
    /// count·<paramref name="width"/> bytes, or a typed list of count values — matches the shape, before anything
    /// the size of the shape is allocated.</summary>
    private int StoredCount(int width, int listCount, string listField, params OnnxDataType[] types)
    {
        if (DataLocation == ExternalDataLocation) throw Invalid("keeps its data in an external file, which NormSharp does not read");
        if (!types.Contains(DataType)) throw Invalid($"has data type {DataType}, expected {string.Join(" or ", types)}");
        int count = ElementCount();
        if (!RawData.IsEmpty && RawData.Length != (long)count * width)
            throw Invalid($"of shape {FormatDims()} needs {(long)count * width} bytes of raw_data, it holds {RawData.Length}");
        if (RawData.IsEmpty && listCount != count)
            throw Invalid($"of shape {FormatDims()} holds {listCount} values in {listField}, expected {count}");
        return count;
    }

    /// <summary>The shape in NormSharp's notation, e.g. (32, 1, 3, 3).</summary>
    public string FormatDims() => Shapes.Format(Dims);

    private InvalidDataException Invalid(string what) => new($"Tensor '{Name}' {what}.");

    private protected override void VisitFields(FieldSink sink)
    {
        sink.Repeated(Dims, s_dimsCodec);
        sink.Int64(2, (long)DataType);
        sink.Repeated(FloatData, s_floatCodec);
        sink.Repeated(Int32Data, s_int32Codec);
        sink.Repeated(Int64Data, s_int64Codec);
        if (Name.Length > 0) sink.String(8, Name);
        if (!RawData.IsEmpty) sink.Bytes(9, RawData);
        sink.Repeated(DoubleData, s_doubleCodec);
        if (DocString.Length > 0) sink.String(12, DocString);
        if (DataLocation != 0) sink.Int64(14, DataLocation);
    }

    private protected override bool ReadField(CodedInputStream input, uint tag)
    {
        switch (tag)
        {
            case 1 << 3 | Varint: case 1 << 3 | LengthDelimited: Dims.AddEntriesFrom(input, s_dimsCodec); return true;
            case 2 << 3 | Varint: DataType = (OnnxDataType)input.ReadInt32(); return true;
            case 4 << 3 | Fixed32: case 4 << 3 | LengthDelimited: FloatData.AddEntriesFrom(input, s_floatCodec); return true;
            case 5 << 3 | Varint: case 5 << 3 | LengthDelimited: Int32Data.AddEntriesFrom(input, s_int32Codec); return true;
            case 7 << 3 | Varint: case 7 << 3 | LengthDelimited: Int64Data.AddEntriesFrom(input, s_int64Codec); return true;
            case 8 << 3 | LengthDelimited: Name = input.ReadString(); return true;
            case 9 << 3 | LengthDelimited: RawData = input.ReadBytes(); return true;
            case 10 << 3 | Fixed64: case 10 << 3 | LengthDelimited: DoubleData.AddEntriesFrom(input, s_doubleCodec); return true;
            case 12 << 3 | LengthDelimited: DocString = input.ReadString(); return true;
            case 14 << 3 | Varint: DataLocation = input.ReadInt32(); return true;
            default: return false;
        }
    }
}

/// <summary>onnx.AttributeProto.AttributeType: which value field of an attribute is in use.</summary>
public enum OnnxAttributeType
{
    /// <summary>Not set.</summary>
    Undefined = 0,
    /// <summary>A float in f.</summary>
    Float = 1,
    /// <summary>An int64 in i.</summary>
    Int = 2,
    /// <summary>Bytes (UTF-8 text) in s.</summary>
    String = 3,
    /// <summary>A tensor in t.</summary>
    Tensor = 4,
    /// <summary>A subgraph in g (not read by NormSharp).</summary>
    Graph = 5,
    /// <summary>Floats in floats.</summary>
    Floats = 6,
    /// <summary>Int64s in ints.</summary>
    Ints = 7,
    /// <summary>Byte strings in strings.</summary>
    Strings = 8,
    /// <summary>Tensors in tensors (not read by NormSharp).</summary>
    Tensors = 9,
    /// <summary>Subgraphs in graphs (not read by NormSharp).</summary>
    Graphs = 10,
}

/// <summary>onnx.AttributeProto: a named attribute of a node; <see cref="Type"/> says which value field holds it.</summary>
public sealed class AttributeProto : OnnxMessage
{
    private static readonly FieldCodec<float> s_floatsCodec = FieldCodec.ForFloat(Tag(7, Fixed32));
    private static readonly FieldCodec<long> s_intsCodec = FieldCodec.ForInt64(Tag(8, Varint));
    private static readonly FieldCodec<ByteString> s_stringsCodec = FieldCodec.ForBytes(Tag(9, LengthDelimited));

    /// <summary>name (1).</summary>
    public string Name { get; set; } = "";

    /// <summary>f (2): the value of a FLOAT attribute.</summary>
    public float F { get; set; }

    /// <summary>i (3): the value of an INT attribute.</summary>
    public long I { get; set; }

    /// <summary>s (4): the value of a STRING attribute.</summary>
    public ByteString S { get; set; } = ByteString.Empty;

    /// <summary>t (5): the value of a TENSOR attribute.</summary>
    public TensorProto? T { get; set; }

    /// <summary>floats (7): the values of a FLOATS attribute.</summary>
    public RepeatedField<float> Floats { get; } = new();

    /// <summary>ints (8): the values of an INTS attribute.</summary>
    public RepeatedField<long> Ints { get; } = new();

    /// <summary>strings (9): the values of a STRINGS attribute.</summary>
    public RepeatedField<ByteString> Strings { get; } = new();

    /// <summary>doc_string (13).</summary>
    public string DocString { get; set; } = "";

    /// <summary>type (20): which value field is in use.</summary>
    public OnnxAttributeType Type { get; set; }

    /// <summary>An INT attribute.</summary>
    public static AttributeProto OfInt(string name, long value) => new() { Name = name, Type = OnnxAttributeType.Int, I = value };

    /// <summary>A FLOAT attribute.</summary>
    public static AttributeProto OfFloat(string name, float value) => new() { Name = name, Type = OnnxAttributeType.Float, F = value };

    /// <summary>A STRING attribute (UTF-8).</summary>
    public static AttributeProto OfString(string name, string value) => new() { Name = name, Type = OnnxAttributeType.String, S = ByteString.CopyFromUtf8(value) };

    /// <summary>An INTS attribute.</summary>
    public static AttributeProto OfInts(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = OnnxAttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    /// <summary>A TENSOR attribute.</summary>
    public static AttributeProto OfTensor(string name, TensorProto value) => new() { Name = name, Type = OnnxAttributeType.Tensor, T = value };

    private protected override void VisitFields(FieldSink sink)
    {
        sink.String(1, Name);
        if (Type == OnnxAttributeType.Float) sink.Float(2, F);
        if (Type == OnnxAttributeType.Int) sink.Int64(3, I);
        if (Type == OnnxAttributeType.String) sink.Bytes(4, S);
        if (T is not null) sink.Message(5, T);
        sink.Repeated(Floats, s_floatsCodec);
        sink.Repeated(Ints, s_intsCodec);
        sink.Repeated(Strings, s_stringsCodec);
        if (DocString.Length > 0) sink.String(13, DocString);
        sink.Int64(20, (long)Type);
    }

    private protected override bool ReadField(CodedInputStream input, uint tag)
    {
        switch (tag)
        {
            case 1 << 3 | LengthDelimited: Name = input.ReadString(); return true;
            case 2 << 3 | Fixed32: F = input.ReadFloat(); return true;
            case 3 << 3 | Varint: I = input.ReadInt64(); return true;
            case 4 << 3 | LengthDelimited: S = input.ReadBytes(); return true;
            case 5 << 3 | LengthDelimited: T = ReadMessage<TensorProto>(input); return true;
            case 7 << 3 | Fixed32: case 7 << 3 | LengthDelimited: Floats.AddEntriesFrom(input, s_floatsCodec); return true;
            case 8 << 3 | Varint: case 8 << 3 | LengthDelimited: Ints.AddEntriesFrom(input, s_intsCodec); return true;
            case 9 << 3 | LengthDelimited: Strings.AddEntriesFrom(input, s_stringsCodec); return true;
            case 13 << 3 | LengthDelimited: DocString = input.ReadString(); return true;
            case 20 << 3 | Varint: Type = (OnnxAttributeType)input.ReadInt32(); return true;
            default: return false;
        }
    }
}

/// <summary>onnx.ValueInfoProto: a value's name and type (graph inputs and outputs).</summary>
public sealed class ValueInfoProto : OnnxMessage
{
    /// <summary>name (1).</summary>
    public string Name { get; set; } = "";

    /// <summary>type (2).</summary>
    public TypeProto? Type { get; set; }

    /// <summary>doc_string (3).</summary>
    public string DocString { get; set; } = "";

    /// <summary>A float32 tensor value; a null dimension is symbolic, named <paramref name="symbolicName"/>.</summary>
    public static ValueInfoProto FloatTensor(string name, IEnumerable<long?> dims, string symbolicName = "N")
    {
        var shape = new TensorShapeProto();
        foreach (long? d in dims)
            shape.Dim.Add(d is long size ? new TensorShapeProto.Dimension { DimValue = size } : new TensorShapeProto.Dimension { DimParam = symbolicName });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TensorTypeProto { ElemType = OnnxDataType.Float, Shape = shape } } };
    }

    private protected override void VisitFields(FieldSink sink)
    {
        sink.String(1, Name);
        if (Type is not null) sink.Message(2, Type);
        if (DocString.Length > 0) sink.String(3, DocString);
    }

    private protected override bool ReadField(CodedInputStream input, uint tag)
    {
        switch (tag)
        {
            case 1 << 3 | LengthDelimited: Name = input.ReadString(); return true;
            case 2 << 3 | LengthDelimited: Type = ReadMessage<TypeProto>(input); return true;
            case 3 << 3 | LengthDelimited: DocString = input.ReadString(); return true;
            default: return false;
        }
    }
}

/// <summary>onnx.TypeProto, of which NormSharp reads the tensor alternative (sequence and map types are skipped).</summary>
public sealed class TypeProto : OnnxMessage
{
    /// <summary>tensor_type (1): the element type and shape of a tensor value.</summary>
    public TensorTypeProto? TensorType { get; set; }

    private protected override void VisitFields(FieldSink sink)
    {
        if (TensorType is not null) sink.Message(1, TensorType);
    }

    private protected override bool ReadField(CodedInputStream input, uint tag)
    {
        if (tag != (1 << 3 | LengthDelimited)) return false;
        TensorType = ReadMessage<TensorTypeProto>(input);
        return true;
    }
}

/// <summary>onnx.TypeProto.Tensor: a tensor type.</summary>
public sealed class TensorTypeProto : OnnxMessage
{
    /// <summary>elem_type (1).</summary>
    public OnnxDataType ElemType { get; set; }

    /// <summary>shape (2), or null when the rank is unknown.</summary>
    public TensorShapeProto? Shape { get; set; }

    private protected override void VisitFields(FieldSink sink)
    {
        sink.Int64(1, (long)ElemType);
        if (Shape is not null) sink.Message(2, Shape);
    }

    private protected override bool ReadField(CodedInputStream input, uint tag)
    {
        switch (tag)
        {
            case 1 << 3 | Varint: ElemType = (OnnxDataType)input.ReadInt32(); return true;
            case 2 << 3 | LengthDelimited: Shape = ReadMessage<TensorShapeProto>(input); return true;
            default: return false;
        }
    }
}

/// <summary>onnx.TensorShapeProto: a shape whose dimensions are sizes or symbolic names.</summary>
public sealed class TensorShapeProto : OnnxMessage
{
    /// <summary>dim (1).</summary>
    public RepeatedField<Dimension> Dim { get; } = new();

    private protected override void VisitFields(FieldSink sink) => sink.Messages(1, Dim);

    private protected override bool ReadField(CodedInputStream input, uint tag)
    {
        if (tag != (1 << 3 | LengthDelimited)) return false;
        Dim.Add(ReadMessage<Dimension>(input));
        return true;
    }

    /// <summary>onnx.TensorShapeProto.Dimension: a size (dim_value) or a symbolic name (dim_param), or neither when unknown.</summary>
    public sealed class Dimension : OnnxMessage
    {
        /// <summary>dim_value (1), or null.</summary>
        public long? DimValue { get; set; }

        /// <summary>dim_param (2), or null.</summary>
        public string? DimParam { get; set; }

        private protected override void VisitFields(FieldSink sink)
        {
            if (DimValue is long value) sink.Int64(1, value);
            else if (DimParam is not null) sink.String(2, DimParam);
        }

        private protected override bool ReadField(CodedInputStream input, uint tag)
        {
            switch (tag)
            {
                case 1 << 3 | Varint: DimValue = input.ReadInt64(); DimParam = null; return true;
                case 2 << 3 | LengthDelimited: DimParam = input.ReadString(); DimValue = null; return true;
                default: return false;
            }
        }
    }
}
