using NormSharp.Nn;
using NormSharp.Onnx.Protobuf;
using NormSharp.Training;

namespace NormSharp.Onnx;

/// <summary>
/// Imports ONNX models. A graph of any shape (residual additions, concatenations, several inputs and outputs) at opsets
/// 7 to 23 becomes a <see cref="GraphModule"/> (<see cref="ImportGraph(byte[], string)"/>): each operator is read by the
/// rules of the opset the model declares, initializers and Constant/ConstantOfShape nodes are folded at load, and
/// operators with weights (Conv, ConvTranspose, Gemm, MatMul by a constant, BatchNormalization, the other
/// normalizations) become NormSharp layers that train. Opset-6 models load with a warning, read by the rules of opset 7
/// for the operators whose meaning did not change (as ONNX Runtime does). <see cref="Import(byte[], string)"/> wraps the
/// result in a Keras-style <see cref="Model"/>; when the graph is a chain of layers (what <see cref="OnnxExporter"/>
/// writes) the network is a flat <see cref="Sequential"/> with the exported layers and state names. BatchNormalization's
/// running statistics become the buffers of a BatchNorm layer; the network is returned in evaluation mode. Every node
/// is checked before anything runs: an unsupported operator is reported with its node name, op type and opset, and a
/// malformed file throws an <see cref="InvalidDataException"/> naming the node; no model is returned.
/// </summary>
public static partial class OnnxImporter
{
    /// <summary>The largest per-sample tensor (elements) the importer runs while it infers shapes.</summary>
    private const int MaxSampleElements = 1 << 26;

    /// <summary>The largest im2col workspace (elements) a convolution may need for one sample (1 GiB of float32): the
    /// file's few bytes of kernel size and input shape must not make the shape check allocate gigabytes.</summary>
    private const int MaxWorkspaceElements = 1 << 28;

    /// <summary>Imports the ONNX file at <paramref name="path"/> as a <see cref="Model"/> (one input, one output).</summary>
    public static Model Load(string path) => Import(ReadFile(path), path);

    /// <summary>Imports the ONNX file at <paramref name="path"/> as a <see cref="GraphModule"/>.</summary>
    public static GraphModule LoadGraph(string path) => ImportGraph(ReadFile(path), path);

    /// <summary>Imports a serialized ONNX model; <paramref name="source"/> names it in error messages.</summary>
    public static Model Import(byte[] bytes, string source = "bytes") => Import(Parse(bytes, source), source);

    /// <summary>Imports a parsed ONNX model with one input and one output as a <see cref="Model"/>: a
    /// <see cref="Sequential"/> when the graph is a chain of layers, a <see cref="GraphModule"/> otherwise.</summary>
    public static Model Import(ModelProto model, string source = "model")
    {
        ArgumentNullException.ThrowIfNull(model);
        GraphReader reader = new(model, source);
        GraphModule graph = reader.Read();
        if (graph.Inputs.Count != 1 || graph.OutputNames.Count != 1)
            throw new NotSupportedException($"ONNX model '{source}': the graph has {graph.Inputs.Count} inputs and {graph.OutputNames.Count} outputs; a Model takes one of each (use OnnxImporter.ImportGraph for several).");
        int[] sample = graph.Inputs[0].Shape[1..];
        return new Model(reader.AsChain(graph) ?? (Module)graph, sample);
    }

    /// <summary>Imports a serialized ONNX model as a <see cref="GraphModule"/>.</summary>
    public static GraphModule ImportGraph(byte[] bytes, string source = "bytes") => ImportGraph(Parse(bytes, source), source);

    /// <summary>Imports a parsed ONNX model as a <see cref="GraphModule"/>.</summary>
    public static GraphModule ImportGraph(ModelProto model, string source = "model")
    {
        ArgumentNullException.ThrowIfNull(model);
        return new GraphReader(model, source).Read();
    }

