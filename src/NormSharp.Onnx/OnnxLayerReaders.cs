using NormSharp.Nn;
using NormSharp.Onnx.Protobuf;

namespace NormSharp.Onnx;

public static partial class OnnxImporter
{
    /// <summary>The readers of each operator: a NormSharp layer from one node (or a short fixed pattern of nodes),
    /// its attributes and constant inputs checked against the shape of the value it reads.</summary>
    private sealed partial class GraphReader
    {
        private const string Supported = "Gemm, MatMul, Conv, ConvTranspose, BatchNormalization, InstanceNormalization, LayerNormalization, GroupNormalization, " +
            "Relu, LeakyRelu, Sigmoid, Tanh, Softmax, LogSoftmax, MaxPool, AveragePool, Flatten, Reshape, Dropout, Identity, Constant and NormSharp's RMSNorm pattern";

        private Step ReadStep(OnnxNode node, int index, string x, int[] shape)
        {
            Step step = node.OpType switch
            {
                "Gemm" => new(Gemm(node, x, shape), 1),
                "MatMul" => MatMul(node, index, x, shape),
                "Conv" => new(Conv(node, x, shape), 1),
                "ConvTranspose" => new(ConvTranspose(node, x, shape), 1),
                "BatchNormalization" => new(BatchNormalization(node, x, shape), 1),
                "InstanceNormalization" => new(InstanceNormalization(node, x, shape), 1),
                "LayerNormalization" => new(LayerNormalization(node, x, shape), 1),
                "GroupNormalization" => new(GroupNormalization(node, x, shape), 1),
                "Mul" when node.InputName(0) == x && node.InputName(1) == x => RmsNorm(node, index, x, shape),
                "Relu" => new(Elementwise(node, x, new ReLU()), 1),
                "Sigmoid" => new(Elementwise(node, x, new Sigmoid()), 1),
                "Tanh" => new(Elementwise(node, x, new Tanh()), 1),
                "Identity" => new(Elementwise(node, x, new Identity()), 1),
                "LeakyRelu" => new(Elementwise(node, x, new LeakyReLU(OnnxFormat.ShortestDecimal(node.Float("alpha", 0.01f)))), 1),
                // Before opset 13 the default axis is 1 (the importer reads a layer there only when it is the last axis).
                "Softmax" => new(Elementwise(node, x, new Softmax((int)node.Int("axis", _opset < 13 ? 1 : -1))), 1),
                "LogSoftmax" => new(Elementwise(node, x, new LogSoftmax((int)node.Int("axis", _opset < 13 ? 1 : -1))), 1),
                "MaxPool" => new(MaxPool(node, x, shape), 1),
                "AveragePool" => new(AveragePool(node, x, shape), 1),
                "Flatten" => new(Flatten(node, x, shape), 1),
                "Reshape" => new(Reshape(node, x, shape), 1),
                "Dropout" => new(Dropout(node, x, _opset), 1),
                _ => throw node.Unsupported($"operator {node.OpType} is not supported; NormSharp imports {Supported}"),
            };
            for (int i = index; i < index + step.NodeCount; i++) NodeAt(i).RejectUnreadAttributes();
            return step;
        }

        /// <summary>The reader of node <paramref name="index"/> (one per node, so that the attributes its step read
        /// are known when unread ones are rejected).</summary>
        private OnnxNode NodeAt(int index) => _views[index] ??= new OnnxNode(_nodes[index], index, _constants, _source);

        private static Module Elementwise(OnnxNode node, string x, Module layer)
        {
            node.RequireInput(0, x);
            return layer;
        }

