using Google.Protobuf;
using NormSharp.Serialization;
using NormSharp.Nn;
using NormSharp.Onnx.Protobuf;
using NormSharp.Optim;
using Xunit.Abstractions;

namespace NormSharp.Onnx.Tests;

/// <summary>Residual and concatenating graphs imported as a <see cref="GraphModule"/>: outputs against ONNX Runtime,
/// BatchNorm folding, export back to ONNX, fine-tuning with frozen BatchNorm, and re-estimated statistics.</summary>
public class GraphImportTests(ITestOutputHelper output)
{
    public static TheoryData<string> Blocks() => new(CnnBlocks.Names);

    private static Tensor RandomInput(int[] sample, int batch, ulong seed, double mean = 0) =>
        Tensor.Normal(new[] { batch }.Concat(sample).ToArray(), mean, 1, generator: new RandomGenerator(seed));

    [Theory]
    [MemberData(nameof(Blocks))]
    public void Block_matches_OnnxRuntime_on_random_inputs(string name)
    {
        var (model, sample, _) = CnnBlocks.Build(name);
        byte[] bytes = model.ToByteArray();
        GraphModule graph = OnnxImporter.ImportGraph(bytes, name);
        Tensor x = RandomInput(sample, 3, 5);
        double error = OnnxRuntimeCheck.MaxRelativeError(OnnxRuntimeCheck.Run(bytes, x), OnnxRuntimeCheck.Forward(graph, x));
        output.WriteLine($"{name}: {graph.Nodes.Count} nodes, largest relative error against ONNX Runtime {error:g3}");
        Assert.InRange(error, 0, OnnxRuntimeCheck.Tolerance);
    }

    [Theory]
    [MemberData(nameof(Blocks))]
    public void Folding_BatchNorm_keeps_the_outputs_within_1e_5(string name)
    {
        var (model, sample, foldable) = CnnBlocks.Build(name);
        GraphModule graph = OnnxImporter.ImportGraph(model, name);
        GraphModule folded = graph.FoldBatchNorm(out int count);
        Assert.Equal(foldable, count);
        Assert.Equal(graph.Nodes.Count - foldable, folded.Nodes.Count);
        Tensor x = RandomInput(sample, 2, 6);
        double error = OnnxRuntimeCheck.MaxRelativeError(OnnxRuntimeCheck.Forward(graph, x), OnnxRuntimeCheck.Forward(folded, x));
        Assert.InRange(error, 0, 1e-5);
    }

    [Theory]
    [MemberData(nameof(Blocks))]
    public void Exported_graph_runs_in_OnnxRuntime_as_in_NormSharp_folded_or_not(string name)
    {
        var (model, sample, foldable) = CnnBlocks.Build(name);
        GraphModule graph = OnnxImporter.ImportGraph(model, name);
        Tensor x = RandomInput(sample, 2, 7);
        float[] expected = OnnxRuntimeCheck.Forward(graph, x);
        foreach (bool fold in new[] { false, true })
        {
            ModelProto exported = OnnxExporter.Export(graph, new OnnxExportOptions { FoldBatchNorm = fold });
            Assert.Equal(fold ? foldable : 0, exported.Graph.Node.Count(n => OnnxFormat.Metadata(n, OnnxFormat.FoldedKey) is not null));
            Assert.InRange(OnnxRuntimeCheck.MaxRelativeError(expected, OnnxRuntimeCheck.Run(exported.ToByteArray(), x)), 0, OnnxRuntimeCheck.Tolerance);
            Assert.InRange(OnnxRuntimeCheck.MaxRelativeError(expected, OnnxRuntimeCheck.Forward(OnnxImporter.ImportGraph(exported), x)), 0, OnnxRuntimeCheck.Tolerance);
        }
    }

