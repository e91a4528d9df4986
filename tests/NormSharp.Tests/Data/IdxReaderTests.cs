using System.IO.Compression;
using NormSharp.Data;

namespace NormSharp.Tests.Data;

public class IdxReaderTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static IdxArray SmallImages() => new([2, 3, 4], Enumerable.Range(0, 24).Select(i => (byte)(i * 10)).ToArray());

    private string WriteBytes(string name, byte[] content, bool gzip = false)
    {
        string path = _folder.File(name);
        if (!gzip)
        {
            File.WriteAllBytes(path, content);
            return path;
        }
        using FileStream file = File.Create(path);
        using var compressed = new GZipStream(file, CompressionLevel.Optimal);
        compressed.Write(content);
        return path;
    }

    // The IDX encoding of SmallImages(), built by hand: magic 00 00 08 03, dims 2, 3, 4 big-endian, then 24 bytes.
    private static byte[] SmallImagesBytes() =>
        [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, .. Enumerable.Range(0, 24).Select(i => (byte)(i * 10))];

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Written_file_reads_back_with_the_same_dimensions_and_bytes(bool gzip)
    {
        string path = _folder.File(gzip ? "images.idx.gz" : "images.idx");
        IdxWriter.Write(path, SmallImages(), gzip);
        IdxArray read = IdxReader.Read(path);
        Assert.Equal(new[] { 2, 3, 4 }, read.Dimensions);
        Assert.Equal(SmallImages().Data, read.Data);
        Assert.Equal(2, read.Count);
    }

    [Fact]
    public void Writer_produces_the_documented_byte_layout()
    {
        var stream = new MemoryStream();
        IdxWriter.Write(stream, SmallImages());
        Assert.Equal(SmallImagesBytes(), stream.ToArray());
    }

    [Fact]
    public void Compression_is_detected_from_content_not_file_name()
    {
        string gzipNamedRaw = WriteBytes("looks-compressed.gz", SmallImagesBytes());
        string rawNamedGzip = WriteBytes("looks-raw-idx3-ubyte", SmallImagesBytes(), gzip: true);
        Assert.Equal(SmallImages().Data, IdxReader.Read(gzipNamedRaw).Data);
        Assert.Equal(SmallImages().Data, IdxReader.Read(rawNamedGzip).Data);
    }

    [Fact]
    public void Reads_from_a_non_seekable_stream()
    {
        var compressed = new MemoryStream();
        IdxWriter.Write(compressed, SmallImages(), gzip: true);
        using var pipe = new NonSeekableStream(compressed.ToArray());
        Assert.Equal(SmallImages().Data, IdxReader.Read(pipe, "pipe").Data);
    }

    [Fact]
    public void Labels_file_of_rank_one_reads_back()
    {
        string path = _folder.File("labels.gz");
        IdxWriter.Write(path, new IdxArray([5], [3, 1, 4, 1, 5]), gzip: true);
        IdxArray labels = IdxReader.Read(path);
        Assert.Equal(new[] { 5 }, labels.Dimensions);
        Assert.Equal(new byte[] { 3, 1, 4, 1, 5 }, labels.Data);
    }

    private InvalidDataException ReadFails(string path) => Assert.Throws<InvalidDataException>(() => IdxReader.Read(path));

    [Fact]
    public void Wrong_magic_is_rejected_with_the_bytes_found()
    {
        byte[] content = SmallImagesBytes();
        content[0] = 0x50; content[1] = 0x4b;
        string path = WriteBytes("zip.idx", content);
        Assert.Equal($"{path}: not an IDX file: the magic number must start with two zero bytes, found 0x50 0x4b 0x08 0x03.", ReadFails(path).Message);
    }

    [Fact]
    public void Unsupported_data_type_is_named()
    {
        byte[] content = SmallImagesBytes();
        content[2] = 0x0D;
        string path = WriteBytes("float.idx", content);
        Assert.Equal($"{path}: data type 0x0d (float32) is not supported; only 0x08 (unsigned byte) is.", ReadFails(path).Message);
    }

    [Fact]
    public void Zero_dimensions_are_rejected()
    {
        string path = WriteBytes("rank0.idx", [0, 0, 8, 0]);
        Assert.Equal($"{path}: the magic number declares 0 dimensions; an IDX array needs at least one.", ReadFails(path).Message);
    }

    [Fact]
    public void Empty_file_is_rejected()
    {
        string path = WriteBytes("empty.idx", []);
        Assert.Equal($"{path}: the file is empty.", ReadFails(path).Message);
    }

    [Fact]
    public void File_ending_inside_the_header_is_rejected()
    {
        string path = WriteBytes("short-header.idx", SmallImagesBytes()[..10]);
        Assert.Equal($"{path}: the file ends inside the header: 3 dimensions need a 16-byte header, found 10 bytes.", ReadFails(path).Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Truncated_payload_reports_expected_and_found_lengths(bool gzip)
    {
        string path = WriteBytes(gzip ? "truncated.gz" : "truncated.idx", SmallImagesBytes()[..26], gzip);
        Assert.Equal($"{path}: expected 24 bytes of data after the 16-byte header (2 × 3 × 4 unsigned bytes), found 10.", ReadFails(path).Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Trailing_bytes_are_rejected(bool gzip)
    {
        string path = WriteBytes(gzip ? "trailing.gz" : "trailing.idx", [.. SmallImagesBytes(), 1, 2, 3], gzip);
        Assert.Equal($"{path}: expected 24 bytes of data after the 16-byte header (2 × 3 × 4 unsigned bytes), found 27 (3 trailing bytes).", ReadFails(path).Message);
    }

    [Fact]
    public void MNIST_sized_header_with_a_short_payload_names_both_sizes()
    {
        byte[] header = [0, 0, 8, 3, 0, 0, 0xEA, 0x60, 0, 0, 0, 28, 0, 0, 0, 28];
        string path = WriteBytes("train-images-idx3-ubyte", [.. header, .. new byte[1000]]);
        Assert.Equal($"{path}: expected 47040000 bytes of data after the 16-byte header (60000 × 28 × 28 unsigned bytes), found 1000.", ReadFails(path).Message);
    }

    [Fact]
    public void Corrupt_gzip_data_is_reported_as_such()
    {
        var compressed = new MemoryStream();
        IdxWriter.Write(compressed, SmallImages(), gzip: true);
        byte[] content = compressed.ToArray();
        // Keep the gzip header (10 bytes) and fill the deflate stream with a reserved block type (BTYPE = 11).
        for (int i = 10; i < content.Length; i++) content[i] = 0xFF;
        string path = WriteBytes("corrupt.gz", content);
        InvalidDataException e = ReadFails(path);
        Assert.StartsWith($"{path}: the gzip data is corrupt (", e.Message);
        Assert.IsType<InvalidDataException>(e.InnerException);
    }

    [Fact]
    public void Dimensions_whose_product_overflows_an_array_are_rejected_before_allocating()
    {
        byte[] content = [0, 0, 8, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 2, 3];
        string path = WriteBytes("huge.idx", content);
        Assert.Equal($"{path}: the dimensions 65536 × 65536 × 65536 describe 281474976710656 values, more than one array can hold ({Array.MaxLength}); the header is corrupt.", ReadFails(path).Message);
    }

    [Fact]
    public void Dimension_beyond_int_range_is_rejected_even_when_another_is_zero()
    {
        byte[] content = [0, 0, 8, 2, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];
        string path = WriteBytes("axis.idx", content);
        Assert.Equal($"{path}: dimension 1 is 4294967295, more than an array axis can hold ({int.MaxValue}); the header is corrupt.", ReadFails(path).Message);
    }

    [Fact]
    public void Long_product_overflow_is_reported_without_wrapping()
    {
        byte[] content = [0, 0, 8, 3, 0x7F, 0xFF, 0xFF, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF];
        string path = WriteBytes("overflow.idx", content);
        Assert.Equal($"{path}: the dimensions 2147483647 × 2147483647 × 2147483647 describe more than 2^63 values, more than one array can hold ({Array.MaxLength}); the header is corrupt.", ReadFails(path).Message);
    }

    [Fact]
    public void Gzip_header_promising_more_than_the_file_can_hold_is_rejected()
    {
        // 1,000,000,000 bytes promised by a gzip file of a few dozen bytes: more than deflate's 1032:1 ratio allows.
        byte[] content = [0, 0, 8, 1, 0x3B, 0x9A, 0xCA, 0x00];
        string path = WriteBytes("promises.gz", content, gzip: true);
        long size = new FileInfo(path).Length;
        Assert.Equal($"{path}: expected 1000000000 bytes of data after the 8-byte header (1000000000 unsigned bytes), but {size} bytes of gzip cannot hold that many; the header is corrupt.", ReadFails(path).Message);
    }

    [Fact]
    public void Missing_file_throws_file_not_found()
    {
        Assert.Throws<FileNotFoundException>(() => IdxReader.Read(_folder.File("absent.idx")));
    }

    private sealed class NonSeekableStream(byte[] content) : MemoryStream(content)
    {
        public override bool CanSeek => false;
    }
}
