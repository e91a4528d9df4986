using NormSharp.Nn;
using NormSharp.Onnx.Protobuf;

namespace NormSharp.Onnx;

/// <summary>
/// The parameter-free operators of an imported graph, each read by the rules of the model's opset into a function of
/// the node's input values (float <see cref="Tensor"/>s, or <see cref="IntTensor"/>s for shapes, axes and indices).
/// Everything is built from NormSharp's differentiable tensor operations, so a graph trains through them. Operators
/// with weights are read as layers by <see cref="OnnxImporter"/>; the operations here also take the forms a layer
/// cannot (a grouped convolution with weights computed in the graph, asymmetric pads, Softmax before opset 13, ...).
/// </summary>
internal static class OnnxOperations
{
    /// <summary>Operators read only as layers (no operation form).</summary>
    private static readonly HashSet<string> LayerOnly = new()
    {
        "BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization", "ConvTranspose", "Dropout",
    };

    private static readonly HashSet<string> Operations = new()
    {
        "Add", "Sub", "Mul", "Div", "Sum", "Max", "Min", "Softplus", "Relu", "Sigmoid", "Tanh", "LeakyRelu", "Identity", "Elu", "Selu", "PRelu", "HardSigmoid",
        "HardSwish", "Clip", "Softmax", "LogSoftmax", "Concat", "Split", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Reshape",
        "Shape", "Gather", "Slice", "Cast", "ConstantOfShape", "Pad", "MatMul", "Gemm", "Conv", "MaxPool", "AveragePool",
        "GlobalAveragePool", "GlobalMaxPool", "LRN", "ReduceMean", "ReduceSum", "Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Pow",
    };

    /// <summary>The operators NormSharp imports, for error messages.</summary>
    public static string SupportedList => string.Join(", ", LayerOnly.Concat(Operations).Append("Constant").Order(StringComparer.Ordinal));

    public static bool IsSupported(string opType) => LayerOnly.Contains(opType) || Operations.Contains(opType) || opType == "Constant";

    public static bool HasOperation(string opType) => Operations.Contains(opType);

    /// <summary>A constant as a graph value: float and double tensors as float32 <see cref="Tensor"/>s, integer and
    /// bool tensors as <see cref="IntTensor"/>s.</summary>
    public static object Decode(TensorProto tensor)
    {
        int[] dims = tensor.Dims.Select(d => d is >= 0 and <= int.MaxValue ? (int)d : throw new InvalidDataException($"Tensor '{tensor.Name}' has dimension {d}.")).ToArray();
        return tensor.ElementType switch
        {
            TensorProto.Types.DataType.Float or TensorProto.Types.DataType.Double => Tensor.FromArray(tensor.ToFloats(), dims),
            TensorProto.Types.DataType.Int64 or TensorProto.Types.DataType.Int32 => new IntTensor(tensor.ToInt64s(), dims),
            TensorProto.Types.DataType.Bool => new IntTensor(tensor.ToBools().Select(b => b ? 1L : 0L).ToArray(), dims),
            _ => throw new InvalidDataException($"Tensor '{tensor.Name}' has element type {tensor.ElementType}; NormSharp reads float, double, int32, int64 and bool constants."),
        };
    }