        // Y = α·A·B' + β·C with B' = Bᵀ when transB: a Linear with weight α·B' ᵀ (out, in) and bias β·C.
        private Linear Gemm(OnnxNode node, string x, int[] shape)
        {
            node.RequireInput(0, x);
            if (node.Int("transA", 0) != 0) throw node.Unsupported("transA=1 transposes the data, which a Linear layer does not");
            bool transB = node.Int("transB", 0) != 0;
            if (_opset < 7) node.Int("broadcast", 0); // opset 6's switch for broadcasting C, always on from opset 7
            float alpha = node.Float("alpha", 1), beta = node.Float("beta", 1);
            if (shape.Length != 2) throw node.Invalid($"Gemm needs a 2-D input, got shape {Shapes.Format(shape)}");
            TensorProto b = node.Constant(1);
            if (b.Dims.Count != 2) throw node.Invalid($"input 1 ('{b.Name}') has shape {b.FormatDims()}, expected a matrix");
            int inFeatures = shape[1], outFeatures = (int)(transB ? b.Dims[0] : b.Dims[1]);
            float[] weight = node.Floats(b, 1, transB ? new long[] { outFeatures, inFeatures } : new long[] { inFeatures, outFeatures });
            if (!transB) weight = Transpose(weight, inFeatures, outFeatures);
            if (alpha != 1) for (int i = 0; i < weight.Length; i++) weight[i] *= alpha;
            float[]? bias = Bias(node, 2, outFeatures);
            if (bias is not null && beta != 1) for (int i = 0; i < bias.Length; i++) bias[i] *= beta;
            return LinearWith(inFeatures, outFeatures, weight, bias);
        }

        // x·B for a constant B (in, out) is a Linear without bias; an Add of a constant (out) right after is its bias.
        private Step MatMul(OnnxNode node, int index, string x, int[] shape)
        {
            node.RequireInput(0, x);
            TensorProto b = node.Constant(1);
            if (b.Dims.Count != 2 || b.Dims[0] != shape[^1])
                throw node.Invalid($"input 1 ('{b.Name}') has shape {b.FormatDims()}, expected ({shape[^1]}, out) for inputs of shape {Shapes.Format(shape)}");
            int inFeatures = shape[^1], outFeatures = (int)b.Dims[1];
            float[] weight = Transpose(node.Floats(b, 1, inFeatures, outFeatures), inFeatures, outFeatures);
            if (index + 1 < _nodes.Count && _nodes[index + 1].OpType == "Add" && _nodes[index + 1].Domain is "" or "ai.onnx")
            {
                OnnxNode add = NodeAt(index + 1);
                int data = add.InputName(0) == node.Output ? 0 : add.InputName(1) == node.Output ? 1 : -1;
                if (data >= 0 && add.OptionalConstant(1 - data) is TensorProto c && c.Dims.Count >= 1 && c.Dims[^1] == outFeatures && c.Dims.SkipLast(1).All(d => d == 1))
                    return new Step(LinearWith(inFeatures, outFeatures, weight, add.Floats(c, 1 - data, c.Dims.ToArray())), 2);
            }
            return new Step(LinearWith(inFeatures, outFeatures, weight, null), 1);
        }

        private Linear LinearWith(int inFeatures, int outFeatures, float[] weight, float[]? bias)
        {
            var linear = new Linear(inFeatures, outFeatures, bias is not null, _initialization);
            linear.Weight.CopyFrom(weight);
            linear.Bias?.CopyFrom(bias!);
            return linear;
        }

        private Module Conv(OnnxNode node, string x, int[] shape)
        {
            node.RequireInput(0, x);
            var (weight, dims) = ConvolutionWeight(node, shape);
            int outChannels = (int)dims[0];
            long groups = node.Int("group", 1);
            if (groups != 1) return GroupedConv(node, shape, weight, dims, groups);
            if (dims[1] != shape[1]) throw node.Invalid($"input 1 ('{node.InputName(1)}') has shape {Shapes.Format(dims)}, expected ({outChannels}, {shape[1]}, kh, kw) for inputs of shape {Shapes.Format(shape)}");
            Size2 kernel = ((int)dims[2], (int)dims[3]);
            var (stride, dilation) = StrideAndDilation(node);
            long[] pads = node.Ints("pads", 4, new long[4]);
            string autoPad = node.String("auto_pad", "NOTSET");
            ConvPadding padding = autoPad switch
            {
                "NOTSET" => ConvolutionPadding(node, pads, kernel, stride, dilation, Metadata(node, OnnxFormat.PaddingKey)),
                "VALID" => ConvPadding.Valid,
                "SAME_UPPER" when stride == new Size2(1, 1) => ConvPadding.Same, // PyTorch's "same" also puts the odd row last
                _ => throw node.Unsupported($"auto_pad={autoPad} with strides {stride} is not supported (NOTSET, VALID, or SAME_UPPER with stride 1)"),
            };
            long outHeight = (shape[2] + pads[0] + pads[2] - dilation.Height * (kernel.Height - 1L) - 1) / stride.Height + 1;
            long outWidth = (shape[3] + pads[1] + pads[3] - dilation.Width * (kernel.Width - 1L) - 1) / stride.Width + 1;
            CheckOutputSize(node, outChannels, outHeight, outWidth);
            CheckWorkspace(node, (long)shape[1] * kernel.Height * kernel.Width, outHeight * outWidth);
            float[]? bias = Bias(node, 2, outChannels);
            var conv = new Conv2d(shape[1], outChannels, kernel, stride, padding, dilation, bias is not null, _initialization);
            conv.Weight.CopyFrom(weight);
            conv.Bias?.CopyFrom(bias!);
            return conv;
        }

