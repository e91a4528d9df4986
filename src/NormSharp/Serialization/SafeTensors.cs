using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace NormSharp.Serialization;

/// <summary>Element types a safetensors file can hold that NormSharp reads (all become float32/float64 tensors).</summary>
public enum SafeTensorsType
{
    /// <summary>IEEE 754 float32 ("F32").</summary>
    F32,
    /// <summary>IEEE 754 float64 ("F64").</summary>
    F64,
    /// <summary>Signed 64-bit integer ("I64"); PyTorch stores <c>num_batches_tracked</c> this way.</summary>
    I64,
    /// <summary>Signed 32-bit integer ("I32"), read only.</summary>
    I32,
    /// <summary>IEEE 754 half precision ("F16"), read only.</summary>
    F16,
    /// <summary>bfloat16 ("BF16"), read only.</summary>
    BF16,
}

/// <summary>The contents of a safetensors file: tensors by name, in file order, and the free-form metadata.</summary>
public sealed record SafeTensorsContent(IReadOnlyDictionary<string, Tensor> Tensors, IReadOnlyDictionary<string, string> Metadata, IReadOnlyDictionary<string, SafeTensorsType> StoredTypes);

/// <summary>
/// Reads and writes the safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON header
/// mapping each name to its dtype, shape and byte range, then the raw little-endian data. Files are written
/// atomically; reading validates the header, types, shapes and byte ranges before any tensor is built, so a
/// truncated or corrupt file is reported, never half-read.
/// </summary>
public static class SafeTensors
{
    private const long MaxHeaderBytes = 100_000_000; // the format's own limit
    private static readonly UTF8Encoding s_strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Writes <paramref name="tensors"/> to <paramref name="path"/> atomically. Tensors are stored as their
    /// own type unless <paramref name="storedType"/> names another for a tensor (I64 for integer counters).</summary>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null, Func<string, SafeTensorsType?>? storedType = null)
    {
        var entries = tensors.ToList();
        AtomicFile.Write(path, stream => Write(stream, entries, metadata, storedType));
    }