    /// <summary>The operation of <paramref name="node"/> at <paramref name="opset"/>; attributes and constant inputs
    /// are read (and checked) now, the values at each run.</summary>
    public static Func<object?[], object?[]> Create(OnnxNode node, int opset, IReadOnlyDictionary<string, TensorProto> constants)
    {
        int required = node.OpType switch
        {
            "Add" or "Sub" or "Mul" or "Div" or "PRelu" or "MatMul" or "Gemm" or "Conv" or "Reshape" or "Gather" or "Pow" => 2,
            "Slice" when opset >= 10 => 3,
            _ => 1,
        };
        int given = node.Proto.Input.Count(i => i.Length > 0);
        if (node.Proto.Input.Take(required).Any(i => i.Length == 0) || node.Proto.Input.Count < required)
            throw node.Invalid($"has {given} inputs, {node.OpType} needs at least {required}");
        if (node.Proto.Output.Count == 0) throw node.Invalid("has no output");
        Func<object?[], object?> one = node.OpType switch
        {
            "Add" => Binary(node, opset, (a, b) => a + b, (a, b) => a + b),
            "Sub" => Binary(node, opset, (a, b) => a - b, (a, b) => a - b),
            "Mul" => Binary(node, opset, (a, b) => a * b, (a, b) => a * b),
            "Div" => Binary(node, opset, (a, b) => a / b, (a, b) => b == 0 ? throw new DivideByZeroException() : a / b),
            "Sum" => v => v.Select(Float).Aggregate((a, b) => a + b),
            "Max" => v => v.Select(Float).Aggregate((a, b) => a + Functional.Relu(b - a)), // max(a, b) = a + relu(b − a)
            "Min" => v => v.Select(Float).Aggregate((a, b) => a - Functional.Relu(a - b)),
            "Softplus" => v => Softplus(Float(v[0])),
            "Relu" => v => Functional.Relu(Float(v[0])),
            "Sigmoid" => v => Functional.Sigmoid(Float(v[0])),
            "Tanh" => v => Functional.Tanh(Float(v[0])),
            "LeakyRelu" => LeakyRelu(node),
            "Identity" => v => v[0],
            "Elu" => Elu(node),
            "Selu" => Selu(node),
            "PRelu" => v => PRelu(Float(v[0]), Float(v[1]), opset),
            "HardSigmoid" => HardSigmoidOf(node),
            "HardSwish" => v => Float(v[0]) * HardSigmoid(Float(v[0]), 1.0 / 6, 0.5),
            "Clip" => Clip(node, opset),
            "Softmax" => SoftmaxFamily(node, opset, log: false),
            "LogSoftmax" => SoftmaxFamily(node, opset, log: true),
            "Concat" => Concat(node),
            "Split" => null!,
            "Transpose" => Transpose(node),
            "Squeeze" => Squeeze(node, opset),
            "Unsqueeze" => Unsqueeze(node, opset),
            "Flatten" => FlattenAt(node),
            "Reshape" => Reshape(node),
            "Shape" => Shape(node, opset),
            "Gather" => Gather(node),
            "Slice" => Slice(node, opset),
            "Cast" => Cast(node),
            "ConstantOfShape" => ConstantOfShape(node),
            "Pad" => Pad(node, opset),
            "MatMul" => v => MatMul(Float(v[0]), Float(v[1])),
            "Gemm" => Gemm(node),
            "Conv" => Conv(node),
            "MaxPool" => Pool(node, max: true),
            "AveragePool" => Pool(node, max: false),
            "GlobalAveragePool" => v => Float(v[0]).Mean(SpatialAxes(Float(v[0])), keepDim: true),
            "GlobalMaxPool" => v => GlobalMax(Float(v[0])),
            "LRN" => Lrn(node),
            "ReduceMean" => Reduce(node, opset, mean: true),
            "ReduceSum" => Reduce(node, opset, mean: false),
            "Sqrt" => v => Float(v[0]).Sqrt(),
            "Exp" => v => Float(v[0]).Exp(),
            "Log" => v => Float(v[0]).Log(),
            "Neg" => v => -Float(v[0]),
            "Abs" => v => Float(v[0]).Abs(),
            "Reciprocal" => v => Tensor.Scalar(1, Float(v[0]).DType) / Float(v[0]),
            "Pow" => Pow(node, constants),
            _ => throw node.Unsupported($"operator {node.OpType} at opset {opset} is not supported; NormSharp imports {SupportedList}"),
        };
        if (node.OpType == "Split") return Split(node, opset);
        return values => new[] { one(values) };
    }

    // ---- values ----

    private static Tensor Float(object? value) => value switch
    {
        Tensor t => t,
        IntTensor i => Tensor.FromArray(i.Data.Select(v => (float)v).ToArray(), i.Dims),
        _ => throw new ArgumentException("a required input is missing"),
    };

    private static IntTensor Ints(object? value) => value switch
    {
        IntTensor i => i,
        Tensor t => new IntTensor(t.ToArray().Select(v => (long)v).ToArray(), t.Shape),
        _ => throw new ArgumentException("a required integer input is missing"),
    };

    private static int Axis(long axis, int rank) =>
        (int)(axis < 0 ? axis + rank : axis) is var a && a >= 0 && a < rank ? a : throw new ArgumentException($"axis {axis} is outside a tensor of rank {rank}");

    private static int[] SpatialAxes(Tensor x) => Enumerable.Range(2, x.Rank - 2).ToArray();

    // ---- element-wise ----

    // Opset 7 on: NumPy broadcasting. Before, B broadcast only when broadcast=1, its axes aligned at 'axis' of A.
    private static Func<object?[], object?> Binary(OnnxNode node, int opset, Func<Tensor, Tensor, Tensor> floats, Func<long, long, long> ints)
    {
        bool legacy = opset < 7 && node.Int("broadcast", 0) != 0;
        long? axis = opset < 7 ? node.Proto.Attribute.Any(a => a.Name == "axis") ? node.Int("axis", 0) : null : null;
        return v =>
        {
            if (v[0] is IntTensor a && v[1] is IntTensor b) return BroadcastInts(a, b, ints);
            Tensor x = Float(v[0]), y = Float(v[1]);
            if (legacy && axis is long at && y.Rank < x.Rank)
            {
                int start = Axis(at, x.Rank);
                y = y.Reshape(y.Shape.Concat(Enumerable.Repeat(1, x.Rank - start - y.Rank)).ToArray());
            }
            return floats(x, y);
        };
    }

    private static IntTensor BroadcastInts(IntTensor a, IntTensor b, Func<long, long, long> op)
    {
        int rank = Math.Max(a.Dims.Length, b.Dims.Length);
        int[] Pad(int[] d) => Enumerable.Repeat(1, rank - d.Length).Concat(d).ToArray();
        int[] da = Pad(a.Dims), db = Pad(b.Dims);
        int[] dims = da.Zip(db, (p, q) => p == q || q == 1 ? p : p == 1 ? q : throw new ArgumentException($"shapes {Shapes.Format(a.Dims)} and {Shapes.Format(b.Dims)} do not broadcast")).ToArray();
        int count = dims.Aggregate(1, (p, q) => p * q);
        var data = new long[count];
        for (int i = 0; i < count; i++)
        {
            int rest = i, ia = 0, ib = 0, sa = 1, sb = 1;
            for (int d = rank - 1; d >= 0; d--)
            {
                int index = rest % dims[d];
                rest /= dims[d];
                ia += (da[d] == 1 ? 0 : index) * sa;
                ib += (db[d] == 1 ? 0 : index) * sb;
                sa *= da[d];
                sb *= db[d];
            }
            data[i] = op(a.Data[ia], b.Data[ib]);
        }
        return new IntTensor(data, dims);
    }

