using NormSharp.Nn;
using NormSharp.Onnx.Protobuf;
using NormSharp.Training;

namespace NormSharp.Onnx;

/// <summary>
/// Imports an ONNX model whose graph is a chain — one float input, each node reading the previous node's output and
/// constants, one output — into a flat NormSharp <see cref="Sequential"/> wrapped in a <see cref="Model"/> (for
/// Predict, or Compile and Fit to fine-tune). Reads the operators <see cref="OnnxExporter"/> writes (Gemm, MatMul
/// [+ Add], Conv, ConvTranspose, BatchNormalization, InstanceNormalization, LayerNormalization, GroupNormalization, the
/// RMSNorm pattern, Relu, LeakyRelu, Sigmoid, Tanh, Softmax, LogSoftmax, MaxPool, AveragePool, Flatten, Reshape,
/// Dropout, Identity, Constant) at opsets 13 to 23, so exported models round-trip with the same layers and state names.
/// BatchNormalization's running statistics become the buffers of a BatchNorm layer; the network is returned in
/// evaluation mode. Anything else — an unknown operator, an unsupported attribute, a graph that is not a chain, a
/// constant of the wrong shape, a truncated or corrupt file — throws an <see cref="InvalidDataException"/> or
/// <see cref="NotSupportedException"/> naming the node (name and op_type), and no model is returned.
/// </summary>
public static partial class OnnxImporter
{
    /// <summary>The largest per-sample tensor (elements) the importer runs while it infers shapes.</summary>
    private const int MaxSampleElements = 1 << 26;

    /// <summary>The largest im2col workspace (elements) a convolution may need for one sample (1 GiB of float32): the
    /// file's few bytes of kernel size and input shape must not make the shape check allocate gigabytes.</summary>
    private const int MaxWorkspaceElements = 1 << 28;

