using NormSharp.Nn;
using Google.Protobuf;
using NormSharp.Onnx.Protobuf;
using NormSharp.Serialization;
using NormSharp.Training;

namespace NormSharp.Onnx;

/// <summary>Options of <see cref="OnnxExporter"/>.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>Fold each BatchNorm (with running statistics, normalizing axis 1) that directly follows a Conv2d,
    /// ConvTranspose2d or a Linear with 2-D output into that layer's weight and bias
    /// (<see cref="BatchNormFolding"/>): one node instead of two, the same outputs up to rounding.</summary>
    public bool FoldBatchNorm { get; init; }

    /// <summary>The graph input's name.</summary>
    public string InputName { get; init; } = "input";

    /// <summary>The graph output's name.</summary>
    public string OutputName { get; init; } = "output";

    /// <summary>The graph's name.</summary>
    public string GraphName { get; init; } = "normsharp";
}

/// <summary>
/// Exports a NormSharp network — a <see cref="Sequential"/>, possibly nested, of the layers listed below — to an ONNX
/// model (opset <see cref="OnnxFormat.Opset"/>) that computes its evaluation-mode forward pass: dropout off, BatchNorm
/// with its running statistics. The batch axis is symbolic ("N"); the other input axes are fixed by the sample shape.
/// Nodes are named by module path ("features.0") and weights by state-dict name ("0.weight", "1.running_mean").
/// Linear → Gemm (MatMul + Add above 2-D), Conv2d → Conv ("same" becomes explicit pads), ConvTranspose2d →
/// ConvTranspose, BatchNorm1d/2d/3d and KerasBatchNormalization → BatchNormalization, LayerNorm → LayerNormalization,
/// GroupNorm → GroupNormalization, InstanceNorm → InstanceNormalization, RMSNorm → Mul, ReduceMean, Add, Sqrt, Div, Mul;
/// ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, LogSoftmax, MaxPool2d, AvgPool2d, Flatten, Reshape, Dropout, Identity.
/// </summary>
public static class OnnxExporter
{
    /// <summary>The ONNX model for <paramref name="network"/> taking inputs of shape (N, *<paramref name="sampleShape"/>).
    /// Any other module throws a <see cref="NotSupportedException"/> naming its path and type. The modules' training
    /// modes are restored afterwards.</summary>
    public static ModelProto Export(Module network, int[] sampleShape, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(sampleShape);
        if (sampleShape.Any(d => d <= 0))
            throw new ArgumentException($"OnnxExporter: the sample shape {Shapes.Format(sampleShape)} must hold positive sizes.", nameof(sampleShape));
        var layers = new List<(string Path, Module Layer)>();
        CollectLayers("", network, layers);
        var modes = network.NamedModules().Select(m => (m.Module, m.Module.IsTraining)).ToList();
        network.Eval();
        try
        {
            return new ChainWriter(options ?? new OnnxExportOptions(), network).Write(layers, sampleShape);
        }
        finally
        {
            foreach (var (module, training) in modes) module.Train(training); // parents first, so children end as they were
        }
    }

    /// <summary>The ONNX model for a Keras-style <paramref name="model"/> (its network and input shape).</summary>
    public static ModelProto Export(Model model, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Export(model.Network, model.InputShape.ToArray(), options);
    }

    /// <summary>
    /// The ONNX model for an imported graph (after training, freezing, re-estimating or folding its BatchNorm), at the
    /// opset it was read with: each layer written by the per-layer mapping below (with its current weights and
    /// running statistics), each parameter-free node as the file held it, with the constants it reads. With
    /// <see cref="OnnxExportOptions.FoldBatchNorm"/> the BatchNorm layers are folded first
    /// (<see cref="GraphModule.FoldBatchNorm"/>). Graphs read at opset 6 are not written (ONNX Runtime no longer runs
    /// opset 6); the graph's training modes are restored afterwards.
    /// </summary>
    public static ModelProto Export(GraphModule graph, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(graph);
        if (graph.Opset < 7) throw new NotSupportedException($"OnnxExporter: the graph was read at opset {graph.Opset}; NormSharp writes graphs at opset 7 or later.");
        options ??= new OnnxExportOptions();
        GraphModule source = options.FoldBatchNorm ? graph.FoldBatchNorm(out _) : graph;
        return new ChainWriter(options, source, graph.Opset).WriteGraph(source);
    }