        // A grouped (or depthwise) convolution with symmetric explicit pads; other forms run as the graph's Conv operation.
        private GroupedConv2d GroupedConv(OnnxNode node, int[] shape, float[] weight, long[] dims, long groups)
        {
            if (groups < 1 || dims[1] * groups != shape[1] || dims[0] % groups != 0)
                throw node.Invalid($"input 1 ('{node.InputName(1)}') has shape {Shapes.Format(dims)}, which does not fit group={groups} for inputs of shape {Shapes.Format(shape)}");
            var (stride, dilation) = StrideAndDilation(node);
            long[] pads = node.Ints("pads", 4, new long[4]);
            if (node.String("auto_pad", "NOTSET") != "NOTSET" || pads[0] != pads[2] || pads[1] != pads[3] || pads.Any(p => p < 0 || p > int.MaxValue))
                throw node.Unsupported("a grouped convolution layer needs symmetric explicit pads");
            float[]? bias = Bias(node, 2, (int)dims[0]);
            var conv = new GroupedConv2d(shape[1], (int)dims[0], ((int)dims[2], (int)dims[3]), (int)groups, stride, ((int)pads[0], (int)pads[1]), dilation, bias is not null, _initialization);
            conv.Weight.CopyFrom(weight);
            conv.Bias?.CopyFrom(bias!);
            return conv;
        }

        /// <summary>Symmetric pads (top = bottom, left = right), or the split of PyTorch's "same" at stride 1; the
        /// exporter's <paramref name="keyword"/> metadata restores "same" or "valid" where the pads agree with it.</summary>
        private static ConvPadding ConvolutionPadding(OnnxNode node, long[] pads, Size2 kernel, Size2 stride, Size2 dilation, string? keyword)
        {
            if (pads.Any(p => p < 0 || p > int.MaxValue)) throw node.Invalid($"pads [{string.Join(", ", pads)}] must be non-negative");
            long rows = dilation.Height * (kernel.Height - 1L), cols = dilation.Width * (kernel.Width - 1L);
            bool same = stride == new Size2(1, 1) && pads[0] == rows / 2 && pads[2] == rows - rows / 2 && pads[1] == cols / 2 && pads[3] == cols - cols / 2;
            if (same && (keyword == "same" || pads[0] != pads[2] || pads[1] != pads[3])) return ConvPadding.Same;
            if (keyword == "valid" && pads.All(p => p == 0)) return ConvPadding.Valid;
            if (pads[0] == pads[2] && pads[1] == pads[3]) return new Size2((int)pads[0], (int)pads[1]);
            throw node.Unsupported($"asymmetric pads [{string.Join(", ", pads)}] are not supported (only symmetric ones, or PyTorch's 'same' at stride 1)");
        }

        private ConvTranspose2d ConvTranspose(OnnxNode node, string x, int[] shape)
        {
            node.RequireInput(0, x);
            var (weight, dims) = ConvolutionWeight(node, shape);
            if (dims[0] != shape[1]) throw node.Invalid($"input 1 ('{node.InputName(1)}') has shape {Shapes.Format(dims)}, expected ({shape[1]}, out, kh, kw) for inputs of shape {Shapes.Format(shape)}");
            int outChannels = (int)dims[1];
            Size2 kernel = ((int)dims[2], (int)dims[3]);
            var (stride, dilation) = StrideAndDilation(node);
            long[] pads = node.Ints("pads", 4, new long[4]), outputPadding = node.Ints("output_padding", 2, new long[2]);
            if (node.String("auto_pad", "NOTSET") != "NOTSET") throw node.Unsupported("auto_pad is not supported for ConvTranspose (give explicit pads)");
            if (node.Ints("output_shape", 2, Array.Empty<long>()).Length > 0) throw node.Unsupported("output_shape is not supported (give pads and output_padding)");
            if (pads[0] != pads[2] || pads[1] != pads[3]) throw node.Unsupported($"asymmetric pads [{string.Join(", ", pads)}] are not supported");
            CheckOutputSize(node, outChannels, (shape[2] - 1L) * stride.Height - 2 * pads[0] + dilation.Height * (kernel.Height - 1L) + outputPadding[0] + 1,
                (shape[3] - 1L) * stride.Width - 2 * pads[1] + dilation.Width * (kernel.Width - 1L) + outputPadding[1] + 1);
            CheckWorkspace(node, (long)outChannels * kernel.Height * kernel.Width, (long)shape[2] * shape[3]); // the transposed convolution's col2im
            float[]? bias = Bias(node, 2, outChannels);
            var deconv = new ConvTranspose2d(shape[1], outChannels, kernel, stride, (Int(node, pads[0]), Int(node, pads[1])),
                (Int(node, outputPadding[0]), Int(node, outputPadding[1])), dilation, bias is not null, _initialization);
            deconv.Weight.CopyFrom(weight);
            deconv.Bias?.CopyFrom(bias!);
            return deconv;
        }

