using NormSharp.Onnx.Protobuf;

namespace NormSharp.Cli.Tests;

/// <summary><c>normsharp import</c> on a model of the ONNX backend tests (../shared/data/onnx-backend-tests beside the
/// repository).</summary>
[Collection("Console")]
public sealed class ImportCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("normsharp-import-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Case(string name, string suite = "pytorch-converted")
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "NormSharp.slnx")))
                return Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "data", "onnx-backend-tests", suite, name));
        throw new DirectoryNotFoundException("no NormSharp.slnx above the test assembly");
    }

    [Fact]
    public void Import_prints_the_graph_and_runs_an_input_file_to_the_expected_output()
    {
        string folder = Case("test_Conv2d_depthwise_padded"), written = Path.Combine(_dir, "y.pb");
        var (code, output, err) = CliTests.Run("import", Path.Combine(folder, "model.onnx"), "--input", Path.Combine(folder, "test_data_set_0", "input_0.pb"), "--output", written);
        Assert.True(code == 0, err + output);
        Assert.Contains("GroupedConv2d(4, 4, kernel_size=(3, 3)", output); // the layer column is clipped
        Assert.Contains("Total params: 40 (trainable 40)", output);
        Assert.Contains("warning: opset 6 is older than 7", output);
        float[] expected = OnnxMessage.Parse<TensorProto>(File.ReadAllBytes(Path.Combine(folder, "test_data_set_0", "output_0.pb"))).ToFloats();
        float[] actual = OnnxMessage.Parse<TensorProto>(File.ReadAllBytes(written)).ToFloats();
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-4 * Math.Max(1, Math.Abs(expected[i])), $"output {i}: {expected[i]} vs {actual[i]}");
    }

    [Fact]
    public void Import_of_an_unsupported_operator_names_the_node_and_opset()
    {
        var (code, _, err) = CliTests.Run("import", Path.Combine(Case("test_operator_repeat", "pytorch-operator"), "model.onnx"));
        Assert.Equal(1, code);
        Assert.Contains("unsupported operator: node #0 (Tile) at opset 9", err);
    }
}
