using NormSharp.Cli;
using NormSharp.Keras;
using NormSharp.Onnx;
using NormSharp.Serialization;

namespace NormSharp.Cli.Tests;

/// <summary><c>normsharp export</c> through the real entry point (see <see cref="CliTests.Run"/>).</summary>
[Collection("Console")]
public sealed class ExportCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("normsharp-export-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Run(params string[] args) => CliTests.Run(args);

    /// <summary>A model file as 'normsharp train' writes it, without the training.</summary>
    private string ModelFileOf(Keras.Sequential model, string architecture)
    {
        string path = Path.Combine(_dir, "model.safetensors");
        model.Network.SaveSafeTensors(path, ModelFile.Metadata(architecture, "batch", 10));
        return path;
    }

    [Theory]
    [InlineData(false, "(Conv BatchNormalization Relu MaxPool Conv BatchNormalization Relu MaxPool Conv BatchNormalization Relu MaxPool Flatten Gemm Relu BatchNormalization Gemm Softmax)")]
    [InlineData(true, "(Conv Relu MaxPool Conv Relu MaxPool Conv Relu MaxPool Flatten Gemm Relu BatchNormalization Gemm Softmax), 3 BatchNorm layers folded")]
    public void Export_writes_an_onnx_file_that_imports_with_the_models_outputs(bool fold, string nodes)
    {
        Keras.Sequential model = SeedModels.Cnn(generator: new RandomGenerator(9));
        string modelFile = ModelFileOf(model, "seed-cnn");
        string onnx = Path.Combine(_dir, "out", "model.onnx");
        var args = new List<string> { "export", "--model-file", modelFile, "--onnx", onnx };
        if (fold) args.Add("--fold-bn");
        var (code, output, err) = Run(args.ToArray());
        Assert.True(code == 0, err + output);
        Assert.Contains($"wrote {onnx}: ", output);
        Assert.Contains(nodes, output);
        Assert.Contains("input 'input' (N, 1, 28, 28) → output 'output' (N, 10)", output);
        Tensor x = Tensor.Uniform(new[] { 3, 1, 28, 28 }, generator: new RandomGenerator(1));
        float[] expected = model.Predict(x).ToArray(), actual = OnnxImporter.Load(onnx).Predict(x).ToArray();
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5, $"output {i}: {expected[i]} vs {actual[i]}");
    }

    [Fact]
    public void Export_without_an_output_file_says_what_is_missing()
    {
        var (code, _, err) = Run("export", "--model-file", "x.safetensors");
        Assert.Equal(2, code);
        Assert.Contains("--onnx OUT.onnx is required", err);
    }

    [Fact]
    public void Export_of_a_file_without_architecture_is_reported_not_thrown()
    {
        string path = Path.Combine(_dir, "bare.safetensors");
        SeedModels.Mlp().Network.SaveSafeTensors(path);
        var (code, _, err) = Run("export", "--model-file", path, "--onnx", Path.Combine(_dir, "m.onnx"));
        Assert.Equal(1, code);
        Assert.Contains("does not say which architecture it holds", err);
        Assert.False(File.Exists(Path.Combine(_dir, "m.onnx")));
    }
}