        /// <summary>The 4-D weight of a convolution, with kernel_shape, if given, matching it.</summary>
        private static (float[] Weight, long[] Dims) ConvolutionWeight(OnnxNode node, int[] shape)
        {
            if (shape.Length != 4) throw node.Unsupported($"NormSharp imports 2-D convolutions of (N, C, H, W) inputs, got shape {Shapes.Format(shape)}");
            if (node.OpType == "ConvTranspose" && node.Int("group", 1) != 1) throw node.Unsupported($"group={node.Int("group", 1)} (grouped transposed convolution) is not supported");
            TensorProto w = node.Constant(1);
            long[] dims = w.Dims.ToArray();
            if (dims.Length != 4 || dims.Any(d => d <= 0 || d > int.MaxValue)) throw node.Invalid($"input 1 ('{w.Name}') has shape {w.FormatDims()}, expected a 4-D weight");
            long[] kernel = node.Ints("kernel_shape", 2, dims[2..]);
            if (!kernel.SequenceEqual(dims[2..])) throw node.Invalid($"kernel_shape [{string.Join(", ", kernel)}] does not match the weight of shape {w.FormatDims()}");
            return (node.Floats(w, 1, dims), dims);
        }

        /// <summary>Refuses a convolution whose output would exceed the per-sample limit before NormSharp allocates
        /// it (a corrupt stride or pad can ask for gigabytes); sizes below 1 are left to NormSharp's own checks.</summary>
        private static void CheckOutputSize(OnnxNode node, long channels, long height, long width)
        {
            if (height > 0 && width > 0 && (height > MaxSampleElements || width > MaxSampleElements || channels * height * width > MaxSampleElements))
                throw node.Invalid($"its output of {channels}×{height}×{width} per sample has more than {MaxSampleElements} elements");
        }

        /// <summary>Refuses a convolution whose im2col workspace for one sample — a patch of
        /// <paramref name="patch"/> elements at each of <paramref name="positions"/> positions — exceeds
        /// <see cref="MaxWorkspaceElements"/>, before NormSharp allocates it (a 1.4 KB model with a 16×16 kernel on a
        /// 2048×2048 input asked for 4 GB).</summary>
        private static void CheckWorkspace(OnnxNode node, long patch, long positions)
        {
            if (positions > 0 && patch * positions > MaxWorkspaceElements)
                throw node.Invalid($"its im2col workspace of {patch}×{positions} elements per sample (a {patch}-element patch at each output position) is more than {MaxWorkspaceElements}");
        }

        private static (Size2 Stride, Size2 Dilation) StrideAndDilation(OnnxNode node)
        {
            long[] strides = node.Ints("strides", 2, new long[] { 1, 1 }), dilations = node.Ints("dilations", 2, new long[] { 1, 1 });
            if (strides.Concat(dilations).Any(v => v <= 0)) throw node.Invalid($"strides [{string.Join(", ", strides)}] and dilations [{string.Join(", ", dilations)}] must be positive");
            return ((Int(node, strides[0]), Int(node, strides[1])), (Int(node, dilations[0]), Int(node, dilations[1])));
        }

