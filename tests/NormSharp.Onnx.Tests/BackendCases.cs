using NormSharp.Onnx.Protobuf;

namespace NormSharp.Onnx.Tests;

/// <summary>
/// The ONNX project's backend test models (<c>../shared/data/onnx-backend-tests</c> beside the repository, Apache-2.0):
/// each case is a folder with model.onnx and test_data_set_0/input_*.pb, output_*.pb (serialized TensorProtos computed
/// by PyTorch). Found from the test assembly's folder upwards, so the tests need no network.
/// </summary>
public static class BackendCases
{
    /// <summary>The suites run: single PyTorch modules and single PyTorch operators exported to ONNX.</summary>
    public static readonly string[] Suites = { "pytorch-converted", "pytorch-operator" };

    /// <summary>The folder holding the suites: the repository's ../shared/data/onnx-backend-tests.</summary>
    public static string Root { get; } = FindRoot();

    /// <summary>Every case as "suite/name".</summary>
    public static IEnumerable<string> All() =>
        Suites.SelectMany(suite => Directory.GetDirectories(Path.Combine(Root, suite)).Select(d => $"{suite}/{Path.GetFileName(d)}")).Order(StringComparer.Ordinal);

    public static byte[] Model(string id) => File.ReadAllBytes(Path.Combine(Root, id, "model.onnx"));

    /// <summary>The case's inputs and expected outputs, in file order.</summary>
    public static (TensorProto[] Inputs, TensorProto[] Outputs) Data(string id)
    {
        string folder = Path.Combine(Root, id, "test_data_set_0");
        TensorProto[] Read(string prefix) => Enumerable.Range(0, 16).Select(i => Path.Combine(folder, $"{prefix}_{i}.pb")).TakeWhile(File.Exists)
            .Select(f => OnnxMessage.Parse<TensorProto>(File.ReadAllBytes(f), f)).ToArray();
        return (Read("input"), Read("output"));
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "NormSharp.slnx")))
            {
                string root = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "data", "onnx-backend-tests"));
                if (Directory.Exists(root)) return root;
                throw new DirectoryNotFoundException($"The ONNX backend test models are expected at {root} (shared/ beside the clone).");
            }
        throw new DirectoryNotFoundException($"No NormSharp.slnx above {AppContext.BaseDirectory}.");
    }
}