    /// <summary>Writes the safetensors bytes to a stream.</summary>
    public static void Write(Stream stream, IReadOnlyList<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null, Func<string, SafeTensorsType?>? storedType = null)
    {
        var types = new SafeTensorsType[tensors.Count];
        long offset = 0;
        using var headerBuffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(headerBuffer))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) json.WriteString(k, v);
                json.WriteEndObject();
            }
            for (int i = 0; i < tensors.Count; i++)
            {
                var (name, tensor) = tensors[i];
                if (name == "__metadata__") throw new ArgumentException("SafeTensors: '__metadata__' is reserved and cannot name a tensor.");
                types[i] = storedType?.Invoke(name) ?? (tensor.DType == DType.Float32 ? SafeTensorsType.F32 : SafeTensorsType.F64);
                if (types[i] is not (SafeTensorsType.F32 or SafeTensorsType.F64 or SafeTensorsType.I64))
                    throw new ArgumentException($"SafeTensors: writing {types[i]} is not supported (tensor '{name}').");
                long bytes = (long)tensor.Length * ElementSize(types[i]);
                json.WriteStartObject(name);
                json.WriteString("dtype", types[i].ToString());
                json.WriteStartArray("shape");
                foreach (int d in tensor.Dims) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        // Pad the header with spaces to a multiple of 8 so the data that follows is aligned, as the reference writer does.
        int padding = (int)((8 - headerBuffer.Length % 8) % 8);
        Span<byte> lengthBytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(lengthBytes, (ulong)(headerBuffer.Length + padding));
        stream.Write(lengthBytes);
        headerBuffer.Position = 0;
        headerBuffer.CopyTo(stream);
        for (int i = 0; i < padding; i++) stream.WriteByte((byte)' ');
        for (int i = 0; i < tensors.Count; i++) WriteData(stream, tensors[i].Value, types[i]);
    }

    private static void WriteData(Stream stream, Tensor tensor, SafeTensorsType type)
    {
        double[] values = type == SafeTensorsType.F32 ? Array.Empty<double>() : tensor.ToDoubleArray();
        switch (type)
        {
            case SafeTensorsType.F32:
                float[] f = tensor.ToArray();
                var fb = new byte[f.Length * 4];
                for (int i = 0; i < f.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(fb.AsSpan(i * 4), f[i]);
                stream.Write(fb);
                break;
            case SafeTensorsType.F64:
                var db = new byte[values.Length * 8];
                for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteDoubleLittleEndian(db.AsSpan(i * 8), values[i]);
                stream.Write(db);
                break;
            default:
                var lb = new byte[values.Length * 8];
                for (int i = 0; i < values.Length; i++)
                {
                    double v = values[i];
                    if (v != Math.Round(v)) throw new ArgumentException($"SafeTensors: value {v} cannot be stored as I64.");
                    BinaryPrimitives.WriteInt64LittleEndian(lb.AsSpan(i * 8), (long)v);
                }
                stream.Write(lb);
                break;
        }
    }

    /// <summary>Reads a safetensors file, validating it completely first.</summary>
    public static SafeTensorsContent Load(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (FileNotFoundException) { throw new FileNotFoundException($"SafeTensors: no file at '{path}'.", path); }
        return Read(bytes, path);
    }

    /// <summary>Parses safetensors bytes; <paramref name="source"/> names the origin in error messages.</summary>
    public static SafeTensorsContent Read(ReadOnlySpan<byte> bytes, string source)
    {
        if (bytes.Length < 8) throw Corrupt(source, $"the file is {bytes.Length} bytes long, shorter than the 8-byte header length");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (headerLength > MaxHeaderBytes || (long)headerLength > bytes.Length - 8)
            throw Corrupt(source, $"the header claims {headerLength} bytes but the file has {bytes.Length - 8} after the length field");
        ReadOnlySpan<byte> dataSection = bytes[(8 + (int)headerLength)..];

        // JsonDocument checks UTF-8 only when a string is read, and then throws InvalidOperationException; decoding
        // strictly first reports bad bytes as what they are, a corrupt header.
        string header;
        try { header = s_strictUtf8.GetString(bytes.Slice(8, (int)headerLength)); }
        catch (DecoderFallbackException e) { throw Corrupt(source, $"the header is not valid UTF-8 ({e.Message.TrimEnd('.')})"); }
        JsonDocument document;
        try { document = JsonDocument.Parse(header); }
        catch (JsonException e) { throw Corrupt(source, $"the header is not valid JSON ({e.Message})"); }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object) throw Corrupt(source, "the header is not a JSON object");
            var metadata = new Dictionary<string, string>();
            var specs = new List<(string Name, SafeTensorsType Type, int[] Shape, long Begin, long End)>();
            var names = new HashSet<string>();
            foreach (JsonProperty property in document.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    if (property.Value.ValueKind != JsonValueKind.Object) throw Corrupt(source, "__metadata__ is not an object");
                    foreach (JsonProperty m in property.Value.EnumerateObject())
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : throw Corrupt(source, $"metadata '{m.Name}' is not a string");
                    continue;
                }
                // JSON objects may repeat a key; a second tensor of one name would silently replace the first.
                if (!names.Add(property.Name)) throw Corrupt(source, $"tensor '{property.Name}' is defined twice");
                specs.Add(ParseSpec(property, source));
            }

            // The data section must be covered exactly, with no gaps or overlaps.
            long expectedBegin = 0;
            foreach (var spec in specs.OrderBy(s => s.Begin))
            {
                if (spec.Begin != expectedBegin)
                    throw Corrupt(source, $"tensor '{spec.Name}' starts at byte {spec.Begin} of the data, expected {expectedBegin} (gap or overlap)");
                expectedBegin = spec.End;
            }
            if (expectedBegin != dataSection.Length)
                throw Corrupt(source, $"the tensors cover {expectedBegin} bytes of data but the file holds {dataSection.Length} (truncated or trailing bytes)");

            var tensors = new Dictionary<string, Tensor>();
            var stored = new Dictionary<string, SafeTensorsType>();
            foreach (var (name, type, shape, begin, end) in specs)
            {
                tensors[name] = Decode(dataSection[(int)begin..(int)end], type, shape);
                stored[name] = type;
            }
            return new SafeTensorsContent(tensors, metadata, stored);
        }
    }

    private static (string, SafeTensorsType, int[], long, long) ParseSpec(JsonProperty property, string source)
    {
        string name = property.Name;
        JsonElement e = property.Value;
        if (e.ValueKind != JsonValueKind.Object
            || !e.TryGetProperty("dtype", out JsonElement dtype) || dtype.ValueKind != JsonValueKind.String
            || !e.TryGetProperty("shape", out JsonElement shape) || shape.ValueKind != JsonValueKind.Array
            || !e.TryGetProperty("data_offsets", out JsonElement offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw Corrupt(source, $"tensor '{name}' lacks a string dtype, an array shape or two data_offsets");
        // Only the exact names: Enum.TryParse would also accept "0" or "F32, F64".
        if (!Enum.GetNames<SafeTensorsType>().Contains(dtype.GetString()) || !Enum.TryParse(dtype.GetString(), out SafeTensorsType type))
            throw Corrupt(source, $"tensor '{name}' has unsupported dtype '{dtype.GetString()}' (supported: F32, F64, F16, BF16, I64, I32)");
        var dims = new List<int>();
        long count = 1;
        foreach (JsonElement d in shape.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out int size) || size < 0)
                throw Corrupt(source, $"tensor '{name}' has an invalid shape entry {d}");
            dims.Add(size);
            count *= size;
            if (count > int.MaxValue) throw Corrupt(source, $"tensor '{name}' has too many elements");
        }
        if (offsets[0].ValueKind != JsonValueKind.Number || offsets[1].ValueKind != JsonValueKind.Number
            || !offsets[0].TryGetInt64(out long begin) || !offsets[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw Corrupt(source, $"tensor '{name}' has invalid data_offsets");
        if (end - begin != count * ElementSize(type))
            throw Corrupt(source, $"tensor '{name}' of shape {ShapeUtil.Format(dims.ToArray())} and dtype {type} needs {count * ElementSize(type)} bytes, its offsets span {end - begin}");
        return (name, type, dims.ToArray(), begin, end);
    }

    private static Tensor Decode(ReadOnlySpan<byte> data, SafeTensorsType type, int[] shape)
    {
        Tensor t = Tensor.Allocate(type == SafeTensorsType.F64 ? DType.Float64 : DType.Float32, shape, clear: false, scoped: false);
        int n = t.Length;
        if (type == SafeTensorsType.F64)
        {
            Span<double> d = t.SpanD;
            for (int i = 0; i < n; i++) d[i] = BinaryPrimitives.ReadDoubleLittleEndian(data[(i * 8)..]);
            return t;
        }
        Span<float> f = t.SpanF;
        for (int i = 0; i < n; i++)
            f[i] = type switch
            {
                SafeTensorsType.F32 => BinaryPrimitives.ReadSingleLittleEndian(data[(i * 4)..]),
                SafeTensorsType.I64 => BinaryPrimitives.ReadInt64LittleEndian(data[(i * 8)..]),
                SafeTensorsType.I32 => BinaryPrimitives.ReadInt32LittleEndian(data[(i * 4)..]),
                SafeTensorsType.F16 => (float)BinaryPrimitives.ReadHalfLittleEndian(data[(i * 2)..]),
                _ => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(data[(i * 2)..]) << 16),
            };
        return t;
    }

    private static int ElementSize(SafeTensorsType type) => type switch
    {
        SafeTensorsType.F64 or SafeTensorsType.I64 => 8,
        SafeTensorsType.F32 or SafeTensorsType.I32 => 4,
        _ => 2,
    };

    private static InvalidDataException Corrupt(string source, string what) => new($"SafeTensors: '{source}' is not a valid safetensors file: {what}.");
}