        /// <summary>An optional bias input of <paramref name="channels"/> values.</summary>
        private static float[]? Bias(OnnxNode node, int index, int channels)
        {
            TensorProto? b = node.OptionalConstant(index);
            if (b is null) return null;
            long[] dims = b.Dims.Count == 2 && b.Dims[0] == 1 ? new long[] { 1, channels } : new long[] { channels };
            return node.Floats(b, index, dims);
        }

        // Inference-form BatchNormalization (running statistics) is an evaluation-mode BatchNorm; the node metadata says
        // which NormSharp class wrote it (Keras-convention BatchNorm, an InstanceNorm with running statistics).
        private NormBase BatchNormalization(OnnxNode node, string x, int[] shape)
        {
            node.RequireInput(0, x);
            if (node.Int("training_mode", 0) != 0) throw node.Unsupported("training_mode=1 (batch statistics at inference) is not supported");
            // Before opset 9 'spatial' chose per-channel (1, the only form PyTorch and Keras write) or per-activation
            // statistics; before opset 7 'is_test' marked the inference form, which is the one read here.
            if (_opset < 9 && node.Int("spatial", 1) != 1) throw node.Unsupported("spatial=0 (statistics per activation) is not supported");
            if (_opset < 7) node.Int("is_test", 0);
            if (shape.Length is < 2 or > 5) throw node.Unsupported($"inputs of shape {Shapes.Format(shape)} are not supported (2-D to 5-D)");
            int c = shape[1];
            float[] scale = node.Floats(1, c), bias = node.Floats(2, c), mean = node.Floats(3, c), variance = node.Floats(4, c);
            double eps = OnnxFormat.ShortestDecimal(node.Float("epsilon", 1e-5f));
            float onnxMomentum = node.Float("momentum", 0.9f);
            if (!(onnxMomentum is >= 0 and <= 1)) throw node.Invalid($"momentum {onnxMomentum} must lie in [0, 1]");
            double? momentum = Metadata(node, OnnxFormat.MomentumKey) == "None" ? null : OnnxFormat.Complement(onnxMomentum);
            bool hasScale = !StandsIn(node, OnnxFormat.ScaleKey, scale, 1), hasShift = !StandsIn(node, OnnxFormat.CenterKey, bias, 0);
            bool affine = hasScale || hasShift;
            NormBase norm = Metadata(node, OnnxFormat.ModuleKey) switch
            {
                nameof(KerasBatchNormalization) => new KerasBatchNormalization(c, KerasAxis(node, shape.Length), OnnxFormat.ShortestDecimal(onnxMomentum), eps, center: hasShift, scale: hasScale),
                nameof(InstanceNorm1d) => new InstanceNorm1d(c, eps, momentum, affine, trackRunningStats: true),
                nameof(InstanceNorm2d) => new InstanceNorm2d(c, eps, momentum, affine, trackRunningStats: true),
                nameof(InstanceNorm3d) => new InstanceNorm3d(c, eps, momentum, affine, trackRunningStats: true),
                _ => shape.Length switch
                {
                    2 or 3 => new BatchNorm1d(c, eps, momentum, affine),
                    4 => new BatchNorm2d(c, eps, momentum, affine),
                    _ => new BatchNorm3d(c, eps, momentum, affine),
                },
            };
            norm.Weight?.CopyFrom(scale);
            norm.Bias?.CopyFrom(bias);
            norm.RunningMean!.CopyFrom(mean);
            norm.RunningVar!.CopyFrom(variance);
            if (Metadata(node, OnnxFormat.BatchesTrackedKey) is string tracked)
            {
                if (!long.TryParse(tracked, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long batches))
                    throw node.Invalid($"metadata {OnnxFormat.BatchesTrackedKey}='{tracked}' is not a count");
                norm.NumBatchesTracked!.CopyFrom(new[] { (float)batches });
            }
            return norm;
        }

        /// <summary>The channel axis as the exporter recorded it (−1 for (N, C)); 1 when absent or inconsistent.</summary>
        private static int KerasAxis(OnnxNode node, int rank) =>
            int.TryParse(Metadata(node, OnnxFormat.AxisKey), System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out int axis) && axis + rank == 1 ? axis : 1;