    private static Func<object?[], object?> LeakyRelu(OnnxNode node)
    {
        double alpha = OnnxFormat.ShortestDecimal(node.Float("alpha", 0.01f));
        return v => Functional.LeakyRelu(Float(v[0]), alpha);
    }

    // ELU (Clevert et al. 2016): x for x > 0, α(eˣ − 1) otherwise; min(x, 0) = −relu(−x) keeps it differentiable.
    private static Tensor EluOf(Tensor x, double alpha) => Functional.Relu(x) + ((-Functional.Relu(-x)).Exp() - 1) * alpha;

    private static Func<object?[], object?> Elu(OnnxNode node)
    {
        double alpha = OnnxFormat.ShortestDecimal(node.Float("alpha", 1f));
        return v => EluOf(Float(v[0]), alpha);
    }

    // SELU (Klambauer et al. 2017): γ·ELU_α with the self-normalizing constants as ONNX's defaults.
    private static Func<object?[], object?> Selu(OnnxNode node)
    {
        double alpha = node.Float("alpha", 1.67326319217681884765625f), gamma = node.Float("gamma", 1.05070102214813232421875f);
        return v => EluOf(Float(v[0]), alpha) * gamma;
    }

    // PReLU (He et al. 2015): relu(x) − slope·relu(−x), the slope broadcast to x; before opset 7 a 1-D slope held one
    // value per channel (axis 1).
    private static Tensor PRelu(Tensor x, Tensor slope, int opset)
    {
        if (opset < 7 && slope.Rank == 1 && slope.Length > 1 && x.Rank > 2 && x.Shape[1] == slope.Length)
            slope = slope.Reshape(new[] { slope.Length }.Concat(Enumerable.Repeat(1, x.Rank - 2)).ToArray());
        return Functional.Relu(x) - slope * Functional.Relu(-x);
    }

    // log(1 + eˣ) = relu(x) + log(1 + e^−|x|), which never overflows.
    private static Tensor Softplus(Tensor x) => Functional.Relu(x) + ((-x.Abs()).Exp() + 1).Log();

    private static Tensor HardSigmoid(Tensor x, double alpha, double beta)
    {
        Tensor y = x * alpha + beta;
        return Functional.Relu(y) - Functional.Relu(y - 1); // clip(y, 0, 1)
    }

    private static Func<object?[], object?> HardSigmoidOf(OnnxNode node)
    {
        double alpha = OnnxFormat.ShortestDecimal(node.Float("alpha", 0.2f)), beta = OnnxFormat.ShortestDecimal(node.Float("beta", 0.5f));
        return v => HardSigmoid(Float(v[0]), alpha, beta);
    }

    // Before opset 11 the bounds are attributes, from 11 on optional inputs; clip(x, lo, hi) = hi − relu(hi − (lo + relu(x − lo))).
    private static Func<object?[], object?> Clip(OnnxNode node, int opset)
    {
        float low = opset < 11 ? node.Float("min", float.NegativeInfinity) : float.NegativeInfinity;
        float high = opset < 11 ? node.Float("max", float.PositiveInfinity) : float.PositiveInfinity;
        return v =>
        {
            Tensor x = Float(v[0]);
            double lo = opset >= 11 && v.Length > 1 && v[1] is not null ? Float(v[1]).Item() : low;
            double hi = opset >= 11 && v.Length > 2 && v[2] is not null ? Float(v[2]).Item() : high;
            if (!double.IsNegativeInfinity(lo)) x = Functional.Relu(x - lo) + lo;
            if (!double.IsPositiveInfinity(hi)) x = -Functional.Relu(-x + hi) + hi;
            return x;
        };
    }

    // Before opset 13, (Log)Softmax flattens the input to 2-D at 'axis' (default 1) and normalizes each row; from 13
    // on it normalizes along 'axis' (default −1).
    private static Func<object?[], object?> SoftmaxFamily(OnnxNode node, int opset, bool log)
    {
        long axis = node.Int("axis", opset < 13 ? 1 : -1);
        return v =>
        {
            Tensor x = Float(v[0]);
            int a = Axis(axis, x.Rank);
            if (opset >= 13) return log ? Functional.LogSoftmax(x, a) : Functional.Softmax(x, a);
            int rows = x.Shape[..a].Aggregate(1, (p, q) => p * q);
            Tensor flat = x.Reshape(rows, x.Length / Math.Max(rows, 1));
            return (log ? Functional.LogSoftmax(flat, 1) : Functional.Softmax(flat, 1)).Reshape(x.Shape);
        };
    }