    [Fact]
    public void Imported_ResNet_fine_tunes_with_frozen_BatchNorm_and_the_loss_falls()
    {
        var (model, sample, _) = CnnBlocks.Build("resnet-small");
        GraphModule graph = OnnxImporter.ImportGraph(model, "resnet-small");
        Assert.Equal(5, graph.FreezeBatchNorm());
        var statistics = graph.NamedBuffers().ToDictionary(b => b.Name, b => b.Buffer.ToArray());
        var random = new RandomGenerator(11);
        Tensor x = RandomInput(sample, 16, 12);
        int[] labels = Enumerable.Range(0, 16).Select(i => i % 10).ToArray();
        graph.Train();
        var optimizer = new Adam(graph.Parameters().Where(p => p.RequiresGrad), 3e-3);
        var losses = new List<double>();
        for (int step = 0; step < 20; step++)
            using (TensorScope.Begin())
            {
                Tensor loss = Functional.CrossEntropy(graph.Forward(x), labels);
                losses.Add(loss.Item());
                optimizer.ZeroGrad();
                loss.Backward();
                optimizer.Step();
            }
        output.WriteLine($"loss {losses[0]:F4} → {losses[^1]:F4}");
        Assert.True(losses[^1] < 0.5 * losses[0], $"loss {losses[0]} → {losses[^1]}");
        foreach (var (name, buffer) in graph.NamedBuffers()) Assert.Equal(statistics[name], buffer.ToArray()); // frozen: statistics kept
    }

    [Fact]
    public void Recomputed_statistics_follow_a_shifted_domain_and_export()
    {
        var (model, sample, _) = CnnBlocks.Build("resnet-basic");
        GraphModule graph = OnnxImporter.ImportGraph(model, "resnet-basic");
        // AdaBN (Li et al. 2016): the first BatchNorm reads the first convolution, whose output on inputs shifted by
        // +3 has per-channel means that the statistics re-estimated on those inputs must equal.
        var batches = Enumerable.Range(0, 4).Select(i => RandomInput(sample, 8, 20 + (ulong)i, mean: 3)).ToList();
        Assert.Equal(4, graph.RecomputeBatchNormStatistics(batches));
        GraphNode conv = graph.Nodes[0], batchNorm = graph.Nodes[1];
        var firstNorm = Assert.IsAssignableFrom<BatchNorm>(batchNorm.Layer);
        Tensor convOutput;
        using (Tensor.NoGrad()) convOutput = Tensor.Concat(batches.Select(b => conv.Layer!.Forward(b)).ToList(), 0);
        float[] expectedMean = convOutput.Mean(new[] { 0, 2, 3 }).ToArray();
        Assert.Equal(expectedMean.Select(v => Math.Round(v, 4)), firstNorm.RunningMean!.ToArray().Select(v => Math.Round((double)v, 4)));

        Tensor x = batches[0];
        float[] ours = OnnxRuntimeCheck.Forward(graph, x);
        Assert.InRange(OnnxRuntimeCheck.MaxRelativeError(ours, OnnxRuntimeCheck.Run(OnnxExporter.Export(graph).ToByteArray(), x)), 0, OnnxRuntimeCheck.Tolerance);
    }

    [Fact]
    public void Imported_graph_saves_and_loads_its_state_as_safetensors()
    {
        var (model, sample, _) = CnnBlocks.Build("inception");
        GraphModule graph = OnnxImporter.ImportGraph(model, "inception"), copy = OnnxImporter.ImportGraph(model, "inception");
        foreach (var p in copy.Parameters()) p.CopyFrom(Tensor.Zeros(p.Shape));
        string file = Path.Combine(Path.GetTempPath(), $"normsharp-graph-{Environment.ProcessId}.safetensors");
        try
        {
            graph.SaveSafeTensors(file);
            copy.LoadSafeTensors(file);
        }
        finally { File.Delete(file); }
        Tensor x = RandomInput(sample, 2, 8);
        Assert.Equal(OnnxRuntimeCheck.Forward(graph, x), OnnxRuntimeCheck.Forward(copy, x));
    }

    [Fact]
    public void Opset_6_model_loads_with_a_warning()
    {
        GraphModule old = OnnxImporter.ImportGraph(BackendCases.Model("pytorch-converted/test_BatchNorm2d_eval"), "bn");
        Assert.Equal(6, old.Opset);
        Assert.Contains("opset 6 is older than 7", old.Warnings.Single());
    }
}