        private InstanceNorm InstanceNormalization(OnnxNode node, string x, int[] shape)
        {
            node.RequireInput(0, x);
            int c = shape[1];
            float[] scale = node.Floats(1, c), bias = node.Floats(2, c);
            double eps = OnnxFormat.ShortestDecimal(node.Float("epsilon", 1e-5f));
            bool affine = !(StandsIn(node, OnnxFormat.ScaleKey, scale, 1) && StandsIn(node, OnnxFormat.CenterKey, bias, 0));
            InstanceNorm norm = shape.Length switch
            {
                3 => new InstanceNorm1d(c, eps, affine: affine),
                4 => new InstanceNorm2d(c, eps, affine: affine),
                5 => new InstanceNorm3d(c, eps, affine: affine),
                _ => throw node.Unsupported($"inputs of shape {Shapes.Format(shape)} are not supported (3-D to 5-D)"),
            };
            norm.Weight?.CopyFrom(scale);
            norm.Bias?.CopyFrom(bias);
            return norm;
        }

        private LayerNorm LayerNormalization(OnnxNode node, string x, int[] shape)
        {
            node.RequireInput(0, x);
            long axis = node.Int("axis", -1);
            long start = axis < 0 ? axis + shape.Length : axis;
            if (start < 1 || start >= shape.Length) throw node.Unsupported($"axis={axis} for inputs of shape {Shapes.Format(shape)} is not supported (it must leave the batch axis out)");
            node.Int("stash_type", 1); // the precision of the statistics; NormSharp's are always accurate
            int[] normalized = shape[(int)start..];
            long[] dims = normalized.Select(d => (long)d).ToArray();
            float[] scale = node.Floats(1, dims);
            float[]? bias = node.OptionalConstant(2) is TensorProto b ? node.Floats(b, 2, dims) : null;
            bool affine = !(StandsIn(node, OnnxFormat.ScaleKey, scale, 1) && bias is null);
            var layerNorm = new LayerNorm(normalized, OnnxFormat.ShortestDecimal(node.Float("epsilon", 1e-5f)), affine, bias is not null);
            layerNorm.Weight?.CopyFrom(scale);
            layerNorm.Bias?.CopyFrom(bias!);
            return layerNorm;
        }

        // Opset 21 gives per-channel scale and bias; opsets 18–20 gave them per group, which expands to its channels.
        private GroupNorm GroupNormalization(OnnxNode node, string x, int[] shape)
        {
            node.RequireInput(0, x);
            int c = shape[1];
            long groups = node.RequiredInt("num_groups");
            if (groups <= 0 || c % groups != 0) throw node.Invalid($"num_groups={groups} does not divide the {c} channels");
            node.Int("stash_type", 1);
            double eps = OnnxFormat.ShortestDecimal(node.Float("epsilon", 1e-5f));
            float[] scale, bias;
            if (_opset >= 21) (scale, bias) = (node.Floats(1, c), node.Floats(2, c));
            else (scale, bias) = (Repeat(node.Floats(1, groups), c / (int)groups), Repeat(node.Floats(2, groups), c / (int)groups));
            bool affine = !(StandsIn(node, OnnxFormat.ScaleKey, scale, 1) && StandsIn(node, OnnxFormat.CenterKey, bias, 0));
            var groupNorm = new GroupNorm((int)groups, c, eps, affine);
            groupNorm.Weight?.CopyFrom(scale);
            groupNorm.Bias?.CopyFrom(bias);
            return groupNorm;

            static float[] Repeat(float[] perGroup, int times) => perGroup.SelectMany(v => Enumerable.Repeat(v, times)).ToArray();
        }