    private static Func<object?[], object?> Pow(OnnxNode node, IReadOnlyDictionary<string, TensorProto> constants)
    {
        TensorProto exponent = constants.TryGetValue(node.InputName(1), out TensorProto? e) && e.ElementCount() == 1 ? e
            : throw node.Unsupported("only a constant scalar exponent is supported");
        double power = exponent.ElementType is TensorProto.Types.DataType.Float or TensorProto.Types.DataType.Double ? node.Decode(exponent, t => t.ToFloats())[0] : node.Int64s(exponent)[0];
        return v => power == 2 ? Float(v[0]).Square() : Float(v[0]).Pow(power);
    }

    // ---- shapes and layout ----

    private static Func<object?[], object?> Concat(OnnxNode node)
    {
        long axis = node.RequiredInt("axis");
        return v =>
        {
            if (v.All(x => x is IntTensor))
            {
                var parts = v.Cast<IntTensor>().ToList();
                if (parts.Any(p => p.Dims.Length != 1)) throw new ArgumentException("integer Concat is supported for 1-D values (shapes)");
                return IntTensor.Vector(parts.SelectMany(p => p.Data).ToArray());
            }
            var tensors = v.Select(Float).ToList();
            return Tensor.Concat(tensors, Axis(axis, tensors[0].Rank));
        };
    }

    // Sizes: the 'split' attribute before opset 13, the optional second input from 13 on, else equal parts
    // (num_outputs from opset 18, the output count before).
    private static Func<object?[], object?[]> Split(OnnxNode node, int opset)
    {
        long axis = node.Int("axis", 0);
        long[]? attribute = opset < 13 ? node.Ints("split") : null;
        if (opset >= 18) node.Int("num_outputs", 0);
        int outputs = node.Proto.Output.Count;
        return v =>
        {
            Tensor x = Float(v[0]);
            int a = Axis(axis, x.Rank);
            long[] sizes = attribute ?? (opset >= 13 && v.Length > 1 && v[1] is not null ? Ints(v[1]).Data : EqualParts(x.Shape[a], outputs));
            if (sizes.Sum() != x.Shape[a]) throw new ArgumentException($"split sizes [{string.Join(", ", sizes)}] do not add up to axis {a} of size {x.Shape[a]}");
            var results = new object?[sizes.Length];
            int start = 0;
            for (int i = 0; i < sizes.Length; i++)
            {
                results[i] = x.Narrow(a, start, (int)sizes[i]).Contiguous();
                start += (int)sizes[i];
            }
            return results;
        };

        static long[] EqualParts(int size, int parts)
        {
            long each = (size + parts - 1) / parts;
            return Enumerable.Range(0, parts).Select(i => Math.Min(each, Math.Max(0, size - i * each))).ToArray();
        }
    }

    private static Func<object?[], object?> Transpose(OnnxNode node)
    {
        long[]? perm = node.Ints("perm");
        return v =>
        {
            Tensor x = Float(v[0]);
            int[] axes = perm?.Select(p => Axis(p, x.Rank)).ToArray() ?? Enumerable.Range(0, x.Rank).Reverse().ToArray();
            return x.Permute(axes).Contiguous();
        };
    }

    // Axes: an attribute before opset 13, an (optional) input from 13 on.
    private static long[]? AxesOf(OnnxNode node, int opset, object?[] v, int inputIndex, long[]? attribute) =>
        opset < 13 ? attribute : v.Length > inputIndex && v[inputIndex] is not null ? Ints(v[inputIndex]).Data : null;

    private static Func<object?[], object?> Squeeze(OnnxNode node, int opset)
    {
        long[]? attribute = opset < 13 ? node.Ints("axes") : null;
        return v =>
        {
            int[] dims = Dims(v[0]);
            long[]? axes = AxesOf(node, opset, v, 1, attribute);
            var drop = axes?.Select(a => Axis(a, dims.Length)).ToHashSet() ?? Enumerable.Range(0, dims.Length).Where(d => dims[d] == 1).ToHashSet();
            if (drop.Any(d => dims[d] != 1)) throw new ArgumentException($"Squeeze of an axis whose size is not 1 in shape {Shapes.Format(dims)}");
            return Reshaped(v[0], dims.Where((_, d) => !drop.Contains(d)).ToArray());
        };
    }

    private static Func<object?[], object?> Unsqueeze(OnnxNode node, int opset)
    {
        long[]? attribute = opset < 13 ? node.Ints("axes") ?? throw node.Invalid("lacks the required attribute 'axes'") : null;
        return v =>
        {
            int[] dims = Dims(v[0]);
            long[] axes = AxesOf(node, opset, v, 1, attribute) ?? throw new ArgumentException("Unsqueeze needs axes");
            int rank = dims.Length + axes.Length;
            var inserted = axes.Select(a => Axis(a, rank)).ToHashSet();
            var result = new List<int>();
            int next = 0;
            for (int d = 0; d < rank; d++) result.Add(inserted.Contains(d) ? 1 : dims[next++]);
            return Reshaped(v[0], result.ToArray());
        };
    }

    private static int[] Dims(object? value) => value switch { Tensor t => t.Shape, IntTensor i => i.Dims, _ => throw new ArgumentException("a required input is missing") };

    private static object Reshaped(object? value, int[] dims) => value switch
    {
        Tensor t => t.Reshape(dims),
        IntTensor i => new IntTensor(i.Data, dims),
        _ => throw new ArgumentException("a required input is missing"),
    };

