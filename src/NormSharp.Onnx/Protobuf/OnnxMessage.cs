using Google.Protobuf;
using Google.Protobuf.Collections;

namespace NormSharp.Onnx.Protobuf;

/// <summary>
/// The base of the hand-written ONNX messages, the subset of onnx.proto that NormSharp reads and writes (field numbers
/// from onnx.proto, IR version 10). Each message lists its fields once, in field-number order, for both the size pass
/// and the write pass (Google.Protobuf's <see cref="CodedOutputStream"/>); reading goes through
/// <see cref="CodedInputStream"/> and skips fields outside the subset, as protobuf requires of unknown fields. Nested
/// messages never contain their own type, so reading cannot recurse without bound on hostile input.
/// </summary>
public abstract class OnnxMessage
{
    private protected const int Varint = (int)WireFormat.WireType.Varint;
    private protected const int Fixed64 = (int)WireFormat.WireType.Fixed64;
    private protected const int Fixed32 = (int)WireFormat.WireType.Fixed32;
    private protected const int LengthDelimited = (int)WireFormat.WireType.LengthDelimited;

    /// <summary>The size of the serialized message in bytes.</summary>
    public int CalculateSize()
    {
        var counter = new SizeCounter();
        VisitFields(counter);
        return counter.Size;
    }

    /// <summary>Writes the message's fields to <paramref name="output"/> (no length prefix).</summary>
    public void WriteTo(CodedOutputStream output)
    {
        ArgumentNullException.ThrowIfNull(output);
        VisitFields(new WireWriter(output));
    }

    /// <summary>The serialized message.</summary>
    public byte[] ToByteArray()
    {
        var bytes = new byte[CalculateSize()];
        var output = new CodedOutputStream(bytes);
        WriteTo(output);
        output.CheckNoSpaceLeft();
        return bytes;
    }

    /// <summary>Parses a serialized <typeparamref name="TMessage"/>; malformed wire data (truncated fields, invalid
    /// tags or lengths) raises an <see cref="InvalidDataException"/> that names <paramref name="source"/>.</summary>
    public static TMessage Parse<TMessage>(byte[] bytes, string source = "the data") where TMessage : OnnxMessage, new()
    {
        ArgumentNullException.ThrowIfNull(bytes);
        var message = new TMessage();
        try { message.MergeFrom(new CodedInputStream(bytes)); }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"{source} is not a valid {typeof(TMessage).Name} (protobuf wire format): {e.Message}", e);
        }
        return message;
    }

    /// <summary>Presents every field that is set, in field-number order, to <paramref name="sink"/>.</summary>
    private protected abstract void VisitFields(FieldSink sink);

    /// <summary>Reads the field whose <paramref name="tag"/> was just read; false for a field outside the subset (or
    /// with an unexpected wire type), which the caller then skips.</summary>
    private protected abstract bool ReadField(CodedInputStream input, uint tag);

    private void MergeFrom(CodedInputStream input)
    {
        for (uint tag = input.ReadTag(); tag != 0; tag = input.ReadTag())
            if (!ReadField(input, tag)) input.SkipLastField();
    }

    /// <summary>Reads a length-delimited nested message.</summary>
    private protected static TMessage ReadMessage<TMessage>(CodedInputStream input) where TMessage : OnnxMessage, new()
    {
        var message = new TMessage();
        message.MergeFrom(input.ReadBytes().CreateCodedInput());
        return message;
    }

    /// <summary>The wire tag of field <paramref name="field"/> with wire type <paramref name="wireType"/>.</summary>
    private protected static uint Tag(int field, int wireType) => (uint)(field << 3 | wireType);

    /// <summary>Receives a message's fields: the size pass counts them, the write pass writes them.</summary>
    private protected abstract class FieldSink
    {
        public abstract void Int64(int field, long value);
        public abstract void Float(int field, float value);
        public abstract void String(int field, string value);
        public abstract void Bytes(int field, ByteString value);
        public abstract void Message(int field, OnnxMessage value);
        public abstract void Repeated<T>(RepeatedField<T> values, FieldCodec<T> codec);

        public void Messages<TMessage>(int field, IEnumerable<TMessage> values) where TMessage : OnnxMessage
        {
            foreach (TMessage value in values) Message(field, value);
        }
    }

    private sealed class SizeCounter : FieldSink
    {
        public int Size { get; private set; }

        public override void Int64(int field, long value) => Size += CodedOutputStream.ComputeTagSize(field) + CodedOutputStream.ComputeInt64Size(value);
        public override void Float(int field, float value) => Size += CodedOutputStream.ComputeTagSize(field) + CodedOutputStream.ComputeFloatSize(value);
        public override void String(int field, string value) => Size += CodedOutputStream.ComputeTagSize(field) + CodedOutputStream.ComputeStringSize(value);
        public override void Bytes(int field, ByteString value) => Size += CodedOutputStream.ComputeTagSize(field) + CodedOutputStream.ComputeBytesSize(value);
        public override void Repeated<T>(RepeatedField<T> values, FieldCodec<T> codec) => Size += values.CalculateSize(codec);

        public override void Message(int field, OnnxMessage value)
        {
            int size = value.CalculateSize();
            Size += CodedOutputStream.ComputeTagSize(field) + CodedOutputStream.ComputeLengthSize(size) + size;
        }
    }

    private sealed class WireWriter(CodedOutputStream output) : FieldSink
    {
        public override void Int64(int field, long value)
        {
            output.WriteTag(field, WireFormat.WireType.Varint);
            output.WriteInt64(value);
        }

        public override void Float(int field, float value)
        {
            output.WriteTag(field, WireFormat.WireType.Fixed32);
            output.WriteFloat(value);
        }

        public override void String(int field, string value)
        {
            output.WriteTag(field, WireFormat.WireType.LengthDelimited);
            output.WriteString(value);
        }

        public override void Bytes(int field, ByteString value)
        {
            output.WriteTag(field, WireFormat.WireType.LengthDelimited);
            output.WriteBytes(value);
        }

        public override void Message(int field, OnnxMessage value)
        {
            output.WriteTag(field, WireFormat.WireType.LengthDelimited);
            output.WriteLength(value.CalculateSize());
            value.VisitFields(this);
        }

        public override void Repeated<T>(RepeatedField<T> values, FieldCodec<T> codec) => values.WriteTo(output, codec);
    }
}
