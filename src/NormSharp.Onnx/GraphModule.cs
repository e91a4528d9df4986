using NormSharp.Nn;
using NormSharp.Onnx.Protobuf;

namespace NormSharp.Onnx;

/// <summary>
/// An imported ONNX graph as a NormSharp <see cref="Module"/>: its nodes run in topological order, each either a
/// NormSharp layer (Conv2d, Linear, BatchNorm2d, … registered as a child module under the node's name, so the graph
/// trains, fine-tunes, freezes its BatchNorm and saves to safetensors like any module) or a parameter-free operation
/// (Add, Concat, Reshape, …) on the values before it. Integer values that only compute shapes (Shape → Gather →
/// Concat → Reshape, as PyTorch exports a flatten) are computed on the fly from the shapes of the tensors they read, so
/// the graph accepts any batch size. Built by <see cref="OnnxImporter.ImportGraph(byte[], string)"/>.
/// </summary>
public sealed class GraphModule : Module
{
    private readonly GraphNode[] _nodes;
    private readonly Dictionary<string, object> _constants;

    internal GraphModule(IReadOnlyList<GraphInput> inputs, IReadOnlyList<string> outputs, IReadOnlyList<GraphNode> nodes,
        Dictionary<string, object> constants, int opset, IReadOnlyList<string> warnings)
    {
        Inputs = inputs;
        OutputNames = outputs;
        _nodes = nodes.ToArray();
        _constants = constants;
        Opset = opset;
        Warnings = warnings;
        foreach (GraphNode node in _nodes)
            if (node.Layer is Module layer) RegisterModule(node.ModuleName, layer);
    }

    /// <summary>The graph inputs in order: name and declared shape (the batch axis as declared, 1 when symbolic).</summary>
    public IReadOnlyList<GraphInput> Inputs { get; }

    /// <summary>The names of the graph outputs, in the order <see cref="Run"/> returns them.</summary>
    public IReadOnlyList<string> OutputNames { get; }

    /// <summary>The nodes in the order they run.</summary>
    public IReadOnlyList<GraphNode> Nodes => _nodes;

    /// <summary>The opset of the default ONNX domain that the model declared; every operator was read by its rules.</summary>
    public int Opset { get; }

    /// <summary>What the import accepted with a caveat (an opset-6 model read with the rules of opset 7, as ONNX
    /// Runtime does), one sentence each.</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>Runs a graph with one input and one output.</summary>
    public override Tensor Forward(Tensor input)
    {
        if (Inputs.Count != 1 || OutputNames.Count != 1)
            throw new ArgumentException($"GraphModule: the graph has {Inputs.Count} inputs and {OutputNames.Count} outputs; call Run with one tensor per input.");
        return Run(input)[0];
    }

    /// <summary>Runs the graph on one tensor per input (in <see cref="Inputs"/> order) and returns the outputs in
    /// <see cref="OutputNames"/> order.</summary>
    public Tensor[] Run(params Tensor[] inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (inputs.Length != Inputs.Count)
            throw new ArgumentException($"GraphModule: the graph takes {Inputs.Count} inputs ({string.Join(", ", Inputs.Select(i => $"'{i.Name}'"))}), got {inputs.Length}.");
        var values = new Dictionary<string, object>(_constants);
        for (int i = 0; i < inputs.Length; i++)
        {
            int[] expected = Inputs[i].Shape;
            if (inputs[i].Rank != expected.Length || !inputs[i].Shape.AsSpan(1).SequenceEqual(expected.AsSpan(1)))
                throw new ArgumentException($"GraphModule: input '{Inputs[i].Name}' must have shape (N, {string.Join(", ", expected.Skip(1))}), got {Shapes.Format(inputs[i].Shape)}.");
            values[Inputs[i].Name] = inputs[i];
        }
        foreach (GraphNode node in _nodes) node.Run(values);
        return OutputNames.Select(name => values[name] as Tensor
            ?? throw new InvalidOperationException($"GraphModule: output '{name}' holds integers (a shape), not a float tensor.")).ToArray();
    }