    private static Func<object?[], object?> FlattenAt(OnnxNode node)
    {
        long axis = node.Int("axis", 1);
        return v =>
        {
            int[] dims = Dims(v[0]);
            int a = axis == dims.Length ? dims.Length : Axis(axis, dims.Length);
            int rows = dims[..a].Aggregate(1, (p, q) => p * q);
            return Reshaped(v[0], new[] { rows, dims[a..].Aggregate(1, (p, q) => p * q) });
        };
    }

    // 0 copies the input's size at that position (unless allowzero), −1 takes what is left.
    private static Func<object?[], object?> Reshape(OnnxNode node)
    {
        bool allowZero = node.Int("allowzero", 0) != 0;
        return v =>
        {
            int[] dims = Dims(v[0]);
            long[] target = Ints(v[1]).Data;
            int[] shape = target.Select((d, i) => d == 0 && !allowZero ? dims[i] : (int)d).ToArray();
            if (shape.Contains(-1))
            {
                int known = shape.Where(d => d != -1).Aggregate(1, (p, q) => p * q);
                int total = dims.Aggregate(1, (p, q) => p * q);
                shape[Array.IndexOf(shape, -1)] = known == 0 ? 0 : total / known;
            }
            return Reshaped(v[0], shape);
        };
    }

    // Opset 15 added start and end (a slice of the shape).
    private static Func<object?[], object?> Shape(OnnxNode node, int opset)
    {
        long start = opset >= 15 ? node.Int("start", 0) : 0;
        long? end = opset >= 15 && node.Proto.Attribute.Any(a => a.Name == "end") ? node.Int("end", 0) : null;
        return v =>
        {
            int[] dims = Dims(v[0]);
            int Clamp(long i) => (int)Math.Clamp(i < 0 ? i + dims.Length : i, 0, dims.Length);
            int s = Clamp(start), e = end is long x ? Clamp(x) : dims.Length;
            return IntTensor.Vector(dims[s..Math.Max(s, e)].Select(d => (long)d).ToArray());
        };
    }

    private static Func<object?[], object?> Gather(OnnxNode node)
    {
        long axis = node.Int("axis", 0);
        return v =>
        {
            IntTensor indices = Ints(v[1]);
            int[] dims = Dims(v[0]);
            int a = Axis(axis, dims.Length);
            long[] wrapped = indices.Data.Select(i => i < 0 ? i + dims[a] : i).ToArray();
            if (wrapped.Any(i => i < 0 || i >= dims[a])) throw new ArgumentException($"Gather index out of range for axis {a} of size {dims[a]}");
            int[] resultDims = dims[..a].Concat(indices.Dims).Concat(dims[(a + 1)..]).ToArray();
            if (v[0] is IntTensor data)
            {
                if (dims.Length != 1) throw new ArgumentException("integer Gather is supported on 1-D values (shapes)");
                return new IntTensor(wrapped.Select(i => data.Data[i]).ToArray(), resultDims);
            }
            Tensor x = Float(v[0]);
            Tensor gathered = Tensor.Concat(wrapped.Select(i => x.Narrow(a, (int)i, 1)).ToList(), a);
            return gathered.Reshape(resultDims);
        };
    }

    // Before opset 10 starts/ends/axes are attributes (no steps); from 10 on inputs, with optional axes and steps.
    private static Func<object?[], object?> Slice(OnnxNode node, int opset)
    {
        long[]? startsAttribute = opset < 10 ? node.Ints("starts") : null, endsAttribute = opset < 10 ? node.Ints("ends") : null, axesAttribute = opset < 10 ? node.Ints("axes") : null;
        return v =>
        {
            long[] starts = startsAttribute ?? Ints(v[1]).Data, ends = endsAttribute ?? Ints(v[2]).Data;
            int[] dims = Dims(v[0]);
            long[] axes = (opset < 10 ? axesAttribute : v.Length > 3 && v[3] is not null ? Ints(v[3]).Data : null) ?? Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
            long[]? steps = opset >= 10 && v.Length > 4 && v[4] is not null ? Ints(v[4]).Data : null;
            if (steps is not null && steps.Any(s => s != 1)) throw new NotSupportedException("Slice with steps other than 1 is not supported");
            object result = v[0]!;
            for (int i = 0; i < axes.Length; i++)
            {
                int a = Axis(axes[i], dims.Length), size = dims[a];
                long Clamp(long p) => Math.Clamp(p < 0 ? p + size : p, 0, size);
                int s = (int)Clamp(starts[i]), e = (int)Math.Max(Clamp(ends[i]), Clamp(starts[i]));
                result = result switch
                {
                    Tensor t => t.Narrow(a, s, e - s).Contiguous(),
                    IntTensor it when it.Dims.Length == 1 => IntTensor.Vector(it.Data[s..e]),
                    _ => throw new ArgumentException("integer Slice is supported on 1-D values (shapes)"),
                };
            }
            return result;
        };
    }

    private static Func<object?[], object?> Cast(OnnxNode node)
    {
        var to = (TensorProto.Types.DataType)node.RequiredInt("to");
        return to switch
        {
            TensorProto.Types.DataType.Float or TensorProto.Types.DataType.Double => v => Float(v[0]),
            TensorProto.Types.DataType.Int64 or TensorProto.Types.DataType.Int32 => v => Ints(v[0]),
            _ => throw node.Unsupported($"Cast to {to} is not supported (float, double, int32, int64)"),
        };
    }