    /// <summary>Imports the ONNX file at <paramref name="path"/>.</summary>
    public static Model Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (FileNotFoundException) { throw new FileNotFoundException($"ONNX import: no file at '{path}'.", path); }
        return Import(bytes, path);
    }

    /// <summary>Imports a serialized ONNX model; <paramref name="source"/> names it in error messages.</summary>
    public static Model Import(byte[] bytes, string source = "bytes")
    {
        ArgumentNullException.ThrowIfNull(bytes);
        return Import(OnnxMessage.Parse<ModelProto>(bytes, $"ONNX model '{source}'"), source);
    }

    /// <summary>Imports a parsed ONNX model; <paramref name="source"/> names it in error messages.</summary>
    public static Model Import(ModelProto model, string source = "model")
    {
        ArgumentNullException.ThrowIfNull(model);
        return new ChainReader(model, source).Read();
    }

    /// <summary>One import: the graph's constants, its single input and output, and the walk along the chain.</summary>
    private sealed partial class ChainReader
    {
        private readonly string _source;
        private readonly GraphProto _graph;
        private readonly int _opset;
        private readonly Dictionary<string, TensorProto> _constants = new();
        private readonly List<NodeProto> _nodes = new();
        private readonly Dictionary<string, HashSet<int>> _consumers = new();
        private OnnxNode?[] _views = Array.Empty<OnnxNode?>();
        // Layers are created with their own generator: an import must not advance RandomGenerator.Default.
        private readonly RandomGenerator _initialization = new(0);

        public ChainReader(ModelProto model, string source)
        {
            _source = source;
            _graph = model.Graph ?? throw Invalid("has no graph (an empty or truncated file?)");
            OperatorSetIdProto? opset = model.OpsetImport.LastOrDefault(o => o.Domain is "" or "ai.onnx")
                ?? throw Invalid("declares no opset for the default ONNX domain (opset_import)");
            if (opset.Version < OnnxFormat.MinImportOpset || opset.Version > OnnxFormat.MaxImportOpset)
                throw new NotSupportedException($"ONNX model '{source}': opset {opset.Version} is not supported; NormSharp imports opsets {OnnxFormat.MinImportOpset} to {OnnxFormat.MaxImportOpset}.");
            _opset = (int)opset.Version;
        }

        public Model Read()
        {
            foreach (TensorProto initializer in _graph.Initializer) AddConstant(initializer.Name, initializer, "initializer");
            for (int i = 0; i < _graph.Node.Count; i++)
            {
                NodeProto node = _graph.Node[i];
                if (node.OpType == "Constant" && node.Domain is "" or "ai.onnx") AddConstant(node.Output.FirstOrDefault() ?? "", ConstantValue(node, i), $"node #{i} (Constant)");
                else _nodes.Add(node);
            }
            _views = new OnnxNode?[_nodes.Count];
            for (int i = 0; i < _nodes.Count; i++)
                foreach (string input in _nodes[i].Input)
                    if (input.Length > 0 && !_constants.ContainsKey(input))
                        (_consumers.TryGetValue(input, out var set) ? set : _consumers[input] = new HashSet<int>()).Add(i);

            var (inputName, sampleShape) = GraphInput();
            if (_graph.Output.Count != 1)
                throw new NotSupportedException($"ONNX model '{_source}': the graph has {_graph.Output.Count} outputs; NormSharp imports chains with one output.");
            string outputName = _graph.Output[0].Name;

            var network = new Sequential();
            string current = inputName;
            int[] shape = new[] { 1 }.Concat(sampleShape).ToArray();
            for (int i = 0; i < _nodes.Count;)
            {
                OnnxNode node = NodeAt(i);
                if (node.Proto.Domain is not ("" or "ai.onnx"))
                    throw node.Unsupported($"operator domain '{node.Proto.Domain}' is not supported; NormSharp imports operators of the default ONNX domain");
                if (!node.Proto.Input.Contains(current))
                    throw node.Unsupported($"it does not read '{current}', the output of the layer before it: NormSharp imports chains, where each node reads the previous node's output");
                Step step;
                try { step = ReadStep(node, i, current, shape); }
                catch (ArgumentException e) { throw node.Invalid(e.Message.TrimEnd('.'), e); }
                CheckChainLinks(node, i, step.NodeCount, current, outputName);
                step.Layer.Eval();
                shape = OutputShape(node, step.Layer, shape);
                network.Add(step.Layer);
                current = _nodes[i + step.NodeCount - 1].Output[0];
                i += step.NodeCount;
            }
            if (current != outputName)
                throw new NotSupportedException($"ONNX model '{_source}': the graph output '{outputName}' is not the end of the chain ('{current}' is).");
            network.Eval();
            return new Model(network, sampleShape);
        }

        /// <summary>The graph's one non-constant input, float, with static per-sample sizes after the batch axis.</summary>
        private (string Name, int[] SampleShape) GraphInput()
        {
            var inputs = _graph.Input.Where(v => !_constants.ContainsKey(v.Name)).ToList();
            if (inputs.Count != 1)
                throw new NotSupportedException($"ONNX model '{_source}': the graph has {inputs.Count} inputs ({string.Join(", ", inputs.Select(v => $"'{v.Name}'"))}); NormSharp imports chains with one input.");
            ValueInfoProto input = inputs[0];
            TensorTypeProto type = input.Type?.TensorType ?? throw Invalid($"graph input '{input.Name}' is not a tensor");
            if (type.ElemType != OnnxDataType.Float)
                throw new NotSupportedException($"ONNX model '{_source}': graph input '{input.Name}' has element type {type.ElemType}; NormSharp imports float32 models.");
            if (type.Shape is null || type.Shape.Dim.Count < 2)
                throw Invalid($"graph input '{input.Name}' needs a shape (N, ...) with a batch axis and per-sample sizes");
            var sample = new int[type.Shape.Dim.Count - 1];
            long elements = 1;
            for (int d = 0; d < sample.Length; d++)
            {
                long? size = type.Shape.Dim[d + 1].DimValue;
                if (size is not (> 0 and <= int.MaxValue))
                    throw Invalid($"graph input '{input.Name}' has axis {d + 1} of size {(object?)size ?? "unknown"}; NormSharp needs fixed positive sizes after the batch axis");
                sample[d] = (int)size.Value;
                elements *= size.Value;
                if (elements > MaxSampleElements) throw Invalid($"graph input '{input.Name}' has more than {MaxSampleElements} elements per sample");
            }
            return (input.Name, sample);
        }

        private void AddConstant(string name, TensorProto value, string what)
        {
            if (name.Length == 0) throw Invalid($"{what} has no name");
            if (!_constants.TryAdd(name, value)) throw Invalid($"the constant '{name}' is defined twice");
        }

        private TensorProto ConstantValue(NodeProto proto, int index)
        {
            var node = new OnnxNode(proto, index, _constants, _source);
            TensorProto value = node.Tensor("value") ?? throw node.Unsupported("only Constant nodes holding a tensor 'value' are supported");
            node.RejectUnreadAttributes();
            return value;
        }

        /// <summary>Checks that the nodes [first, first + count) form one link of the chain: the value before is read
        /// by them alone, and what they produce is read only among themselves, except the last output, which the next
        /// link (checked in its turn) or the graph output reads. Unused extra outputs (a Dropout mask) are allowed.</summary>
        private void CheckChainLinks(OnnxNode node, int first, int count, string current, string graphOutput)
        {
            var group = Enumerable.Range(first, count).ToHashSet();
            foreach (int reader in _consumers.GetValueOrDefault(current) ?? new HashSet<int>())
                if (!group.Contains(reader))
                    throw node.Unsupported($"'{current}' is also read by {NodeAt(reader).Label}: NormSharp imports chains, where each value has one reader");
            string last = _nodes[first + count - 1].Output.FirstOrDefault() ?? "";
            if (last.Length == 0) throw NodeAt(first + count - 1).Invalid("has no output");
            foreach (int i in group)
                foreach (string produced in _nodes[i].Output)
                {
                    if (produced.Length == 0 || produced == last) continue;
                    if (produced == graphOutput || (_consumers.GetValueOrDefault(produced)?.Any(reader => !group.Contains(reader)) ?? false))
                        throw node.Unsupported($"its output '{produced}' is read outside the chain: NormSharp imports chains, where each node reads the previous node's output");
                }
        }

        /// <summary>Runs the new layer on a zero batch of one: checks that it accepts the shape the graph gives it, and
        /// yields the shape the next layer receives.</summary>
        private static int[] OutputShape(OnnxNode node, Module layer, int[] input)
        {
            int[] output;
            try
            {
                using (Tensor.NoGrad())
                using (TensorScope.Begin())
                    output = layer.Forward(Tensor.Zeros(input)).Shape;
            }
            catch (ArgumentException e)
            {
                throw node.Invalid($"the layer {layer} does not accept its input of shape {Shapes.Format(input)}: {e.Message.TrimEnd('.')}", e);
            }
            if (output.Skip(1).Aggregate(1L, (a, b) => a * b) > MaxSampleElements)
                throw node.Invalid($"its output of shape {Shapes.Format(output)} has more than {MaxSampleElements} elements per sample");
            return output;
        }

        private InvalidDataException Invalid(string what) => new($"ONNX model '{_source}': {what}.");

        /// <summary>A layer and the number of consecutive nodes it replaces.</summary>
        private readonly record struct Step(Module Layer, int NodeCount);
    }
}