    /// <summary>Every value of one evaluation-mode run without gradients on zeros of the declared input shapes
    /// (constants, inputs and node outputs by name), for export and summaries.</summary>
    internal Dictionary<string, object> Trace()
    {
        var values = new Dictionary<string, object>(_constants);
        var modes = NamedModules().Select(m => (m.Module, m.Module.IsTraining)).ToList();
        Eval();
        try
        {
            using (Tensor.NoGrad())
            {
                foreach (GraphInput input in Inputs) values[input.Name] = Tensor.Zeros(input.Shape);
                foreach (GraphNode node in _nodes) node.Run(values);
            }
        }
        finally
        {
            foreach (var (module, training) in modes) module.Train(training);
        }
        return values;
    }

    /// <summary>The shape of every float value (inputs, node outputs, constants) for inputs of the declared shapes,
    /// by value name; integer values that only compute shapes are left out.</summary>
    public IReadOnlyDictionary<string, int[]> ValueShapes() =>
        Trace().Where(v => v.Value is Tensor).ToDictionary(v => v.Key, v => ((Tensor)v.Value).Shape);

    /// <summary>The constants the parameter-free nodes read, by name.</summary>
    internal IReadOnlyDictionary<string, object> Constants => _constants;

    /// <summary>
    /// A graph for inference in which every BatchNorm (with running statistics) whose input is the output of a Conv2d,
    /// a grouped Conv2d or a Linear read by nothing else is folded into that layer (<see cref="BatchNormFolding"/>:
    /// W' = s·W, b' = s·b + t with s = γ/√(running_var + ε), t = β − s·running_mean); the BatchNorm node goes and the
    /// layer produces its output. The outputs agree up to rounding in evaluation mode. The new graph shares the layers
    /// that were not folded with this one. Returns the number of folds through <paramref name="folded"/>.
    /// </summary>
    public GraphModule FoldBatchNorm(out int folded)
    {
        var producers = new Dictionary<string, int>();
        for (int i = 0; i < _nodes.Length; i++)
            foreach (string output in _nodes[i].Outputs) producers[output] = i;
        var readers = _nodes.SelectMany(n => n.Inputs).Concat(OutputNames).GroupBy(n => n).ToDictionary(g => g.Key, g => g.Count());
        var replaced = new GraphNode?[_nodes.Length];
        var removed = new HashSet<int>();
        folded = 0;
        for (int i = 0; i < _nodes.Length; i++)
        {
            if (_nodes[i].Layer is not BatchNorm { TrackRunningStats: true } batchNorm || batchNorm is KerasBatchNormalization { Axis: not 1 }) continue;
            string input = _nodes[i].Inputs[0];
            if (!producers.TryGetValue(input, out int p) || readers.GetValueOrDefault(input) != 1 || removed.Contains(p)) continue;
            Module? fused = _nodes[p].Layer switch
            {
                Conv2d conv when conv.OutChannels == batchNorm.NumFeatures => BatchNormFolding.Fuse(conv, batchNorm),
                Linear linear when linear.OutFeatures == batchNorm.NumFeatures => BatchNormFolding.Fuse(linear, batchNorm),
                GroupedConv2d grouped when grouped.OutChannels == batchNorm.NumFeatures => FuseGrouped(grouped, batchNorm),
                _ => null,
            };
            if (fused is null) continue;
            GraphNode layer = _nodes[p];
            replaced[p] = new GraphNode(layer.Name, layer.ModuleName, layer.OpType, layer.Inputs.ToArray(), _nodes[i].Outputs.ToArray(), fused, null, null)
            {
                FoldedBatchNorm = _nodes[i].ModuleName,
            };
            removed.Add(i);
            folded++;
        }
        var nodes = _nodes.Select((n, i) => replaced[i] ?? n).Where((_, i) => !removed.Contains(i)).ToList();
        var graph = new GraphModule(Inputs, OutputNames, nodes, _constants, Opset, Warnings);
        graph.Train(IsTraining);
        return graph;

        static GroupedConv2d FuseGrouped(GroupedConv2d conv, BatchNorm batchNorm)
        {
            var (weight, bias) = BatchNormFolding.Fold(conv.Weight, conv.Bias, batchNorm);
            var fused = new GroupedConv2d(conv.InChannels, conv.OutChannels, conv.KernelSize, conv.Groups, conv.Stride, conv.Padding, conv.Dilation, bias: true, new RandomGenerator(0));
            fused.Weight.CopyFrom(weight);
            fused.Bias!.CopyFrom(bias);
            return fused;
        }
    }