        // RMSNorm as NormSharp writes it: Mul(x, x) → ReduceMean(trailing axes) → Add(ε) → Sqrt → Div(x, ·) [→ Mul(γ)].
        private Step RmsNorm(OnnxNode square, int index, string x, int[] shape)
        {
            OnnxNode Next(int offset, string opType, string reads)
            {
                if (index + offset >= _nodes.Count || _nodes[index + offset].OpType != opType || _nodes[index + offset].Domain is not ("" or "ai.onnx") || !_nodes[index + offset].Input.Contains(reads))
                    throw square.Unsupported($"Mul(x, x) is read as the start of RMSNorm (Mul, ReduceMean, Add, Sqrt, Div[, Mul]), but node #{index + offset} is not {opType} of '{reads}'");
                return NodeAt(index + offset);
            }

            OnnxNode mean = Next(1, "ReduceMean", square.Output), plusEps = Next(2, "Add", mean.Output), root = Next(3, "Sqrt", plusEps.Output), divide = Next(4, "Div", root.Output);
            mean.RequireInput(0, square.Output);
            long[] axes = _opset >= 18 ? mean.Int64s(mean.Constant(1)) : mean.Ints("axes") ?? Array.Empty<long>();
            if (mean.Int("keepdims", 1) != 1 || mean.Int("noop_with_empty_axes", 0) != 0) throw mean.Unsupported("RMSNorm's mean square must keep its axes");
            int k = axes.Length;
            var normalizedAxes = axes.Select(a => a < 0 ? a + shape.Length : a).Order().ToArray();
            if (k == 0 || !normalizedAxes.SequenceEqual(Enumerable.Range(shape.Length - k, k).Select(a => (long)a)) || shape.Length - k < 1)
                throw mean.Unsupported($"axes [{string.Join(", ", axes)}] are not the trailing axes of a sample of shape {Shapes.Format(shape)}");
            int data = plusEps.InputName(0) == mean.Output ? 1 : 0;
            TensorProto epsTensor = plusEps.Constant(data);
            if (epsTensor.ElementCount() != 1) throw plusEps.Invalid($"input {data} ('{epsTensor.Name}') must hold one ε, it has shape {epsTensor.FormatDims()}");
            float eps = plusEps.Decode(epsTensor, t => t.ToFloats())[0];
            root.RequireInput(0, plusEps.Output);
            divide.RequireInput(0, x);
            divide.RequireInput(1, root.Output);
            int[] normalized = shape[^k..];
            long[] dims = normalized.Select(d => (long)d).ToArray();
            float[]? gamma = null;
            if (index + 5 < _nodes.Count && _nodes[index + 5].OpType == "Mul" && _nodes[index + 5].Input.Contains(divide.Output))
            {
                OnnxNode scale = NodeAt(index + 5);
                int other = scale.InputName(0) == divide.Output ? 1 : 0;
                if (scale.OptionalConstant(other) is TensorProto g && g.Dims.SequenceEqual(dims)) gamma = scale.Floats(g, other, dims);
            }
            // PyTorch's default ε is the float32 machine epsilon; a null ε keeps that meaning for any input type.
            double? epsilon = eps == MathF.BitIncrement(1f) - 1f ? null : OnnxFormat.ShortestDecimal(eps);
            var rmsNorm = new RMSNorm(normalized, epsilon, elementwiseAffine: gamma is not null);
            rmsNorm.Weight?.CopyFrom(gamma!);
            return new Step(rmsNorm, gamma is null ? 5 : 6);
        }

        private MaxPool2d MaxPool(OnnxNode node, string x, int[] shape)
        {
            var (kernel, stride, padding, ceilMode) = PoolWindow(node, x, shape);
            long[] dilations = node.Ints("dilations", 2, new long[] { 1, 1 });
            node.Int("storage_order", 0); // only the unused Indices output depends on it
            return new MaxPool2d(kernel, stride, padding, (Int(node, dilations[0]), Int(node, dilations[1])), ceilMode);
        }

        private AvgPool2d AveragePool(OnnxNode node, string x, int[] shape)
        {
            var (kernel, stride, padding, ceilMode) = PoolWindow(node, x, shape);
            if (!node.Ints("dilations", 2, new long[] { 1, 1 }).All(d => d == 1)) throw node.Unsupported("dilated average pooling is not supported");
            // ONNX's default count_include_pad is 0, PyTorch's True.
            return new AvgPool2d(kernel, stride, padding, ceilMode, countIncludePad: node.Int("count_include_pad", 0) != 0);
        }

        private static (Size2 Kernel, Size2 Stride, Size2 Padding, bool CeilMode) PoolWindow(OnnxNode node, string x, int[] shape)
        {
            node.RequireInput(0, x);
            if (shape.Length != 4) throw node.Unsupported($"NormSharp imports 2-D pooling of (N, C, H, W) inputs, got shape {Shapes.Format(shape)}");
            long[] kernel = node.Ints("kernel_shape", 2, Array.Empty<long>());
            if (kernel.Length == 0) throw node.Invalid("lacks the required attribute 'kernel_shape'");
            long[] strides = node.Ints("strides", 2, new long[] { 1, 1 }), pads = node.Ints("pads", 4, new long[4]);
            string autoPad = node.String("auto_pad", "NOTSET");
            if (autoPad == "VALID") pads = new long[4];
            else if (autoPad != "NOTSET") throw node.Unsupported($"auto_pad={autoPad} is not supported (NOTSET or VALID)");
            if (pads[0] != pads[2] || pads[1] != pads[3]) throw node.Unsupported($"asymmetric pads [{string.Join(", ", pads)}] are not supported");
            bool ceilMode = node.Int("ceil_mode", 0) != 0 || Metadata(node, OnnxFormat.CeilModeKey) == "true";
            return ((Int(node, kernel[0]), Int(node, kernel[1])), (Int(node, strides[0]), Int(node, strides[1])), (Int(node, pads[0]), Int(node, pads[1])), ceilMode);
        }