    /// <summary>Writes the ONNX model for <paramref name="network"/> to <paramref name="path"/> atomically (a crash
    /// leaves the old file or the complete new one).</summary>
    public static void Save(Module network, int[] sampleShape, string path, OnnxExportOptions? options = null)
    {
        byte[] bytes = Export(network, sampleShape, options).ToByteArray();
        AtomicFile.WriteAllBytes(path, bytes);
    }

    /// <summary>The layers of the chain in order with their dotted paths; a Sequential (whose Forward is
    /// Sequential's) contributes its children, anything else is a layer.</summary>
    private static void CollectLayers(string path, Module module, List<(string, Module)> layers)
    {
        if (module is Sequential sequential && RunsChildrenInOrder(sequential))
        {
            foreach (var (name, child) in sequential.NamedChildren()) CollectLayers(path.Length == 0 ? name : path + "." + name, child, layers);
            return;
        }
        layers.Add((path, module));
    }

    private static bool RunsChildrenInOrder(Sequential sequential) =>
        sequential.GetType().GetMethod(nameof(Module.Forward), new[] { typeof(Tensor) })!.DeclaringType == typeof(Sequential);

    /// <summary>Writes the graph of one chain: each layer reads the previous layer's output.</summary>
    private sealed class ChainWriter(OnnxExportOptions options, Module network, int opset = OnnxFormat.Opset)
    {
        private readonly GraphProto _graph = new() { Name = options.GraphName };
        private string _current = options.InputName;
        private NodeProto? _last;

