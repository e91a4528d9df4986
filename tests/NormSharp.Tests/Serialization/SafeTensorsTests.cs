using System.Buffers.Binary;
using System.Text;
using NormSharp.Nn;
using NormSharp.Serialization;

namespace NormSharp.Tests.Serialization;

public sealed class SafeTensorsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("normsharp-st-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Dictionary<string, Tensor> Sample() => new()
    {
        ["0.weight"] = Tensor.FromArray(new float[] { 1.5f, -2, 3, 4.25f, 5, 6 }, 2, 3),
        ["0.bias"] = Tensor.FromArray(new double[] { 0.1, 0.2 }, 2),
        ["1.num_batches_tracked"] = Tensor.Scalar(7),
    };

    [Fact]
    public void Round_trip_keeps_names_shapes_values_types_and_metadata()
    {
        string path = Path.Combine(_dir, "m.safetensors");
        SafeTensors.Save(path, Sample(), new Dictionary<string, string> { ["epoch"] = "3" }, ModuleSerialization.StoredType);
        SafeTensorsContent c = SafeTensors.Load(path);
        Assert.Equal(new[] { "0.weight", "0.bias", "1.num_batches_tracked" }, c.Tensors.Keys);
        Assert.Equal(new float[] { 1.5f, -2, 3, 4.25f, 5, 6 }, c.Tensors["0.weight"].ToArray());
        Assert.Equal(new[] { 2, 3 }, c.Tensors["0.weight"].Shape);
        Assert.Equal(DType.Float64, c.Tensors["0.bias"].DType);
        Assert.Equal(SafeTensorsType.I64, c.StoredTypes["1.num_batches_tracked"]);
        Assert.Equal(7.0, c.Tensors["1.num_batches_tracked"].Item());
        Assert.Equal("3", c.Metadata["epoch"]);
    }

    [Fact]
    public void Header_is_the_documented_layout()
    {
        var stream = new MemoryStream();
        SafeTensors.Write(stream, new List<KeyValuePair<string, Tensor>> { new("w", Tensor.FromArray(new float[] { 1, 2 })) });
        byte[] bytes = stream.ToArray();
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0UL, n % 8);
        string header = Encoding.UTF8.GetString(bytes, 8, (int)n).TrimEnd();
        Assert.Equal("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", header);
        Assert.Equal(8 + (int)n + 8, bytes.Length);
        Assert.Equal(1f, BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(8 + (int)n)));
    }

    [Fact]
    public void Every_truncation_is_reported_never_half_read()
    {
        var stream = new MemoryStream();
        SafeTensors.Write(stream, Sample().ToList());
        byte[] bytes = stream.ToArray();
        for (int cut = 0; cut < bytes.Length; cut++)
        {
            var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(bytes.AsSpan(0, cut), "cut.safetensors"));
            Assert.Contains("cut.safetensors", e.Message);
        }
    }

    [Theory]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", "needs 12 bytes")]
    [InlineData("{\"w\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}", "unsupported dtype 'U8'")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", "lacks")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "starts at byte 4")]
    [InlineData("not json", "not valid JSON")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"0\",8]}}", "invalid data_offsets")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", "tensor 'w' is defined twice")]
    [InlineData("{\"w\":{\"dtype\":\"0\",\"shape\":[2],\"data_offsets\":[0,8]}}", "unsupported dtype '0'")]
    [InlineData("{\"w\":{\"dtype\":\"F32, F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", "unsupported dtype 'F32, F64'")]
    public void Corrupt_headers_are_reported_with_the_reason(string header, string reason)
    {
        byte[] h = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + h.Length + 8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)h.Length);
        h.CopyTo(bytes, 8);
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(bytes, "bad.safetensors"));
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void A_save_interrupted_at_any_byte_leaves_the_previous_file_loadable()
    {
        string path = Path.Combine(_dir, "ckpt.safetensors");
        SafeTensors.Save(path, Sample());
        byte[] before = File.ReadAllBytes(path);
        var random = new RandomGenerator(99);
        for (int trial = 0; trial < 20; trial++)
        {
            int failAt = random.NextInt(before.Length);
            Assert.Throws<IOException>(() => AtomicFile.Write(path, s =>
            {
                s.Write(before, 0, failAt);
                throw new IOException("simulated crash");
            }));
            Assert.Equal(before, File.ReadAllBytes(path));
            Assert.Equal(3, SafeTensors.Load(path).Tensors.Count);
        }
        Assert.Single(Directory.GetFiles(_dir)); // no temporary files left behind
    }

    [Fact]
    public void Module_round_trip_and_mismatch_is_reported_by_name()
    {
        string path = Path.Combine(_dir, "model.safetensors");
        var model = new Sequential(new Linear(3, 4), new Linear(4, 2));
        model.SaveSafeTensors(path);
        var copy = new Sequential(new Linear(3, 4), new Linear(4, 2));
        copy.LoadSafeTensors(path);
        Assert.Equal(model.StateDict()["1.weight"].ToArray(), copy.StateDict()["1.weight"].ToArray());

        var other = new Sequential(new Linear(3, 5), new Linear(5, 2));
        float[] untouched = other.StateDict()["0.weight"].ToArray();
        var e = Assert.Throws<InvalidDataException>(() => other.LoadSafeTensors(path));
        Assert.Contains("'0.weight' has shape (4, 3) in the file, the model expects (5, 3)", e.Message);
        Assert.Equal(untouched, other.StateDict()["0.weight"].ToArray());
    }
}