    /// <inheritdoc />
    protected override string ExtraRepresentation => $"opset={Opset}, nodes={_nodes.Length}";
}

/// <summary>A graph input: its name and declared shape (batch axis first).</summary>
public sealed record GraphInput(string Name, int[] Shape);

/// <summary>
/// One node of a <see cref="GraphModule"/>: a NormSharp layer reading its first input, or a parameter-free operation
/// on all its inputs. <see cref="OpType"/> is the ONNX operator (for a layer that replaced several nodes, the first).
/// </summary>
public sealed class GraphNode
{
    private readonly Func<object?[], object?[]>? _operation;

    internal GraphNode(string name, string moduleName, string opType, string[] inputs, string[] outputs, Module? layer,
        Func<object?[], object?[]>? operation, NodeProto? proto)
    {
        Name = name;
        ModuleName = moduleName;
        OpType = opType;
        Inputs = inputs;
        Outputs = outputs;
        Layer = layer;
        _operation = operation;
        Proto = proto;
    }

    /// <summary>The ONNX node's name (or "#index (OpType)" when it had none).</summary>
    public string Name { get; }

    /// <summary>The child-module name of the layer (the node name with '.' and '/' replaced, unique in the graph).</summary>
    public string ModuleName { get; }

    /// <summary>The ONNX operator type.</summary>
    public string OpType { get; }

    /// <summary>The names of the values read ("" for an omitted optional input).</summary>
    public IReadOnlyList<string> Inputs { get; }

    /// <summary>The names of the values produced.</summary>
    public IReadOnlyList<string> Outputs { get; }

    /// <summary>The NormSharp layer, or null for a parameter-free operation.</summary>
    public Module? Layer { get; }

    /// <summary>The node as the file held it (parameter-free operations are exported from it).</summary>
    internal NodeProto? Proto { get; }

    /// <summary>The module name of the BatchNorm folded into this layer, or null.</summary>
    public string? FoldedBatchNorm { get; internal init; }

    internal void Run(Dictionary<string, object> values)
    {
        object?[] inputs = Inputs.Select(name => name.Length == 0 ? null : values.TryGetValue(name, out object? v) ? v
            : throw new InvalidOperationException($"GraphModule: node '{Name}' ({OpType}) reads '{name}', which no earlier node produced.")).ToArray();
        object?[] outputs = Layer is Module layer
            ? new object?[] { layer.Forward(inputs[0] as Tensor ?? throw new InvalidOperationException($"GraphModule: node '{Name}' ({OpType}) needs a float tensor.")) }
            : _operation!(inputs);
        for (int i = 0; i < Outputs.Count && i < outputs.Length; i++)
            if (Outputs[i].Length > 0 && outputs[i] is object value) values[Outputs[i]] = value;
    }
}

/// <summary>An integer tensor (a shape, indices, axes) as the graph computes it: row-major values and dimensions.</summary>
internal sealed record IntTensor(long[] Data, int[] Dims)
{
    public static IntTensor Vector(params long[] data) => new(data, new[] { data.Length });
}