    private static byte[] ReadFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        try { return File.ReadAllBytes(path); }
        catch (FileNotFoundException) { throw new FileNotFoundException($"ONNX import: no file at '{path}'.", path); }
    }

    private static ModelProto Parse(byte[] bytes, string source)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        return OnnxMessage.Parse<ModelProto>(bytes, $"ONNX model '{source}'");
    }

    /// <summary>One import: the graph's constants, its inputs, the nodes in topological order, each read into a layer or
    /// an operation and run once on a zero sample (which checks it and gives the shapes the next nodes read).</summary>
    private sealed partial class GraphReader
    {
        private readonly string _source;
        private readonly GraphProto _graph;
        private readonly int _opset;
        private readonly List<string> _warnings = new();
        private readonly Dictionary<string, TensorProto> _constants = new();
        private readonly Dictionary<string, object> _constantValues = new();
        private readonly List<NodeProto> _nodes = new();
        private readonly Dictionary<string, HashSet<int>> _consumers = new();
        private OnnxNode?[] _views = Array.Empty<OnnxNode?>();
        // Layers are created with their own generator: an import must not advance RandomGenerator.Default.
        private readonly RandomGenerator _initialization = new(0);

        public GraphReader(ModelProto model, string source)
        {
            _source = source;
            _graph = model.Graph ?? throw Invalid("has no graph (an empty or truncated file?)");
            OperatorSetIdProto? opset = model.OpsetImport.LastOrDefault(o => o.Domain is "" or "ai.onnx")
                ?? throw Invalid("declares no opset for the default ONNX domain (opset_import)");
            if (opset.Version < OnnxFormat.MinImportOpset || opset.Version > OnnxFormat.MaxImportOpset)
                throw new NotSupportedException($"ONNX model '{source}': opset {opset.Version} is not supported; NormSharp imports opsets {OnnxFormat.MinImportOpset} to {OnnxFormat.MaxImportOpset}.");
            _opset = (int)opset.Version;
            if (_opset == OnnxFormat.MinImportOpset)
                _warnings.Add($"opset {_opset} is older than 7; its operators are read by the rules of opset 7, which agree for every operator NormSharp reads here (as ONNX Runtime does, with a warning)");
        }

        public GraphModule Read()
        {
            foreach (TensorProto initializer in _graph.Initializer) AddConstant(initializer.Name, initializer, "initializer");
            var pending = new List<NodeProto>();
            for (int i = 0; i < _graph.Node.Count; i++)
            {
                NodeProto node = _graph.Node[i];
                if (node.OpType == "Constant" && node.Domain is "" or "ai.onnx") AddConstant(node.Output.FirstOrDefault() ?? "", ConstantValue(node, i), $"node #{i} (Constant)");
                else pending.Add(node);
            }
            var inputs = GraphInputs();
            _nodes.AddRange(TopologicalOrder(pending, inputs.Select(i => i.Name)));
            _views = new OnnxNode?[_nodes.Count];
            for (int i = 0; i < _nodes.Count; i++)
                foreach (string input in _nodes[i].Input)
                    if (input.Length > 0) (_consumers.TryGetValue(input, out var set) ? set : _consumers[input] = new HashSet<int>()).Add(i);
            RejectUnsupportedOperators();

            // The probe: every value for a batch of the declared size (1 where symbolic), zeros for the inputs.
            var probe = new Dictionary<string, object>(_constantValues);
            foreach (GraphInput input in inputs) probe[input.Name] = Tensor.Zeros(input.Shape);
            var graphNodes = new List<GraphNode>();
            var moduleNames = new HashSet<string>();
            using (Tensor.NoGrad())
            {
                for (int i = 0; i < _nodes.Count;)
                {
                    OnnxNode node = NodeAt(i);
                    if (node.Proto.Domain is not ("" or "ai.onnx"))
                        throw node.Unsupported($"operator domain '{node.Proto.Domain}' is not supported; NormSharp imports operators of the default ONNX domain");
                    var (graphNode, count) = ReadNode(node, i, probe, moduleNames);
                    for (int k = i; k < i + count; k++) NodeAt(k).RejectUnreadAttributes();
                    CheckGroup(node, i, count);
                    Probe(node, graphNode, probe);
                    graphNodes.Add(graphNode);
                    i += count;
                }
            }
            foreach (ValueInfoProto output in _graph.Output)
                if (!probe.ContainsKey(output.Name)) throw Invalid($"graph output '{output.Name}' is produced by no node");
            var graph = new GraphModule(inputs, _graph.Output.Select(o => o.Name).ToArray(), graphNodes, _constantValues, _opset, _warnings);
            graph.Eval();
            return graph;
        }

        /// <summary>The graph as a <see cref="Sequential"/> when it is a chain of layers: one input, one output, each
        /// layer reading the previous one's output; null otherwise.</summary>
        public Sequential? AsChain(GraphModule graph)
        {
            string current = graph.Inputs[0].Name;
            foreach (GraphNode node in graph.Nodes)
            {
                if (node.Layer is null || node.Inputs.Count(n => n.Length > 0 && !_constants.ContainsKey(n)) != 1 || node.Inputs[0] != current) return null;
                current = node.Outputs[0];
            }
            if (current != graph.OutputNames[0]) return null;
            var network = new Sequential();
            foreach (GraphNode node in graph.Nodes) network.Add(node.Layer!);
            network.Eval();
            return network;
        }

        /// <summary>The graph's non-constant inputs, float, with static sizes after the batch axis (a symbolic batch
        /// axis is taken as 1 while the import runs the graph).</summary>
        private List<GraphInput> GraphInputs()
        {
            var inputs = new List<GraphInput>();
            foreach (ValueInfoProto input in _graph.Input.Where(v => !_constants.ContainsKey(v.Name)))
            {
                TypeProto.Types.Tensor type = input.Type?.TensorType ?? throw Invalid($"graph input '{input.Name}' is not a tensor");
                if (type.ElemType == (int)TensorProto.Types.DataType.Double)
                    _warnings.Add($"graph input '{input.Name}' is float64; NormSharp computes the graph in float32");
                else if (type.ElemType != (int)TensorProto.Types.DataType.Float)
                    throw new NotSupportedException($"ONNX model '{_source}': graph input '{input.Name}' has element type {(TensorProto.Types.DataType)type.ElemType}; NormSharp imports float32 (or float64, computed in float32) models.");
                if (type.Shape is null || type.Shape.Dim.Count < 1)
                    throw Invalid($"graph input '{input.Name}' needs a shape (N, ...) with a batch axis and per-sample sizes");
                var shape = new int[type.Shape.Dim.Count];
                long elements = 1;
                for (int d = 0; d < shape.Length; d++)
                {
                    long? size = type.Shape.Dim[d].Size;
                    if (d == 0 && size is null) size = 1;
                    if (size is not (> 0 and <= int.MaxValue))
                        throw Invalid($"graph input '{input.Name}' has axis {d} of size {(object?)size ?? "unknown"}; NormSharp needs fixed positive sizes after the batch axis");
                    shape[d] = (int)size.Value;
                    if (d > 0) elements *= size.Value;
                    if (elements > MaxSampleElements) throw Invalid($"graph input '{input.Name}' has more than {MaxSampleElements} elements per sample");
                }
                inputs.Add(new GraphInput(input.Name, shape));
            }
            if (inputs.Count == 0) throw Invalid("has no graph input besides its constants");
            return inputs;
        }

        /// <summary>The nodes in an order where each runs after the nodes it reads from (the file's order where it
        /// already is one, as ONNX requires; a graph with a cycle or a value nobody produces is refused).</summary>
        private List<NodeProto> TopologicalOrder(List<NodeProto> nodes, IEnumerable<string> inputs)
        {
            var available = new HashSet<string>(_constants.Keys.Concat(inputs)) { "" };
            var order = new List<NodeProto>(nodes.Count);
            var waiting = new List<NodeProto>(nodes);
            while (waiting.Count > 0)
            {
                int ready = waiting.FindIndex(n => n.Input.All(available.Contains));
                if (ready < 0)
                {
                    NodeProto stuck = waiting[0];
                    string missing = stuck.Input.First(i => !available.Contains(i));
                    throw Invalid($"node '{stuck.Name}' ({stuck.OpType}) reads '{missing}', which no node, initializer or graph input produces (or the graph has a cycle)");
                }
                NodeProto node = waiting[ready];
                waiting.RemoveAt(ready);
                order.Add(node);
                foreach (string output in node.Output) available.Add(output);
            }
            return order;
        }

        /// <summary>Every unsupported operator in the graph, named with its node and the opset, before anything runs.</summary>
        private void RejectUnsupportedOperators()
        {
            var unsupported = _nodes.Select((n, i) => (Node: n, Index: i))
                .Where(n => n.Node.Domain is not ("" or "ai.onnx") || !OnnxOperations.IsSupported(n.Node.OpType))
                .Select(n => n.Node.Domain is "" or "ai.onnx" ? $"{NodeAt(n.Index).Label} at opset {_opset}" : $"{NodeAt(n.Index).Label} of domain '{n.Node.Domain}'").ToList();
            if (unsupported.Count > 0)
                throw new NotSupportedException($"ONNX model '{_source}': unsupported operator{(unsupported.Count > 1 ? "s" : "")}: {string.Join("; ", unsupported)}. NormSharp imports {OnnxOperations.SupportedList}.");
        }

        /// <summary>A layer when the operator has one (its weights constant), else a parameter-free operation; with the
        /// number of consecutive nodes it replaces (several for a MatMul + Add or the RMSNorm pattern).</summary>
        private (GraphNode Node, int Count) ReadNode(OnnxNode node, int index, Dictionary<string, object> probe, HashSet<string> moduleNames)
        {
            string x = node.InputName(0);
            if (probe.GetValueOrDefault(x) is Tensor data && !_constants.ContainsKey(x) && IsLayerOperator(node, data.Rank))
            {
                Step? step = null;
                try { step = ReadStep(node, index, x, data.Shape); }
                catch (NotSupportedException) when (OnnxOperations.HasOperation(node.OpType)) { } // e.g. grouped or asymmetric forms: the operation does them
                catch (ArgumentException e) { throw node.Invalid(e.Message.TrimEnd('.'), e); }
                if (step is Step s)
                {
                    OnnxNode last = NodeAt(index + s.NodeCount - 1);
                    var outputs = new[] { last.Output };
                    return (new GraphNode(node.Proto.Name.Length > 0 ? node.Proto.Name : node.Label, UniqueName(node, index, moduleNames), node.OpType, new[] { x }, outputs, s.Layer, null, null), s.NodeCount);
                }
            }
            // The constants an operation reads become graph values (decoded here, so that bad data names its reader).
            foreach (string input in node.Proto.Input)
                if (_constants.TryGetValue(input, out TensorProto? constant) && !_constantValues.ContainsKey(input))
                    probe[input] = _constantValues[input] = node.Decode(constant, OnnxOperations.Decode);
            var operation = OnnxOperations.Create(node, _opset, _constants);
            return (new GraphNode(node.Proto.Name.Length > 0 ? node.Proto.Name : node.Label, "", node.OpType, node.Proto.Input.ToArray(), node.Proto.Output.ToArray(), null, operation, node.Proto), 1);
        }

        /// <summary>Whether the node's operator is read as a NormSharp layer: weights constant, and for the operators
        /// whose meaning changed with the opset, only where the layer's meaning is the node's.</summary>
        private bool IsLayerOperator(OnnxNode node, int rank)
        {
            bool Constant(int i) => node.InputName(i).Length == 0 || _constants.ContainsKey(node.InputName(i));
            return node.OpType switch
            {
                "Conv" or "ConvTranspose" => Enumerable.Range(1, node.Proto.Input.Count - 1).All(Constant) && rank == 4,
                "Gemm" => Constant(1) && Constant(2) && rank == 2,
                "MatMul" => Constant(1) && _constants[node.InputName(1)].Dims.Count == 2 && rank >= 2,
                "BatchNormalization" or "InstanceNormalization" or "LayerNormalization" or "GroupNormalization" =>
                    Enumerable.Range(1, node.Proto.Input.Count - 1).All(Constant) && node.Proto.Output.Skip(1).All(o => o.Length == 0 || !_consumers.ContainsKey(o)),
                "Mul" => node.InputName(0) == node.InputName(1),
                "Relu" or "Sigmoid" or "Tanh" or "Identity" or "LeakyRelu" => true,
                // Before opset 13 Softmax flattened the input to 2-D at the axis (default 1); that is the per-axis
                // softmax only when the axis is the last one.
                "Softmax" or "LogSoftmax" => _opset >= 13 || SoftmaxAxisIsLast(node, rank),
                "MaxPool" => rank == 4 && node.Proto.Output.Count == 1,
                "AveragePool" => rank == 4,
                "Flatten" => rank >= 2,
                "Reshape" => Constant(1),
                "Dropout" => node.Proto.Output.Skip(1).All(o => o.Length == 0 || !_consumers.ContainsKey(o)),
                _ => false,
            };
        }

        private static bool SoftmaxAxisIsLast(OnnxNode node, int rank)
        {
            AttributeProto? axis = node.Proto.Attribute.FirstOrDefault(a => a.Name == "axis");
            long value = axis?.I ?? 1;
            return value == rank - 1 || value == -1;
        }

        /// <summary>Checks that the values produced inside a multi-node layer are read only inside it.</summary>
        private void CheckGroup(OnnxNode node, int first, int count)
        {
            if (count == 1) return;
            var group = Enumerable.Range(first, count).ToHashSet();
            string last = _nodes[first + count - 1].Output[0];
            foreach (int i in group)
                foreach (string produced in _nodes[i].Output)
                {
                    if (produced.Length == 0 || produced == last) continue;
                    if (_graph.Output.Any(o => o.Name == produced) || (_consumers.GetValueOrDefault(produced)?.Any(reader => !group.Contains(reader)) ?? false))
                        throw node.Unsupported($"its output '{produced}' is read outside the {count} nodes read as one layer");
                }
        }

        /// <summary>Runs the new node on the probe values: checks that it accepts the shapes the graph gives it and
        /// records the values the next nodes read.</summary>
        private static void Probe(OnnxNode node, GraphNode graphNode, Dictionary<string, object> probe)
        {
            try
            {
                if (graphNode.Layer is Module layer) layer.Eval();
                graphNode.Run(probe);
            }
            catch (Exception e) when (e is ArgumentException or IndexOutOfRangeException or InvalidCastException or DivideByZeroException or OverflowException)
            {
                string shapes = string.Join(", ", graphNode.Inputs.Select(i => probe.GetValueOrDefault(i) switch { Tensor t => Shapes.Format(t.Shape), IntTensor t => $"int{Shapes.Format(t.Dims)}", _ => "-" }));
                throw node.Invalid($"{(graphNode.Layer is Module l ? $"the layer {l}" : "the operation")} does not accept its inputs of shape {shapes}: {e.Message.TrimEnd('.')}", e);
            }
            foreach (string output in graphNode.Outputs)
                if (probe.GetValueOrDefault(output) is Tensor t && t.Shape.Skip(1).Aggregate(1L, (a, b) => a * b) > MaxSampleElements)
                    throw node.Invalid($"its output of shape {Shapes.Format(t.Shape)} has more than {MaxSampleElements} elements per sample");
        }

        private string UniqueName(OnnxNode node, int index, HashSet<string> taken)
        {
            string name = node.Proto.Name.Length > 0 ? node.Proto.Name.Replace('.', '_').Replace('/', '_') : $"{node.OpType}_{index}";
            string unique = name;
            for (int k = 1; !taken.Add(unique); k++) unique = $"{name}_{k}";
            return unique;
        }

        private void AddConstant(string name, TensorProto value, string what)
        {
            if (name.Length == 0) throw Invalid($"{what} has no name");
            if (!_constants.TryAdd(name, value)) throw Invalid($"the constant '{name}' is defined twice");
        }

        // Constant's value is a tensor, or (opset 12 on) one float, int, or list of them.
        private TensorProto ConstantValue(NodeProto proto, int index)
        {
            var node = new OnnxNode(proto, index, _constants, _source);
            TensorProto? value = node.Tensor("value");
            if (value is null && node.Proto.Attribute.Count == 1)
            {
                AttributeProto a = node.Proto.Attribute[0];
                value = a.Name switch
                {
                    "value_float" => TensorProto.FromFloats("", Array.Empty<long>(), new[] { node.Float("value_float", 0) }),
                    "value_floats" => TensorProto.FromFloats("", new long[] { a.Floats.Count }, node.FloatList("value_floats")),
                    "value_int" => TensorProto.FromInt64s("", Array.Empty<long>(), new[] { node.Int("value_int", 0) }),
                    "value_ints" => TensorProto.FromInt64s("", new long[] { a.Ints.Count }, node.Ints("value_ints")!),
                    _ => null,
                };
            }
            if (value is null) throw node.Unsupported("only Constant nodes holding a tensor, float(s) or int(s) are supported");
            node.RejectUnreadAttributes();
            return value;
        }

        private InvalidDataException Invalid(string what) => new($"ONNX model '{_source}': {what}.");

        /// <summary>A layer and the number of consecutive nodes it replaces.</summary>
        private readonly record struct Step(Module Layer, int NodeCount);
    }
}