    private static Func<object?[], object?> ConstantOfShape(OnnxNode node)
    {
        TensorProto? value = node.Tensor("value");
        object fill = value is null ? Tensor.Zeros(new[] { 1 }) : Decode(value);
        return v =>
        {
            int[] dims = Ints(v[0]).Data.Select(d => (int)d).ToArray();
            return fill switch
            {
                IntTensor i => new IntTensor(Enumerable.Repeat(i.Data[0], dims.Aggregate(1, (p, q) => p * q)).ToArray(), dims),
                Tensor t => Tensor.Full(dims, t.ToArray()[0]),
                _ => throw new InvalidOperationException(),
            };
        };
    }

    // Before opset 11: 'pads', 'mode', 'value' attributes; from 11 on pads and constant_value are inputs (axes from 18).
    private static Func<object?[], object?> Pad(OnnxNode node, int opset)
    {
        string mode = node.String("mode", "constant");
        if (mode is not ("constant" or "reflect" or "edge")) throw node.Unsupported($"mode={mode} is not supported (constant, reflect, edge)");
        long[]? padsAttribute = opset < 11 ? node.Ints("pads") ?? throw node.Invalid("lacks the required attribute 'pads'") : null;
        float valueAttribute = opset < 11 ? node.Float("value", 0) : 0;
        return v =>
        {
            Tensor x = Float(v[0]);
            long[] pads = padsAttribute ?? Ints(v[1]).Data;
            double value = opset >= 11 && v.Length > 2 && v[2] is not null ? Float(v[2]).Item() : valueAttribute;
            long[] axes = opset >= 18 && v.Length > 3 && v[3] is not null ? Ints(v[3]).Data : Enumerable.Range(0, x.Rank).Select(i => (long)i).ToArray();
            if (pads.Length != 2 * axes.Length) throw new ArgumentException($"pads has {pads.Length} values for {axes.Length} axes");
            for (int i = 0; i < axes.Length; i++)
                x = PadAxis(x, Axis(axes[i], x.Rank), (int)pads[i], (int)pads[i + axes.Length], mode, value);
            return x;
        };
    }

    /// <summary>Pads (or, for negative amounts, crops) one axis; built from Narrow and Concat, so it is differentiable.</summary>
    internal static Tensor PadAxis(Tensor x, int axis, int before, int after, string mode, double value)
    {
        if (before < 0) { x = x.Narrow(axis, -before, x.Shape[axis] + before); before = 0; }
        if (after < 0) { x = x.Narrow(axis, 0, x.Shape[axis] + after); after = 0; }
        if (before == 0 && after == 0) return x;
        int n = x.Shape[axis];
        var parts = new List<Tensor>();
        Tensor Constant(int count)
        {
            int[] dims = x.Shape;
            dims[axis] = count;
            return Tensor.Full(dims, value, x.DType);
        }
        switch (mode)
        {
            case "constant":
                if (before > 0) parts.Add(Constant(before));
                parts.Add(x);
                if (after > 0) parts.Add(Constant(after));
                break;
            case "reflect": // the row next to the edge is mirrored, the edge itself not repeated
                if (before >= n || after >= n) throw new ArgumentException($"reflect padding of {Math.Max(before, after)} needs an axis longer than that, got {n}");
                for (int i = before; i >= 1; i--) parts.Add(x.Narrow(axis, i, 1));
                parts.Add(x);
                for (int i = n - 2; i >= n - 1 - after; i--) parts.Add(x.Narrow(axis, i, 1));
                break;
            default: // edge
                for (int i = 0; i < before; i++) parts.Add(x.Narrow(axis, 0, 1));
                parts.Add(x);
                for (int i = 0; i < after; i++) parts.Add(x.Narrow(axis, n - 1, 1));
                break;
        }
        return Tensor.Concat(parts, axis);
    }

    // ---- products, convolution, pooling ----

    // NumPy matmul semantics for the shapes CNN exports use: 2-D·2-D, batched 3-D·3-D, and N-D·2-D.
    private static Tensor MatMul(Tensor a, Tensor b)
    {
        if (b.Rank == 2 && a.Rank > 2)
        {
            int[] lead = a.Shape[..^1];
            return a.Reshape(-1, a.Shape[^1]).MatMul(b).Reshape(lead.Append(b.Shape[1]).ToArray());
        }
        if (a.Rank == b.Rank && a.Rank > 3 && a.Shape[..^2].SequenceEqual(b.Shape[..^2]))
        {
            int[] lead = a.Shape[..^2];
            Tensor product = a.Reshape(new[] { -1 }.Concat(a.Shape[^2..]).ToArray()).MatMul(b.Reshape(new[] { -1 }.Concat(b.Shape[^2..]).ToArray()));
            return product.Reshape(lead.Concat(product.Shape[^2..]).ToArray());
        }
        return a.MatMul(b);
    }

