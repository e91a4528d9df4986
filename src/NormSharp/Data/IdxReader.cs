using System.Buffers.Binary;
using System.IO.Compression;

namespace NormSharp.Data;

/// <summary>
/// Reads IDX files (LeCun et al., http://yann.lecun.com/exdb/mnist/), raw or gzip-compressed, checking every part of
/// the format: the magic number (two zero bytes, the data type, the number of dimensions), the big-endian dimension
/// sizes, and that the data that follows the header has exactly the length the dimensions promise.
/// </summary>
/// <remarks>
/// Compression is detected from the content (the gzip magic 0x1f 0x8b), never from the file name. A file that is
/// truncated, has trailing bytes, is not valid gzip or describes an impossible array raises an
/// <see cref="InvalidDataException"/> whose message names the file and what is wrong; nothing is returned from a
/// file that was not read completely.
/// </remarks>
public static class IdxReader
{
    /// <summary>The IDX type code of unsigned bytes, the only element type MNIST-family files use.</summary>
    public const byte UnsignedByteType = 0x08;

    // Deflate cannot expand data by more than about 1032:1, which bounds how much a gzip file can honestly hold
    // and lets a header that promises more be rejected before the payload is allocated.
    private const long MaxDeflateRatio = 1032;

    /// <summary>Reads the IDX file at <paramref name="path"/> (raw or gzip).</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a complete, well-formed IDX file of unsigned bytes.</exception>
    public static IdxArray Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using FileStream file = File.OpenRead(path);
        return Read(file, path);
    }

    /// <summary>Reads an IDX array (raw or gzip) from <paramref name="stream"/> up to its end;
    /// <paramref name="sourceName"/> names the source in error messages.</summary>
    /// <exception cref="InvalidDataException">The stream is not a complete, well-formed IDX file of unsigned bytes.</exception>
    public static IdxArray Read(Stream stream, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(sourceName);
        if (!stream.CanSeek)
        {
            // Detecting gzip needs a look at the first bytes and checking lengths needs the size: read it into memory.
            var copy = new MemoryStream();
            stream.CopyTo(copy);
            copy.Position = 0;
            stream = copy;
        }
        long start = stream.Position;
        long fileLength = stream.Length - start;
        if (fileLength == 0) throw Invalid(sourceName, "the file is empty.");
        Span<byte> signature = stackalloc byte[2];
        int signatureLength = stream.ReadAtLeast(signature, 2, throwOnEndOfStream: false);
        stream.Position = start;
        bool gzip = signatureLength == 2 && signature[0] == 0x1f && signature[1] == 0x8b;
        if (!gzip) return ReadContent(stream, sourceName, rawLength: fileLength, compressedLength: null);
        using var decompressed = new GZipStream(stream, CompressionMode.Decompress, leaveOpen: true);
        return ReadContent(decompressed, sourceName, rawLength: null, compressedLength: fileLength);
    }

    // rawLength is the exact length of an uncompressed file; compressedLength the size of a gzip file.
    private static IdxArray ReadContent(Stream content, string source, long? rawLength, long? compressedLength)
    {
        Span<byte> magic = stackalloc byte[4];
        int got = ReadUpTo(content, magic, source);
        if (got < 4) throw Invalid(source, $"the file ends inside the 4-byte magic number (found {got} bytes).");
        if (magic[0] != 0 || magic[1] != 0)
            throw Invalid(source, $"not an IDX file: the magic number must start with two zero bytes, found {Hex(magic)}.");
        if (magic[2] != UnsignedByteType)
            throw Invalid(source, $"data type 0x{magic[2]:x2} ({TypeName(magic[2])}) is not supported; only 0x08 (unsigned byte) is.");
        int rank = magic[3];
        if (rank == 0) throw Invalid(source, "the magic number declares 0 dimensions; an IDX array needs at least one.");

        int headerLength = 4 + 4 * rank;
        var sizes = new byte[4 * rank];
        got = ReadUpTo(content, sizes, source);
        if (got < sizes.Length)
            throw Invalid(source, $"the file ends inside the header: {rank} dimensions need a {headerLength}-byte header, found {4 + got} bytes.");
        var dims = new long[rank];
        for (int k = 0; k < rank; k++) dims[k] = BinaryPrimitives.ReadUInt32BigEndian(sizes.AsSpan(4 * k));
        string shape = string.Join(" × ", dims);

        for (int k = 0; k < rank; k++)
            if (dims[k] > int.MaxValue)
                throw Invalid(source, $"dimension {k} is {dims[k]}, more than an array axis can hold ({int.MaxValue}); the header is corrupt.");
        long expected = ElementCount(dims);
        if (expected > Array.MaxLength)
            throw Invalid(source, $"the dimensions {shape} describe {(expected == long.MaxValue ? "more than 2^63" : expected.ToString())} values, more than one array can hold ({Array.MaxLength}); the header is corrupt.");
        string what = $"{expected} bytes of data after the {headerLength}-byte header ({shape} unsigned bytes)";
        if (rawLength is long length && length - headerLength != expected)
            throw Invalid(source, $"expected {what}, found {FoundLength(length - headerLength, expected)}.");
        if (compressedLength is long packed && expected > packed * MaxDeflateRatio)
            throw Invalid(source, $"expected {what}, but {packed} bytes of gzip cannot hold that many; the header is corrupt.");

        var data = new byte[expected];
        int read = ReadUpTo(content, data, source);
        if (read < data.Length) throw Invalid(source, $"expected {what}, found {read}.");
        long trailing = CountRemaining(content, source);
        if (trailing > 0) throw Invalid(source, $"expected {what}, found {FoundLength(expected + trailing, expected)}.");
        return new IdxArray(dims.Select(d => (int)d).ToArray(), data);
    }

    /// <summary>The product of the dimensions, or <see cref="long.MaxValue"/> when it does not fit in a long.</summary>
    internal static long ElementCount(ReadOnlySpan<long> dims)
    {
        foreach (long d in dims) if (d == 0) return 0;
        long count = 1;
        foreach (long d in dims) count = count > long.MaxValue / d ? long.MaxValue : count * d;
        return count;
    }

    // Fills the buffer unless the stream ends first; returns how many bytes were read. GZipStream reports corrupt
    // compressed data as InvalidDataException without saying which file, so it is rethrown with the name.
    private static int ReadUpTo(Stream content, Span<byte> buffer, string source)
    {
        try
        {
            return content.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        }
        catch (InvalidDataException e)
        {
            throw Invalid(source, $"the gzip data is corrupt ({e.Message})", e);
        }
    }

    private static long CountRemaining(Stream content, string source)
    {
        Span<byte> buffer = stackalloc byte[4096];
        long total = 0;
        int n;
        while ((n = ReadUpTo(content, buffer, source)) > 0) total += n;
        return total;
    }

    private static string FoundLength(long found, long expected) =>
        found > expected ? $"{found} ({found - expected} trailing bytes)" : found.ToString();

    private static string Hex(ReadOnlySpan<byte> bytes) => string.Join(" ", bytes.ToArray().Select(b => $"0x{b:x2}"));

    // Type codes of the IDX specification; named in the error so a user sees what kind of file they have.
    private static string TypeName(byte code) => code switch
    {
        0x09 => "signed byte",
        0x0B => "int16",
        0x0C => "int32",
        0x0D => "float32",
        0x0E => "float64",
        _ => "not an IDX type",
    };

    private static InvalidDataException Invalid(string source, string problem, Exception? inner = null) =>
        new($"{source}: {problem}", inner);
}