        public ModelProto Write(List<(string Path, Module Layer)> layers, int[] sampleShape)
        {
            _graph.Input.Add(ValueInfoProto.FloatTensor(options.InputName, new long?[] { null }.Concat(sampleShape.Select(d => (long?)d))));
            DType dtype = network.StateDict().Values.FirstOrDefault()?.DType ?? DType.Float32;
            int[] outputShape;
            // The layers run once on a zero batch of one, which gives every layer's input and output shape.
            using (Tensor.NoGrad())
            using (TensorScope.Begin())
            {
                Tensor x = Tensor.Zeros(new[] { 1 }.Concat(sampleShape).ToArray(), dtype);
                for (int i = 0; i < layers.Count; i++)
                {
                    var (path, layer) = layers[i];
                    if (layer is BatchNorm { TrackRunningStats: false })
                        throw Unsupported(path, layer, "without running statistics it normalizes with batch statistics in evaluation mode too, which ONNX BatchNormalization's inference form cannot express");
                    Tensor y;
                    try { y = layer.Forward(x); }
                    catch (ArgumentException e)
                    {
                        throw new ArgumentException($"OnnxExporter: module '{path}' ({layer}) does not accept its input of shape {Shapes.Format(x.Shape)} (from the sample shape {Shapes.Format(sampleShape)}): {e.Message}", nameof(sampleShape), e);
                    }
                    if (options.FoldBatchNorm && i + 1 < layers.Count && layers[i + 1].Layer is BatchNorm batchNorm && CanFold(layer, y, batchNorm))
                    {
                        WriteFolded(path, layer, batchNorm, layers[i + 1].Path, x.Shape);
                        y = batchNorm.Forward(y);
                        i++;
                    }
                    else WriteLayer(path, layer, x.Shape, y.Shape);
                    x = y;
                }
                outputShape = x.Shape;
            }
            if (_last is null) _last = Node("Identity", "identity", _current);
            _last.Output[0] = options.OutputName;
            var taken = _graph.Node.Where(n => n != _last).Select(n => n.Output[0]).Concat(_graph.Initializer.Select(t => t.Name)).ToHashSet();
            foreach (string name in new[] { options.InputName, options.OutputName })
                if (name.Length == 0 || taken.Contains(name) || options.InputName == options.OutputName)
                    throw new ArgumentException($"OnnxExporter: the graph input and output names ('{options.InputName}', '{options.OutputName}') must be distinct, non-empty and differ from the node and weight names (module paths such as '0', '0.weight').", nameof(options));
            _graph.Output.Add(ValueInfoProto.FloatTensor(options.OutputName, new long?[] { null }.Concat(outputShape.Skip(1).Select(d => (long?)d))));

            var model = new ModelProto
            {
                IrVersion = OnnxFormat.IrVersion,
                ProducerName = "NormSharp",
                ProducerVersion = typeof(Tensor).Assembly.GetName().Version?.ToString() ?? "",
                DocString = network.ToString(),
                Graph = _graph,
            };
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = OnnxFormat.Opset });
            return model;
        }

        /// <summary>Writes an imported graph: layers by the per-layer mapping, reading and producing the graph's value
        /// names; parameter-free nodes as the file held them; the constants they read as initializers.</summary>
        public ModelProto WriteGraph(GraphModule graph)
        {
            Dictionary<string, object> values = graph.Trace();
            static long?[] Dims(object value) => new long?[] { null }.Concat(((Tensor)value).Shape.Skip(1).Select(d => (long?)d)).ToArray();
            foreach (GraphInput input in graph.Inputs) _graph.Input.Add(ValueInfoProto.FloatTensor(input.Name, Dims(values[input.Name])));
            var written = new HashSet<string>();
            foreach (GraphNode node in graph.Nodes)
            {
                if (node.Layer is Module layer)
                {
                    _current = node.Inputs[0];
                    int[] input = ((Tensor)values[node.Inputs[0]]).Shape, output = ((Tensor)values[node.Outputs[0]]).Shape;
                    WriteLayer(node.ModuleName, layer, input, output);
                    _last!.Output[0] = node.Outputs[0];
                    if (node.FoldedBatchNorm is string folded) _last.MetadataProps.Add(Entry(OnnxFormat.FoldedKey, folded));
                    continue;
                }
                foreach (string name in node.Inputs)
                    if (graph.Constants.TryGetValue(name, out object? constant) && written.Add(name))
                        _graph.Initializer.Add(constant is Tensor t ? TensorProto.FromFloats(name, t.Shape.Select(d => (long)d), t.ToArray())
                            : TensorProto.FromInt64s(name, ((IntTensor)constant).Dims.Select(d => (long)d), ((IntTensor)constant).Data));
                _graph.Node.Add(node.Proto!.Clone());
            }
            foreach (string output in graph.OutputNames) _graph.Output.Add(ValueInfoProto.FloatTensor(output, Dims(values[output])));
            var model = new ModelProto
            {
                IrVersion = opset >= 21 ? OnnxFormat.IrVersion : opset >= 15 ? 8 : opset >= 9 ? 4 : 3,
                ProducerName = "NormSharp",
                ProducerVersion = typeof(Tensor).Assembly.GetName().Version?.ToString() ?? "",
                Graph = _graph,
            };
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
            return model;
        }

        private void WriteLayer(string path, Module layer, int[] input, int[] output)
        {
            switch (layer)
            {
                case Linear linear: WriteLinear(path, linear.Weight.ToArray(), linear.Weight.Shape, linear.Bias?.ToArray(), input.Length); break;
                case Conv2d conv: WriteConv(path, conv, conv.Weight.ToArray(), conv.Bias?.ToArray(), input); break;
                case ConvTranspose2d deconv: WriteConvTranspose(path, deconv, deconv.Weight.ToArray(), deconv.Bias?.ToArray(), input); break;
                case GroupedConv2d grouped: WriteGroupedConv(path, grouped); break;
                case BatchNorm batchNorm: WriteBatchNorm(path, batchNorm, input); break;
                case InstanceNorm instanceNorm: WriteInstanceNorm(path, instanceNorm, input); break;
                case LayerNorm layerNorm: WriteLayerNorm(path, layerNorm); break;
                case GroupNorm groupNorm: WriteGroupNorm(path, groupNorm); break;
                case RMSNorm rmsNorm: WriteRmsNorm(path, rmsNorm); break;
                case ReLU: Node("Relu", path, _current); break;
                case LeakyReLU leaky: Node("LeakyRelu", path, _current).Attribute.Add(AttributeProto.OfFloat("alpha", (float)leaky.NegativeSlope)); break;
                case Sigmoid: Node("Sigmoid", path, _current); break;
                case Tanh: Node("Tanh", path, _current); break;
                case Softmax softmax: Node("Softmax", path, _current).Attribute.Add(AttributeProto.OfInt("axis", softmax.Axis)); break;
                case LogSoftmax logSoftmax: Node("LogSoftmax", path, _current).Attribute.Add(AttributeProto.OfInt("axis", logSoftmax.Axis)); break;
                case MaxPool2d maxPool: WritePool(path, "MaxPool", maxPool, maxPool.Dilation, input, output, AttributeProto.OfInts("dilations", maxPool.Dilation.Height, maxPool.Dilation.Width)); break;
                case AvgPool2d avgPool: WritePool(path, "AveragePool", avgPool, 1, input, output, AttributeProto.OfInt("count_include_pad", avgPool.CountIncludePad ? 1 : 0)); break;
                case Flatten flatten: WriteFlatten(path, flatten, input, output); break;
                case Reshape: WriteReshape(path, output); break;
                // The ratio is an input from opset 12 on, an attribute before.
                case Dropout dropout when opset < 12: Node("Dropout", path, _current).Attribute.Add(AttributeProto.OfFloat("ratio", (float)dropout.P)); break;
                case Dropout dropout: Node("Dropout", path, _current, Initializer(Join(path, "ratio"), new[] { (float)dropout.P }, Array.Empty<int>())); break;
                case Identity: Node("Identity", path, _current); break;
                default:
                    throw new NotSupportedException($"OnnxExporter: module '{path}' ({layer.GetType().Name}) has no ONNX form; supported: Sequential of Linear, Conv2d, ConvTranspose2d, BatchNorm1d/2d/3d, KerasBatchNormalization, LayerNorm, GroupNorm, InstanceNorm1d/2d/3d, RMSNorm, ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, LogSoftmax, MaxPool2d, AvgPool2d, Flatten, Reshape, Dropout, Identity.");
            }
        }

        // y = x·Wᵀ + b: Gemm with transB for (N, in) inputs; above 2-D Gemm does not broadcast, so MatMul by Wᵀ, then Add.
        private void WriteLinear(string path, float[] weight, int[] dims, float[]? bias, int inputRank)
        {
            int outFeatures = dims[0], inFeatures = dims[1];
            if (inputRank == 2)
            {
                string w = Initializer(Join(path, "weight"), weight, dims);
                string[] inputs = bias is null ? new[] { _current, w } : new[] { _current, w, Initializer(Join(path, "bias"), bias, new[] { outFeatures }) };
                Node("Gemm", path, inputs).Attribute.Add(AttributeProto.OfInt("transB", 1));
                return;
            }
            var transposed = new float[weight.Length];
            for (int o = 0; o < outFeatures; o++)
                for (int i = 0; i < inFeatures; i++) transposed[i * outFeatures + o] = weight[o * inFeatures + i];
            string wt = Initializer(Join(path, "weight_transposed"), transposed, new[] { inFeatures, outFeatures });
            string? b = bias is null ? null : Initializer(Join(path, "bias"), bias, new[] { outFeatures });
            if (b is null) Node("MatMul", path, _current, wt);
            else
            {
                Node("MatMul", path + "/MatMul", _current, wt);
                Node("Add", path, _current, b);
            }
        }

        private void WriteConv(string path, Conv2d conv, float[] weight, float[]? bias, int[] input)
        {
            RequireImages(path, conv, input);
            (int Before, int After) rows = conv.Padding.IsSame ? SamePadding(conv.KernelSize.Height, conv.Dilation.Height) : (conv.Padding.Size.Height, conv.Padding.Size.Height);
            (int Before, int After) cols = conv.Padding.IsSame ? SamePadding(conv.KernelSize.Width, conv.Dilation.Width) : (conv.Padding.Size.Width, conv.Padding.Size.Width);
            NodeProto node = Node("Conv", path, WeightInputs(path, weight, conv.Weight.Shape, bias));
            node.Attribute.Add(AttributeProto.OfInts("kernel_shape", conv.KernelSize.Height, conv.KernelSize.Width));
            node.Attribute.Add(AttributeProto.OfInts("strides", conv.Stride.Height, conv.Stride.Width));
            node.Attribute.Add(AttributeProto.OfInts("pads", rows.Before, cols.Before, rows.After, cols.After));
            node.Attribute.Add(AttributeProto.OfInts("dilations", conv.Dilation.Height, conv.Dilation.Width));
            if (conv.Padding.IsSame || conv.Padding == ConvPadding.Valid) node.MetadataProps.Add(Entry(OnnxFormat.PaddingKey, conv.Padding.ToString()));
        }

        private void WriteGroupedConv(string path, GroupedConv2d conv)
        {
            NodeProto node = Node("Conv", path, WeightInputs(path, conv.Weight.ToArray(), conv.Weight.Shape, conv.Bias?.ToArray()));
            node.Attribute.Add(AttributeProto.OfInts("kernel_shape", conv.KernelSize.Height, conv.KernelSize.Width));
            node.Attribute.Add(AttributeProto.OfInts("strides", conv.Stride.Height, conv.Stride.Width));
            node.Attribute.Add(AttributeProto.OfInts("pads", conv.Padding.Height, conv.Padding.Width, conv.Padding.Height, conv.Padding.Width));
            node.Attribute.Add(AttributeProto.OfInts("dilations", conv.Dilation.Height, conv.Dilation.Width));
            node.Attribute.Add(AttributeProto.OfInt("group", conv.Groups));
        }

        private void WriteConvTranspose(string path, ConvTranspose2d deconv, float[] weight, float[]? bias, int[] input)
        {
            RequireImages(path, deconv, input);
            NodeProto node = Node("ConvTranspose", path, WeightInputs(path, weight, deconv.Weight.Shape, bias));
            node.Attribute.Add(AttributeProto.OfInts("kernel_shape", deconv.KernelSize.Height, deconv.KernelSize.Width));
            node.Attribute.Add(AttributeProto.OfInts("strides", deconv.Stride.Height, deconv.Stride.Width));
            node.Attribute.Add(AttributeProto.OfInts("pads", deconv.Padding.Height, deconv.Padding.Width, deconv.Padding.Height, deconv.Padding.Width));
            node.Attribute.Add(AttributeProto.OfInts("output_padding", deconv.OutputPadding.Height, deconv.OutputPadding.Width));
            node.Attribute.Add(AttributeProto.OfInts("dilations", deconv.Dilation.Height, deconv.Dilation.Width));
        }

        private string[] WeightInputs(string path, float[] weight, int[] dims, float[]? bias)
        {
            string w = Initializer(Join(path, "weight"), weight, dims);
            return bias is null ? new[] { _current, w } : new[] { _current, w, Initializer(Join(path, "bias"), bias, new[] { bias.Length }) };
        }

        // Evaluation-mode BatchNorm: (x − running_mean)/√(running_var + ε)·γ + β per channel of axis 1 (Ioffe & Szegedy 2015, Alg. 2).
        private void WriteBatchNorm(string path, BatchNorm batchNorm, int[] input)
        {
            if (batchNorm is KerasBatchNormalization keras && keras.Axis != 1 && keras.Axis != 1 - input.Length)
                throw Unsupported(path, batchNorm, $"ONNX BatchNormalization normalizes axis 1, this layer axis {keras.Axis} of {input.Length}-D inputs");
            WriteRunningStatisticsNorm(path, batchNorm);
            if (batchNorm is KerasBatchNormalization { Axis: < 0 } negative) _last!.MetadataProps.Add(Entry(OnnxFormat.AxisKey, negative.Axis.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        // Evaluation-mode InstanceNorm with running statistics is the BatchNorm formula; without, each (sample, channel)
        // is normalized by its own statistics (Ulyanov et al. 2016), ONNX's InstanceNormalization.
        private void WriteInstanceNorm(string path, InstanceNorm instanceNorm, int[] input)
        {
            if (input.Length < 3) throw Unsupported(path, instanceNorm, $"ONNX InstanceNormalization needs (N, C, ...) inputs, got {Shapes.Format(input)}");
            if (instanceNorm.TrackRunningStats)
            {
                WriteRunningStatisticsNorm(path, instanceNorm);
                return;
            }
            NodeProto node = Node("InstanceNormalization", path, _current, Scale(path, instanceNorm.Weight, instanceNorm.NumFeatures), Shift(path, instanceNorm.Bias, instanceNorm.NumFeatures));
            node.Attribute.Add(AttributeProto.OfFloat("epsilon", (float)instanceNorm.Eps));
            Describe(node, instanceNorm, scaleStandsIn: instanceNorm.Weight is null, biasStandsIn: instanceNorm.Bias is null);
        }

        private void WriteRunningStatisticsNorm(string path, NormBase norm)
        {
            NodeProto node = Node("BatchNormalization", path, _current, Scale(path, norm.Weight, norm.NumFeatures), Shift(path, norm.Bias, norm.NumFeatures),
                Initializer(Join(path, "running_mean"), norm.RunningMean!.ToArray(), norm.RunningMean.Shape),
                Initializer(Join(path, "running_var"), norm.RunningVar!.ToArray(), norm.RunningVar.Shape));
            node.Attribute.Add(AttributeProto.OfFloat("epsilon", (float)norm.Eps));
            // ONNX's momentum weighs the running statistic, PyTorch's the batch statistic.
            if (norm.Momentum is double momentum) node.Attribute.Add(AttributeProto.OfFloat("momentum", (float)(1 - momentum)));
            else node.MetadataProps.Add(Entry(OnnxFormat.MomentumKey, "None"));
            Describe(node, norm, scaleStandsIn: norm.Weight is null, biasStandsIn: norm.Bias is null);
            node.MetadataProps.Add(Entry(OnnxFormat.BatchesTrackedKey, ((long)norm.NumBatchesTracked!.Item()).ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        // LayerNorm over the trailing k axes (Ba et al. 2016) is LayerNormalization with axis −k.
        private void WriteLayerNorm(string path, LayerNorm layerNorm)
        {
            int[] shape = layerNorm.NormalizedShape;
            string scale = layerNorm.Weight is Tensor w ? Initializer(Join(path, "weight"), w.ToArray(), w.Shape) : Constant(Join(path, "unit_scale"), 1, shape);
            NodeProto node = Node("LayerNormalization", path, layerNorm.Bias is Tensor b ? new[] { _current, scale, Initializer(Join(path, "bias"), b.ToArray(), b.Shape) } : new[] { _current, scale });
            node.Attribute.Add(AttributeProto.OfInt("axis", -shape.Length));
            node.Attribute.Add(AttributeProto.OfFloat("epsilon", (float)layerNorm.Eps));
            Describe(node, layerNorm, scaleStandsIn: layerNorm.Weight is null, biasStandsIn: false);
        }

        // GroupNorm (Wu & He 2018) is GroupNormalization from opset 21 on, with per-channel scale and bias.
        private void WriteGroupNorm(string path, GroupNorm groupNorm)
        {
            if (opset < 21) throw Unsupported(path, groupNorm, $"GroupNormalization with per-channel scale and bias needs opset 21, the graph is at opset {opset}");
            NodeProto node = Node("GroupNormalization", path, _current, Scale(path, groupNorm.Weight, groupNorm.NumChannels), Shift(path, groupNorm.Bias, groupNorm.NumChannels));
            node.Attribute.Add(AttributeProto.OfFloat("epsilon", (float)groupNorm.Eps));
            node.Attribute.Add(AttributeProto.OfInt("num_groups", groupNorm.NumGroups));
            Describe(node, groupNorm, scaleStandsIn: groupNorm.Weight is null, biasStandsIn: groupNorm.Bias is null);
        }

        // RMSNorm (Zhang & Sennrich 2019), y = x / √(mean(x²) + ε) · γ, has no operator before opset 23: it is written out.
        private void WriteRmsNorm(string path, RMSNorm rmsNorm)
        {
            string x = _current;
            int k = rmsNorm.NormalizedShape.Length;
            long[] axes = Enumerable.Range(0, k).Select(a => (long)(a - k)).ToArray();
            Node("Mul", path + "/square", x, x);
            // ReduceMean takes its axes as an input from opset 18 on, as an attribute before.
            NodeProto mean = opset >= 18 ? Node("ReduceMean", path + "/mean_square", _current, Int64Initializer(Join(path, "axes"), axes)) : Node("ReduceMean", path + "/mean_square", _current);
            if (opset < 18) mean.Attribute.Add(AttributeProto.OfInts("axes", axes));
            mean.Attribute.Add(AttributeProto.OfInt("keepdims", 1));
            double eps = rmsNorm.Eps ?? MathF.BitIncrement(1f) - 1f; // PyTorch's default: the float32 machine epsilon
            Node("Add", path + "/plus_eps", _current, Initializer(Join(path, "eps"), new[] { (float)eps }, Array.Empty<int>()));
            Node("Sqrt", path + "/rms", _current);
            if (rmsNorm.Weight is not Tensor weight)
            {
                Describe(Node("Div", path, x, _current), rmsNorm, scaleStandsIn: false, biasStandsIn: false);
                return;
            }
            Node("Div", path + "/normalized", x, _current);
            Describe(Node("Mul", path, _current, Initializer(Join(path, "weight"), weight.ToArray(), weight.Shape)), rmsNorm, scaleStandsIn: false, biasStandsIn: false);
        }

        private void WritePool(string path, string opType, Pool2dBase pool, Size2 dilation, int[] input, int[] output, AttributeProto extra)
        {
            RequireImages(path, pool, input);
            NodeProto node = Node(opType, path, _current);
            node.Attribute.Add(AttributeProto.OfInts("kernel_shape", pool.KernelSize.Height, pool.KernelSize.Width));
            node.Attribute.Add(AttributeProto.OfInts("strides", pool.Stride.Height, pool.Stride.Width));
            node.Attribute.Add(AttributeProto.OfInts("pads", pool.Padding.Height, pool.Padding.Width, pool.Padding.Height, pool.Padding.Width));
            // PyTorch's ceil mode drops a last window that would start in the end padding, which leaves the floor
            // size; ONNX's shape formula does not drop it. Ceil mode is written only where it adds a window.
            bool addsWindow = output[2] > FloorWindows(input[2], pool.KernelSize.Height, pool.Stride.Height, pool.Padding.Height, dilation.Height)
                || output[3] > FloorWindows(input[3], pool.KernelSize.Width, pool.Stride.Width, pool.Padding.Width, dilation.Width);
            // ceil_mode (and MaxPool's dilations) exist from opset 10 on; before, only their defaults can be written.
            if (opset >= 10) node.Attribute.Add(AttributeProto.OfInt("ceil_mode", pool.CeilMode && addsWindow ? 1 : 0));
            else if (pool.CeilMode && addsWindow) throw Unsupported(path, pool, $"ceil_mode needs opset 10 or later, the graph is at opset {opset}");
            if (opset >= 10 || extra.Name != "dilations") node.Attribute.Add(extra);
            else if (extra.Ints.Any(d => d != 1)) throw Unsupported(path, pool, $"dilations need opset 10 or later, the graph is at opset {opset}");
            if (pool.CeilMode && !addsWindow) node.MetadataProps.Add(Entry(OnnxFormat.CeilModeKey, "true"));

            static int FloorWindows(int size, int kernel, int stride, int padding, int dilation) => (size + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1;
        }

        // ONNX Flatten always yields 2-D (N, rest): PyTorch's default Flatten(1, −1). Other spans become a Reshape.
        private void WriteFlatten(string path, Flatten flatten, int[] input, int[] output)
        {
            int rank = input.Length;
            int start = flatten.StartAxis < 0 ? flatten.StartAxis + rank : flatten.StartAxis, end = flatten.EndAxis < 0 ? flatten.EndAxis + rank : flatten.EndAxis;
            if (start == 1 && end == rank - 1) Node("Flatten", path, _current).Attribute.Add(AttributeProto.OfInt("axis", 1));
            else WriteReshape(path, output, batchMerged: start == 0);
        }

        // The target shape with the batch axis left dynamic: 0 copies it from the input, −1 infers it when merged.
        private void WriteReshape(string path, int[] output, bool batchMerged = false)
        {
            if (output.Skip(1).Contains(0)) throw new NotSupportedException($"OnnxExporter: module '{path}' (Reshape) produces an empty axis, which ONNX Reshape reads as 'copy'.");
            long[] shape = new[] { batchMerged ? -1L : 0L }.Concat(output.Skip(1).Select(d => (long)d)).ToArray();
            Node("Reshape", path, _current, Int64Initializer(Join(path, "shape"), shape));
        }

        /// <summary>Whether <paramref name="batchNorm"/> (after <paramref name="layer"/>, whose output is
        /// <paramref name="output"/>) is a per-output-channel affine map that folds into the layer's weights.</summary>
        private static bool CanFold(Module layer, Tensor output, BatchNorm batchNorm)
        {
            bool channelAxisIsOne = batchNorm is not KerasBatchNormalization keras || keras.Axis == 1 || keras.Axis == 1 - output.Rank;
            bool producesChannels = layer switch
            {
                Linear => output.Rank == 2,
                Conv2d or ConvTranspose2d => output.Rank == 4,
                _ => false,
            };
            return producesChannels && channelAxisIsOne && batchNorm.TrackRunningStats;
        }

        private void WriteFolded(string path, Module layer, BatchNorm batchNorm, string batchNormPath, int[] input)
        {
            switch (layer)
            {
                case Linear linear:
                {
                    var (w, b) = BatchNormFolding.Fold(linear.Weight, linear.Bias, batchNorm);
                    WriteLinear(path, w.ToArray(), w.Shape, b.ToArray(), inputRank: 2);
                    break;
                }
                case Conv2d conv:
                {
                    var (w, b) = BatchNormFolding.Fold(conv.Weight, conv.Bias, batchNorm);
                    WriteConv(path, conv, w.ToArray(), b.ToArray(), input);
                    break;
                }
                case ConvTranspose2d deconv:
                {
                    // The weight is (in, out, kh, kw): fold with the output channels first, then swap back.
                    var (w, b) = BatchNormFolding.Fold(deconv.Weight.Permute(1, 0, 2, 3).Contiguous(), deconv.Bias, batchNorm);
                    WriteConvTranspose(path, deconv, w.Permute(1, 0, 2, 3).Contiguous().ToArray(), b.ToArray(), input);
                    break;
                }
            }
            _last!.MetadataProps.Add(Entry(OnnxFormat.FoldedKey, batchNormPath));
        }

        /// <summary>Adds a node reading <paramref name="inputs"/>; its one output is named after the node and becomes
        /// the chain's current value.</summary>
        private NodeProto Node(string opType, string name, params string[] inputs)
        {
            var node = new NodeProto { Name = name.Length == 0 ? opType : name, OpType = opType };
            node.Input.AddRange(inputs);
            node.Output.Add(node.Name);
            _graph.Node.Add(node);
            _current = node.Name;
            _last = node;
            return node;
        }

        private string Initializer(string name, float[] values, int[] dims)
        {
            _graph.Initializer.Add(TensorProto.FromFloats(name, dims.Select(d => (long)d), values));
            return name;
        }

        private string Int64Initializer(string name, long[] values)
        {
            _graph.Initializer.Add(TensorProto.FromInt64s(name, new[] { (long)values.Length }, values));
            return name;
        }

        private string Constant(string name, float value, int[] dims)
        {
            var values = new float[dims.Aggregate(1, (a, b) => a * b)];
            Array.Fill(values, value);
            return Initializer(name, values, dims);
        }

        /// <summary>γ, or ones when the module has none (the ONNX operator requires a scale).</summary>
        private string Scale(string path, Tensor? weight, int channels) =>
            weight is null ? Constant(Join(path, "unit_scale"), 1, new[] { channels }) : Initializer(Join(path, "weight"), weight.ToArray(), weight.Shape);

        /// <summary>β, or zeros when the module has none (the ONNX operator requires a bias).</summary>
        private string Shift(string path, Tensor? bias, int channels) =>
            bias is null ? Constant(Join(path, "zero_bias"), 0, new[] { channels }) : Initializer(Join(path, "bias"), bias.ToArray(), bias.Shape);

        /// <summary>Records the module type, and whether the node's scale (ones) and bias (zeros) inputs stand in for
        /// a γ and β the module does not have.</summary>
        private static void Describe(NodeProto node, Module module, bool scaleStandsIn, bool biasStandsIn)
        {
            node.MetadataProps.Add(Entry(OnnxFormat.ModuleKey, module.GetType().Name));
            if (scaleStandsIn) node.MetadataProps.Add(Entry(OnnxFormat.ScaleKey, "false"));
            if (biasStandsIn) node.MetadataProps.Add(Entry(OnnxFormat.CenterKey, "false"));
        }

        private static StringStringEntryProto Entry(string key, string value) => new() { Key = key, Value = value };

        /// <summary>PyTorch's padding "same" (stride 1): the total dilation·(kernel − 1), the odd row or column at the
        /// end, as ONNX's SAME_UPPER.</summary>
        private static (int Before, int After) SamePadding(int kernel, int dilation)
        {
            int total = dilation * (kernel - 1);
            return (total / 2, total - total / 2);
        }

        private static void RequireImages(string path, Module layer, int[] input)
        {
            if (input.Length != 4)
                throw Unsupported(path, layer, $"exports for (N, C, H, W) inputs, got {Shapes.Format(input)} from the sample shape");
        }

        private static NotSupportedException Unsupported(string path, Module layer, string why) =>
            new($"OnnxExporter: module '{path}' ({layer}): {why}.");

        private static string Join(string path, string name) => path.Length == 0 ? name : path + "." + name;
    }
}