    // Y = α·A'·B' + β·C (opset 6 had a 'broadcast' attribute for C; broadcasting is always on from 7).
    private static Func<object?[], object?> Gemm(OnnxNode node)
    {
        bool transA = node.Int("transA", 0) != 0, transB = node.Int("transB", 0) != 0;
        double alpha = node.Float("alpha", 1), beta = node.Float("beta", 1);
        node.Int("broadcast", 0);
        return v =>
        {
            Tensor a = Float(v[0]), b = Float(v[1]);
            Tensor y = (transA ? a.Transpose() : a).MatMul(transB ? b.Transpose() : b);
            if (alpha != 1) y = y * alpha;
            if (v.Length > 2 && v[2] is not null) y = y + (beta == 1 ? Float(v[2]) : Float(v[2]) * beta);
            return y;
        };
    }

    private static Func<object?[], object?> Conv(OnnxNode node)
    {
        var window = Window.Read(node, convolution: true);
        long group = node.Int("group", 1);
        if (group < 1) throw node.Invalid($"group={group} must be positive");
        return v =>
        {
            Tensor x = Float(v[0]), w = Float(v[1]);
            Tensor? b = v.Length > 2 && v[2] is not null ? Float(v[2]) : null;
            if (w.Rank == 3) w = w.Unsqueeze(2);
            return window.Run(x, w.Shape[2..], 0, (input, _, stride, padding, dilation) =>
            {
                // Padding at least as wide as the input is written out first: NormSharp's im2col expects a window to
                // overlap the image (Conv1d of a length-1 input with kernel 5 and padding 2 is such a case).
                if (padding.Height >= input.Shape[2] || padding.Width >= input.Shape[3])
                {
                    input = PadAxis(PadAxis(input, 2, padding.Height, padding.Height, "constant", 0), 3, padding.Width, padding.Width, "constant", 0);
                    padding = (0, 0);
                }
                return GroupedConvolution.Forward(input, w, b, stride, padding, dilation, (int)group);
            });
        };
    }

    // Pads the padding PyTorch's pooling cannot express (asymmetric, or SAME) first: −∞ for max pooling, zeros for an
    // average that counts the padding.
    private static Func<object?[], object?> Pool(OnnxNode node, bool max)
    {
        var window = Window.Read(node, convolution: false);
        bool ceilMode = node.Int("ceil_mode", 0) != 0;
        bool countIncludePad = !max && node.Int("count_include_pad", 0) != 0;
        if (max) node.Int("storage_order", 0);
        if (!max && window.Dilated) throw node.Unsupported("dilated average pooling is not supported");
        if (!max && !countIncludePad && window.PadsAsymmetrically(2)) throw node.Unsupported("average pooling with asymmetric pads that excludes the padding is not supported");
        if (node.Proto.Output.Count > 1 && node.Proto.Output[1].Length > 0) throw node.Unsupported("the Indices output of MaxPool is not supported");
        return v => window.Run(Float(v[0]), null, max ? double.NegativeInfinity : 0, (input, kernel, stride, padding, dilation) => max
            ? Functional.MaxPool2d(input, (kernel[0], kernel[1]), stride, padding, dilation, ceilMode)
            : Functional.AvgPool2d(input, (kernel[0], kernel[1]), stride, padding, ceilMode, countIncludePad));
    }

    private static Tensor GlobalMax(Tensor x)
    {
        Tensor flat = x.Reshape(x.Shape[0], x.Shape[1], -1).Max(2, keepDim: true);
        return flat.Reshape(x.Shape[..2].Concat(Enumerable.Repeat(1, x.Rank - 2)).ToArray());
    }

    // Local response normalization (Krizhevsky et al. 2012), ONNX's form: y = x / (bias + α/size · Σ x²)^β over the
    // channels c − ⌊(size−1)/2⌋ … c + ⌈(size−1)/2⌉.
    private static Func<object?[], object?> Lrn(OnnxNode node)
    {
        long size = node.RequiredInt("size");
        double alpha = OnnxFormat.ShortestDecimal(node.Float("alpha", 1e-4f)), beta = OnnxFormat.ShortestDecimal(node.Float("beta", 0.75f)), bias = OnnxFormat.ShortestDecimal(node.Float("bias", 1f));
        if (size < 1) throw node.Invalid($"size={size} must be positive");
        return v =>
        {
            Tensor x = Float(v[0]);
            int before = (int)(size - 1) / 2, after = (int)size - 1 - before, channels = x.Shape[1];
            Tensor squares = PadAxis(x * x, 1, before, after, "constant", 0);
            Tensor sum = squares.Narrow(1, 0, channels);
            for (int k = 1; k < size; k++) sum = sum + squares.Narrow(1, k, channels);
            return x / (sum * (alpha / size) + bias).Pow(beta);
        };
    }

    // Axes: an attribute before opset 18 (ReduceSum: before 13), an optional input after; none means all axes.
    private static Func<object?[], object?> Reduce(OnnxNode node, int opset, bool mean)
    {
        bool inputAxes = opset >= (mean ? 18 : 13);
        long[]? attribute = inputAxes ? null : node.Ints("axes");
        bool keepDims = node.Int("keepdims", 1) != 0, noopWhenEmpty = node.Int("noop_with_empty_axes", 0) != 0;
        return v =>
        {
            Tensor x = Float(v[0]);
            long[]? axes = inputAxes ? v.Length > 1 && v[1] is not null ? Ints(v[1]).Data : null : attribute;
            if ((axes is null || axes.Length == 0) && noopWhenEmpty) return x;
            int[] resolved = axes is null || axes.Length == 0 ? Enumerable.Range(0, x.Rank).ToArray() : axes.Select(a => Axis(a, x.Rank)).ToArray();
            return mean ? x.Mean(resolved, keepDims) : x.Sum(resolved, keepDims);
        };
    }

