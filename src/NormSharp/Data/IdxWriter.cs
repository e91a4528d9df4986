using System.Buffers.Binary;
using System.IO.Compression;

namespace NormSharp.Data;

/// <summary>Writes arrays of unsigned bytes in the IDX format that <see cref="IdxReader"/> reads, raw or gzip.</summary>
public static class IdxWriter
{
    /// <summary>Writes <paramref name="array"/> to <paramref name="path"/>, gzip-compressed when
    /// <paramref name="gzip"/> is true, replacing any existing file.</summary>
    public static void Write(string path, IdxArray array, bool gzip = false)
    {
        ArgumentNullException.ThrowIfNull(path);
        using FileStream file = File.Create(path);
        Write(file, array, gzip);
    }

    /// <summary>Writes <paramref name="array"/> to <paramref name="stream"/>, gzip-compressed when
    /// <paramref name="gzip"/> is true; the stream is left open.</summary>
    public static void Write(Stream stream, IdxArray array, bool gzip = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(array);
        if (!gzip)
        {
            WriteContent(stream, array);
            return;
        }
        using var compressed = new GZipStream(stream, CompressionLevel.Optimal, leaveOpen: true);
        WriteContent(compressed, array);
    }

    private static void WriteContent(Stream target, IdxArray array)
    {
        target.Write(Header(array));
        target.Write(array.Data);
    }

    /// <summary>The IDX header of <paramref name="array"/>: 0x00 0x00, the type 0x08, the rank, then each dimension
    /// as a big-endian uint32.</summary>
    private static byte[] Header(IdxArray array)
    {
        var header = new byte[4 + 4 * array.Dimensions.Count];
        header[2] = IdxReader.UnsignedByteType;
        header[3] = (byte)array.Dimensions.Count;
        for (int k = 0; k < array.Dimensions.Count; k++)
            BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4 + 4 * k), (uint)array.Dimensions[k]);
        return header;
    }
}
