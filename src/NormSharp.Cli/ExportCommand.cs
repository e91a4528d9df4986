using Google.Protobuf;
using NormSharp.Experiments;
using NormSharp.Nn;
using NormSharp.Onnx;
using NormSharp.Onnx.Protobuf;
using NormSharp.Serialization;

namespace NormSharp.Cli;

/// <summary><c>normsharp export</c>: writes a trained model as ONNX for inference elsewhere (ONNX Runtime, ...).</summary>
internal static class ExportCommand
{
    public const string Help = """
        normsharp export --model-file MODEL.safetensors --onnx OUT.onnx [--fold-bn]
          writes a model file from 'normsharp train' (model.safetensors) as an ONNX model, opset 21, computing the
          network's evaluation-mode outputs for inputs of shape (N, 1, 28, 28); the ONNX file is replaced atomically
          --fold-bn   fold each BatchNorm that follows a convolution into its weights (fewer nodes, same outputs)
        """;

    public static int Run(Options args, TextWriter output)
    {
        string modelFile = args.String("model-file") ?? throw new UsageException("--model-file is required");
        string onnxFile = args.String("onnx") ?? throw new UsageException("--onnx OUT.onnx is required");
        bool fold = args.Flag("fold-bn");
        args.RejectUnknown("export");

        Keras.Sequential model = ModelFile.Load(modelFile);
        ModelProto onnx = OnnxExporter.Export(model, new OnnxExportOptions { FoldBatchNorm = fold });
        byte[] bytes = onnx.ToByteArray();
        AtomicFile.WriteAllBytes(onnxFile, bytes);
        GraphProto graph = onnx.Graph!;
        string folded = fold ? $", {graph.Node.Count(n => OnnxFormat.Metadata(n, OnnxFormat.FoldedKey) is not null)} BatchNorm layers folded" : "";
        output.WriteLine($"wrote {onnxFile}: {bytes.Length:N0} bytes, opset {OnnxFormat.Opset}, {graph.Node.Count} nodes ({string.Join(" ", graph.Node.Select(n => n.OpType))}){folded}");
        output.WriteLine($"input '{graph.Input[0].Name}' (N, {string.Join(", ", model.InputShape)}) → output '{graph.Output[0].Name}' (N, {string.Join(", ", graph.Output[0].Type!.TensorType!.Shape!.Dim.Skip(1).Select(d => d.Size))})");
        return 0;
    }
}
