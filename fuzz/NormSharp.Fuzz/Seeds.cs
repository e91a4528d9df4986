using Google.Protobuf;
using NormSharp.Data;
using NormSharp.Nn;
using NormSharp.Onnx;
using NormSharp.Serialization;

namespace NormSharp.Fuzz;

/// <summary>The starting corpus of each target: small valid files written by NormSharp itself, covering the format's
/// variants (raw and gzip IDX of several ranks; safetensors of each written dtype with metadata; ONNX models with each
/// family of operators the importer reads). afl++ works best from small seeds, so every one is kept tiny.</summary>
public static class Seeds
{
    /// <summary>Writes target <paramref name="target"/>'s seeds into <paramref name="directory"/>.</summary>
    public static void Write(string target, string directory)
    {
        Directory.CreateDirectory(directory);
        IEnumerable<(string Name, byte[] Bytes)> seeds = target switch
        {
            "idx" => Idx(),
            "safetensors" => SafeTensorsFiles(),
            "onnx" => OnnxModels(),
            _ => throw new ArgumentException($"no seeds for target '{target}'", nameof(target)),
        };
        foreach (var (name, bytes) in seeds) File.WriteAllBytes(Path.Combine(directory, name), bytes);
    }

    private static IEnumerable<(string, byte[])> Idx()
    {
        var arrays = new (string Name, int[] Dims)[] { ("labels", new[] { 5 }), ("images", new[] { 2, 3, 3 }), ("matrix", new[] { 3, 4 }), ("empty", new[] { 0, 4 }) };
        foreach (var (name, dims) in arrays)
        {
            var data = new byte[dims.Aggregate(1, (a, b) => a * b)];
            for (int i = 0; i < data.Length; i++) data[i] = (byte)(i * 37);
            foreach (bool gzip in new[] { false, true })
            {
                using var stream = new MemoryStream();
                IdxWriter.Write(stream, new IdxArray(dims, data), gzip);
                yield return ($"{name}{(gzip ? ".gz" : "")}.idx", stream.ToArray());
            }
        }
    }

    private static IEnumerable<(string, byte[])> SafeTensorsFiles()
    {
        var random = new RandomGenerator(1);
        // Saved the way a checkpoint is (batch counters as I64), through a file because that is the public way.
        string checkpoint = Path.GetTempFileName();
        new Sequential(new Linear(3, 2, generator: random), new BatchNorm1d(2)).SaveSafeTensors(checkpoint, new Dictionary<string, string> { ["format"] = "pt" });
        yield return ("linear-batchnorm.safetensors", File.ReadAllBytes(checkpoint));
        File.Delete(checkpoint);
        var f64 = Tensor.FromArray(new double[] { 0.5, -1.25, 3, 8 }, 2, 2);
        yield return ("f64-scalar.safetensors", Bytes(new Dictionary<string, Tensor> { ["w"] = f64, ["s"] = Tensor.FromArray(new float[] { 2 }) }));
        yield return ("empty.safetensors", Bytes(new Dictionary<string, Tensor>()));
    }

    private static byte[] Bytes(IReadOnlyDictionary<string, Tensor> tensors)
    {
        using var stream = new MemoryStream();
        SafeTensors.Write(stream, tensors.ToList());
        return stream.ToArray();
    }

    private static IEnumerable<(string, byte[])> OnnxModels()
    {
        var random = new RandomGenerator(2);
        var models = new (string Name, Module Network, int[] Sample)[]
        {
            ("mlp-batchnorm", new Sequential(new Linear(4, 3, generator: random), new BatchNorm1d(3), new ReLU(), new Linear(3, 2, generator: random), new Softmax()), new[] { 4 }),
            ("conv-groupnorm-pool", new Sequential(new Conv2d(1, 2, 3, padding: 1, generator: random), new GroupNorm(2, 2), new LeakyReLU(0.1),
                new MaxPool2d(2), new Flatten(), new Linear(8, 2, generator: random), new LogSoftmax()), new[] { 1, 4, 4 }),
            ("layernorm-rmsnorm", new Sequential(new Linear(4, 4, generator: random), new LayerNorm(4), new Tanh(), new RMSNorm(4), new Dropout(0.5), new Sigmoid()), new[] { 4 }),
            ("convtranspose-instancenorm", new Sequential(new Reshape(2, 2, 2), new ConvTranspose2d(2, 1, 2, stride: 2, generator: random), new InstanceNorm2d(1, affine: true),
                new AvgPool2d(2), new BatchNorm2d(1)), new[] { 8 }),
        };
        foreach (var (name, network, sample) in models) yield return ($"{name}.onnx", OnnxExporter.Export(network, sample).ToByteArray());
    }
}
