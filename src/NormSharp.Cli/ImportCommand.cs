using Google.Protobuf;
using NormSharp.Experiments;
using NormSharp.Nn;
using NormSharp.Onnx;
using NormSharp.Onnx.Protobuf;
using NormSharp.Serialization;

namespace NormSharp.Cli;

/// <summary><c>normsharp import</c>: loads an ONNX model as a NormSharp graph, prints a Keras-style summary of it and
/// optionally runs an input through it.</summary>
internal static class ImportCommand
{
    public const string Help = """
        normsharp import MODEL.onnx [--input INPUT.pb] [--output OUTPUT.pb]
          loads an ONNX model (opsets 6 to 23; every node checked before anything runs) and prints one row per node:
          its name, the NormSharp layer or ONNX operation it became, its output shape for the declared input shape,
          and its parameter count; then the totals and any import warnings
          --input INPUT.pb    runs the model on a serialized onnx.TensorProto (the format of the ONNX backend tests'
                              input_0.pb, float32 or float64) and prints the output's shape and first values
          --output OUTPUT.pb  writes the (first) output as a float32 onnx.TensorProto, replaced atomically
        """;

    public static int Run(Options args, TextWriter output)
    {
        string modelFile = args.Positional.FirstOrDefault() ?? throw new UsageException("import needs an ONNX file: normsharp import MODEL.onnx");
        string? inputFile = args.String("input"), outputFile = args.String("output");
        args.RejectUnknown("import");
        if (outputFile is not null && inputFile is null) throw new UsageException("--output needs --input");

        GraphModule graph = OnnxImporter.LoadGraph(modelFile);
        IReadOnlyDictionary<string, int[]> shapes = graph.ValueShapes();
        output.WriteLine($"{modelFile}: opset {graph.Opset}, {graph.Nodes.Count} nodes; inputs {string.Join(", ", graph.Inputs.Select(i => $"'{i.Name}' {Shapes(i.Shape)}"))}");
        const string row = "{0,-28} {1,-44} {2,-20} {3,12}";
        output.WriteLine(string.Format(row, "Node", "Layer / operation", "Output shape", "Param #"));
        output.WriteLine(new string('=', 107));
        foreach (GraphNode node in graph.Nodes)
        {
            string kind = node.Layer is Module layer ? layer.ToString().Split('\n')[0] : $"{node.OpType} (ONNX)";
            string shape = node.Outputs.Where(shapes.ContainsKey).Select(o => Shapes(shapes[o])).FirstOrDefault() ?? "(shape values)";
            long parameters = node.Layer?.ParameterCount() ?? 0;
            output.WriteLine(string.Format(row, Clip(node.Name, 28), Clip(kind, 44), shape, parameters.ToString("N0")));
        }
        output.WriteLine(new string('=', 107));
        long trainable = graph.Parameters().Where(p => p.RequiresGrad).Sum(p => (long)p.Length);
        output.WriteLine($"Total params: {graph.ParameterCount():N0} (trainable {trainable:N0}); buffers: {graph.NamedBuffers().Sum(b => (long)b.Buffer.Length):N0}");
        output.WriteLine($"Outputs: {string.Join(", ", graph.OutputNames.Select(o => $"'{o}' {(shapes.TryGetValue(o, out int[]? s) ? Shapes(s) : "")}"))}");
        foreach (string warning in graph.Warnings) output.WriteLine($"warning: {warning}");

        if (inputFile is null) return 0;
        TensorProto proto = OnnxMessage.Parse<TensorProto>(File.ReadAllBytes(inputFile), $"input file '{inputFile}'");
        Tensor x = Tensor.FromArray(proto.ToFloats(), proto.Dims.Select(d => checked((int)d)).ToArray());
        Tensor y;
        using (Tensor.NoGrad()) y = graph.Run(x)[0];
        float[] values = y.ToArray();
        output.WriteLine($"ran {inputFile} {Shapes(x.Shape)} → '{graph.OutputNames[0]}' {Shapes(y.Shape)}: {string.Join(", ", values.Take(8).Select(v => v.ToString("G6", System.Globalization.CultureInfo.InvariantCulture)))}{(values.Length > 8 ? ", …" : "")}");
        if (outputFile is not null)
        {
            AtomicFile.WriteAllBytes(outputFile, TensorProto.FromFloats(graph.OutputNames[0], y.Shape.Select(d => (long)d), values).ToByteArray());
            output.WriteLine($"wrote {outputFile}");
        }
        return 0;
    }

    private static string Shapes(int[] shape) => "(" + string.Join(", ", shape) + (shape.Length == 1 ? ",)" : ")");

    private static string Clip(string text, int width) => text.Length <= width ? text : text[..(width - 1)] + "…";
}