        // ONNX Flatten reshapes to 2-D (product of the axes before axis, the rest): with axis 1, PyTorch's Flatten().
        private static Nn.Flatten Flatten(OnnxNode node, string x, int[] shape)
        {
            node.RequireInput(0, x);
            long axis = node.Int("axis", 1);
            if (axis != 1 && axis + shape.Length != 1)
                throw node.Unsupported($"axis={axis} would merge or split the batch axis; only axis=1 is supported");
            return new Nn.Flatten();
        }

        // The target shape must keep the batch axis: its first entry 0 (copy), or −1 with the rest filling a sample.
        private static Reshape Reshape(OnnxNode node, string x, int[] shape)
        {
            node.RequireInput(0, x);
            if (node.Int("allowzero", 0) != 0) throw node.Unsupported("allowzero=1 is not supported");
            TensorProto target = node.Constant(1);
            long[] dims = node.Int64s(target);
            int sampleSize = shape.Skip(1).Aggregate(1, (a, b) => a * b);
            if (target.Dims.Count != 1 || dims.Length == 0) throw node.Invalid($"input 1 ('{target.Name}') must be a 1-D shape, it has shape {target.FormatDims()}");
            // 0 copies the input's size at that position (allowzero = 0).
            long[] sample = dims.Skip(1).Select((d, i) => d == 0 && i + 1 < shape.Length ? shape[i + 1] : d).ToArray();
            bool keepsBatch = dims[0] == 0 || (dims[0] == -1 && sample.All(d => d > 0) && sample.Aggregate(1L, (a, b) => a * b) == sampleSize);
            if (!keepsBatch || sample.Any(d => d is < -1 or 0 or > int.MaxValue))
                throw node.Unsupported($"the target shape [{string.Join(", ", dims)}] does not keep the batch axis of inputs of shape (N, {string.Join(", ", shape.Skip(1))})");
            return new Reshape(sample.Select(d => (int)d).ToArray());
        }

        // The ratio is an attribute before opset 12 and an input from 12 on; opset 6 also had 'is_test'.
        private static Dropout Dropout(OnnxNode node, string x, int opset)
        {
            node.RequireInput(0, x);
            node.Int("seed", 0); // only training-mode masks depend on it
            if (opset < 7) node.Int("is_test", 0);
            float ratio = opset < 12 ? node.Float("ratio", 0.5f) : node.OptionalConstant(1) is TensorProto r ? node.Decode(r, t => t.ElementCount() == 1 ? t.ToFloats()[0] : throw node.Invalid($"input 1 ('{r.Name}') must be a scalar ratio")) : 0.5f;
            if (node.OptionalConstant(2) is TensorProto training && node.Decode(training, t => t.ToBools()).Any(b => b))
                throw node.Unsupported("training_mode=true is not supported");
            if (!(ratio is >= 0 and < 1)) throw node.Invalid($"ratio {ratio} must lie in [0, 1)");
            return new Dropout(OnnxFormat.ShortestDecimal(ratio));
        }

        /// <summary>True when the node's metadata says <paramref name="key"/> is "false" and the values are exactly
        /// the neutral <paramref name="neutral"/> that the exporter wrote in place of an absent γ or β.</summary>
        private static bool StandsIn(OnnxNode node, string key, float[] values, float neutral) =>
            Metadata(node, key) == "false" && values.All(v => v == neutral);

        private static string? Metadata(OnnxNode node, string key) => OnnxFormat.Metadata(node.Proto, key);

        private static int Int(OnnxNode node, long value) =>
            value is >= int.MinValue and <= int.MaxValue ? (int)value : throw node.Invalid($"the value {value} does not fit a 32-bit size");

        private static float[] Transpose(float[] matrix, int rows, int cols)
        {
            var transposed = new float[matrix.Length];
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++) transposed[c * rows + r] = matrix[r * cols + c];
            return transposed;
        }
    }
}