    /// <summary>The window attributes of Conv and the pooling operators: kernel, strides, dilations and the pads
    /// (explicit, or computed for auto_pad SAME_UPPER/SAME_LOWER/VALID), for 2-D inputs (N, C, H, W) and 1-D inputs
    /// (N, C, L), which run as (N, C, 1, L).</summary>
    private sealed record Window(long[]? Kernel, long[]? Strides, long[]? Dilations, long[]? Pads, string AutoPad)
    {
        public static Window Read(OnnxNode node, bool convolution)
        {
            long[]? kernel = node.Ints("kernel_shape");
            if (!convolution && kernel is null) throw node.Invalid("lacks the required attribute 'kernel_shape'");
            long[]? strides = node.Ints("strides"), dilations = node.Ints("dilations"), pads = node.Ints("pads");
            int spatial = kernel?.Length ?? strides?.Length ?? dilations?.Length ?? 2;
            if (spatial is not (1 or 2)) throw node.Unsupported($"{spatial}-D windows are not supported: NormSharp imports 1-D and 2-D convolutions and pooling");
            if ((strides ?? Array.Empty<long>()).Concat(dilations ?? Array.Empty<long>()).Any(v => v <= 0)) throw node.Invalid("strides and dilations must be positive");
            if (pads is not null && pads.Any(p => p < 0)) throw node.Invalid($"pads [{string.Join(", ", pads)}] must be non-negative");
            string autoPad = node.String("auto_pad", "NOTSET");
            if (autoPad is not ("NOTSET" or "VALID" or "SAME_UPPER" or "SAME_LOWER")) throw node.Invalid($"auto_pad={autoPad} is not an ONNX value");
            return new Window(kernel, strides, dilations, autoPad == "VALID" ? null : pads, autoPad);
        }

        /// <summary>Runs <paramref name="window"/> on a 4-D view of <paramref name="x"/> with the 2-D window
        /// attributes: the kernel (from the weight for a convolution), stride, dilation, and the input padded
        /// explicitly where the padding is asymmetric, with the symmetric padding left.</summary>
        public Tensor Run(Tensor x, int[]? weightKernel, double padValue, Func<Tensor, int[], Size2, Size2, Size2, Tensor> window)
        {
            bool oneD = x.Rank == 3;
            if (!oneD && x.Rank != 4) throw new ArgumentException($"NormSharp imports 1-D and 2-D convolutions and pooling, of (N, C, L) or (N, C, H, W) inputs; got shape {Shapes.Format(x.Shape)}");
            int spatial = oneD ? 1 : 2;
            long[] Two(long[]? values, long fallback) => values is null ? new[] { fallback, fallback } : values.Length == 2 && !oneD ? values
                : values.Length == 1 && oneD ? new[] { 1L, values[0] } : throw new ArgumentException($"window attributes of {values.Length} values for a {spatial}-D input");
            int[] kernel = weightKernel ?? Two(Kernel, 1).Select(k => (int)k).ToArray();
            if (oneD && weightKernel is not null) kernel = new[] { 1, weightKernel[^1] };
            long[] strides = Two(Strides, 1), dilations = Two(Dilations, 1);
            long[] pads = Pads is null ? new long[4] : oneD ? (Pads.Length == 2 ? new long[] { 0, Pads[0], 0, Pads[1] } : throw new ArgumentException("pads need 2 values for a 1-D input")) : Pads.Length == 4 ? Pads : throw new ArgumentException("pads need 4 values for a 2-D input");
            Tensor input = oneD ? x.Unsqueeze(2) : x;
            if (AutoPad is "SAME_UPPER" or "SAME_LOWER")
            {
                pads = new long[4];
                for (int d = 0; d < 2; d++)
                {
                    long size = input.Shape[d + 2], output = (size + strides[d] - 1) / strides[d];
                    long total = Math.Max(0, (output - 1) * strides[d] + dilations[d] * (kernel[d] - 1) + 1 - size);
                    long small = total / 2;
                    (pads[d], pads[d + 2]) = AutoPad == "SAME_UPPER" ? (small, total - small) : (total - small, small);
                }
            }
            Size2 padding = ((int)pads[0], (int)pads[1]);
            if (pads[0] != pads[2] || pads[1] != pads[3])
            {
                input = PadAxis(PadAxis(input, 2, (int)pads[0], (int)pads[2], "constant", padValue), 3, (int)pads[1], (int)pads[3], "constant", padValue);
                padding = (0, 0);
            }
            Tensor y = window(input, kernel, ((int)strides[0], (int)strides[1]), padding, ((int)dilations[0], (int)dilations[1]));
            return oneD ? y.Reshape(y.Shape[0], y.Shape[1], y.Shape[3]) : y;
        }

        public bool Dilated => Dilations is not null && Dilations.Any(d => d != 1);

        public bool PadsAsymmetrically(int spatial) => Pads is not null && (AutoPad != "NOTSET" || Enumerable.Range(0, Pads.Length / 2).Any(d => Pads[d] != Pads[d + Pads.Length / 2]));
    }
}
