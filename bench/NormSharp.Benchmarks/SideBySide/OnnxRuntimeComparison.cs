using System.Globalization;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using NormSharp.Onnx;
using NormSharp.Onnx.Protobuf;

namespace NormSharp.Benchmarks.SideBySide;

/// <summary>
/// Inference of an imported ResNet-style ONNX graph (CIFAR ResNet-8: a 3×3 stem with 16 channels, three basic blocks
/// of 16, 32 and 64 channels, the last two strided with 1×1 projection shortcuts, each convolution followed by
/// BatchNormalization, global average pooling and a Gemm to 10 classes; 3×32×32 inputs, opset 13) in NormSharp, as
/// imported and with its BatchNorm folded, against ONNX Runtime (default graph optimizations, which fold BatchNorm
/// too) on the same model bytes and inputs, batch 1 and 32, with the same thread counts. Timed as the quick
/// comparison does: medians over alternating blocks.
/// </summary>
public static class OnnxRuntimeComparison
{
    public static void Run(TextWriter output, IReadOnlyList<int> threadCounts, double secondsPerCase)
    {
        byte[] model = ResNet8().ToByteArray();
        GraphModule graph = OnnxImporter.ImportGraph(model, "resnet-8");
        GraphModule folded = graph.FoldBatchNorm(out int folds);
        output.WriteLine($"NormSharp {typeof(Tensor).Assembly.GetName().Version} vs ONNX Runtime 1.31.1 (CPU execution provider), imported ResNet-8 ({graph.Nodes.Count} nodes, {graph.ParameterCount():N0} parameters, {folds} BatchNorm folded)");
        output.WriteLine($"{Environment.ProcessorCount} logical cores, .NET {Environment.Version}, {QuickComparison.MachineDescription()}; medians over alternating blocks, at least {secondsPerCase:0.##} s per engine and case.");
        output.WriteLine();
        output.WriteLine("| case | threads | NormSharp ms | NormSharp BN folded ms | ONNX Runtime ms | ORT / folded NormSharp |");
        output.WriteLine("|---|---:|---:|---:|---:|---:|");
        int saved = Parallelism.ThreadCount;
        try
        {
            foreach (int batch in new[] { 1, 32 })
            {
                Tensor x = Tensor.Normal(new[] { batch, 3, 32, 32 }, generator: new RandomGenerator(3));
                foreach (int threads in threadCounts)
                {
                    Parallelism.ThreadCount = threads;
                    using var options = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
                    using var session = new InferenceSession(model, options);
                    var inputs = new[] { NamedOnnxValue.CreateFromTensor("x", new DenseTensor<float>(x.ToArray(), x.Shape)) };
                    Action ours = Inference(graph, x), oursFolded = Inference(folded, x);
                    Action theirs = () => { using var results = session.Run(inputs); };
                    var (plain, ort, _, _) = QuickComparison.Measure(ours, theirs, secondsPerCase);
                    var (fused, _, _, _) = QuickComparison.Measure(oursFolded, null, secondsPerCase);
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"| ResNet-8 inference, batch {batch} | {threads} | {plain * 1e3:F3} | {fused * 1e3:F3} | {ort * 1e3:F3} | {ort / fused:F2}× |"));
                }
            }
        }
        finally
        {
            Parallelism.ThreadCount = saved;
        }
    }

    private static Action Inference(GraphModule graph, Tensor x)
    {
        graph.Eval();
        return () =>
        {
            using var noGrad = Tensor.NoGrad();
            using var scope = TensorScope.Begin();
            graph.Forward(x);
        };
    }

    /// <summary>The ResNet-8 graph with random weights and running statistics.</summary>
    public static ModelProto ResNet8()
    {
        var graph = new GraphProto { Name = "resnet-8" };
        var random = new RandomGenerator(7);
        int count = 0;
        string Initializer(string name, float[] values, params long[] dims)
        {
            graph.Initializer.Add(TensorProto.FromFloats(name, dims, values));
            return name;
        }
        float[] Normal(int length, double std) => Tensor.Normal(new[] { length }, 0, std, generator: random).ToArray();
        float[] Uniform(int length, double low, double high) => Tensor.Uniform(new[] { length }, low, high, generator: random).ToArray();
        string Node(string op, string[] inputs, params AttributeProto[] attributes)
        {
            var node = new NodeProto { Name = $"{op.ToLowerInvariant()}{++count}", OpType = op };
            node.Input.AddRange(inputs);
            node.Output.Add(node.Name);
            node.Attribute.AddRange(attributes);
            graph.Node.Add(node);
            return node.Name;
        }
        string ConvBn(string x, int cin, int cout, int kernel, int stride, bool relu)
        {
            string w = Initializer($"w{count}", Normal(cout * cin * kernel * kernel, Math.Sqrt(2.0 / (cin * kernel * kernel))), cout, cin, kernel, kernel);
            int pad = kernel / 2;
            string conv = Node("Conv", new[] { x, w }, AttributeProto.OfInts("kernel_shape", kernel, kernel), AttributeProto.OfInts("strides", stride, stride), AttributeProto.OfInts("pads", pad, pad, pad, pad));
            string bn = Node("BatchNormalization", new[] { conv, Initializer($"g{count}", Uniform(cout, 0.5, 1.5), cout), Initializer($"b{count}", Uniform(cout, -0.2, 0.2), cout),
                Initializer($"m{count}", Uniform(cout, -0.2, 0.2), cout), Initializer($"v{count}", Uniform(cout, 0.5, 1.5), cout) });
            return relu ? Node("Relu", new[] { bn }) : bn;
        }
        graph.Input.Add(ValueInfoProto.FloatTensor("x", new long?[] { null, 3, 32, 32 }));
        string h = ConvBn("x", 3, 16, 3, 1, relu: true);
        int channels = 16;
        foreach (var (width, stride) in new[] { (16, 1), (32, 2), (64, 2) })
        {
            string r = ConvBn(ConvBn(h, channels, width, 3, stride, relu: true), width, width, 3, 1, relu: false);
            string shortcut = stride == 1 && width == channels ? h : ConvBn(h, channels, width, 1, stride, relu: false);
            h = Node("Relu", new[] { Node("Add", new[] { r, shortcut }) });
            channels = width;
        }
        string pooled = Node("Flatten", new[] { Node("GlobalAveragePool", new[] { h }) });
        Node("Gemm", new[] { pooled, Initializer("fc.w", Normal(10 * 64, 0.1), 10, 64), Initializer("fc.b", new float[10], 10) }, AttributeProto.OfInt("transB", 1));
        graph.Node[^1].Output[0] = "y";
        graph.Output.Add(ValueInfoProto.FloatTensor("y", new long?[] { null, 10 }));
        var model = new ModelProto { IrVersion = 8, ProducerName = "NormSharp.Benchmarks", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Version = 13 });
        return model;
    }
}
