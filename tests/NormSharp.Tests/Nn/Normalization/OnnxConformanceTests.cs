using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using NormSharp.Nn;
using NormSharp.Tests.Testing;
using Xunit.Abstractions;
using static NormSharp.Tests.Testing.NormalizationReference;

namespace NormSharp.Tests.Nn.Normalization;

/// <summary>
/// Conformance against an independent engine: ONNX Runtime runs single-node models (BatchNormalization in its
/// inference form, LayerNormalization, InstanceNormalization, GroupNormalization) on the same float32 inputs as
/// NormSharp, over random shapes and hostile cases. Metric: the largest element-wise |ours − ort| / max(|ort|, 1),
/// i.e. relative error with an absolute floor of 1 for outputs near zero; it must be ≤ 1e-5. Both engines are also
/// measured against the operator written out in float64 on the same inputs: NormSharp must be within 1e-5 of it
/// everywhere; where ONNX Runtime is not (means 1e4 times the spread: it works in float32 and cancels), NormSharp
/// must be the closer.
/// </summary>
public class OnnxConformanceTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-5;

    /// <summary>One comparison: the operator, a description, and the input generator's parameters.</summary>
    public sealed record Case(string Op, string Name, int[] Shape, double Mean, double Std, double Eps, int Groups = 1, bool Constant = false)
    {
        public override string ToString() => $"{Op} {Name} {ShapeUtil.Format(Shape)} eps={Eps}";
    }

    public static TheoryData<Case> Cases()
    {
        var data = new TheoryData<Case>();
        var random = new RandomGenerator(2024);
        foreach (string op in new[] { "BatchNormalization", "LayerNormalization", "InstanceNormalization", "GroupNormalization" })
        {
            for (int k = 0; k < 6; k++)
            {
                int n = 1 + random.NextInt(4), groups = 1 + random.NextInt(3), c = groups * (1 + random.NextInt(3));
                int[] spatial = Enumerable.Range(0, random.NextInt(3)).Select(_ => 1 + random.NextInt(7)).ToArray();
                if (op == "InstanceNormalization" && spatial.Aggregate(1, (a, b) => a * b) < 2) spatial = new[] { 2 + random.NextInt(5) };
                int[] shape = op == "InstanceNormalization" || op == "GroupNormalization" ? new[] { n, c }.Concat(spatial.Length == 0 ? new[] { 3 } : spatial).ToArray()
                    : new[] { n, c }.Concat(spatial).ToArray();
                data.Add(new Case(op, $"random {k}", shape, random.NextDouble() * 4 - 2, 0.5 + random.NextDouble() * 3, 1e-5, groups));
            }
            bool spatialStatistics = op == "InstanceNormalization";
            int[] tiny = spatialStatistics ? new[] { 2, 1, 2, 1 } : new[] { 2, 1, 1, 1 };
            data.Add(new Case(op, "N=2 C=1 H=W=1", tiny, 0.3, 1.7, 1e-5));
            data.Add(new Case(op, "mean 1e4 x std", new[] { 3, 4, 5, 6 }, 1e4, 1, 1e-5, 2));
            data.Add(new Case(op, "constant channels", new[] { 2, 4, 3, 3 }, 7.25, 0, 1e-5, 2, Constant: true));
            data.Add(new Case(op, "eps 1e-12", new[] { 2, 3, 4, 4 }, -1, 2, 1e-12, 3));
            data.Add(new Case(op, "eps 1", new[] { 2, 3, 4, 4 }, 0.5, 0.2, 1, 3));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void NormSharp_agrees_with_ONNX_Runtime(Case test)
    {
        int[] shape = test.Shape;
        int c = shape[1], seed = test.ToString().Aggregate(17, (h, ch) => (h * 31 + ch) % 100_003); // stable across runs
        Tensor x = test.Constant ? Constant(shape, test.Mean) : Tensor.Normal(shape, test.Mean, test.Std, generator: new RandomGenerator((ulong)seed));
        int[] affineShape = test.Op == "LayerNormalization" ? shape[1..] : new[] { c };
        Tensor gamma = Tensor.Normal(affineShape, 1, 0.5, generator: new RandomGenerator((ulong)seed + 1));
        Tensor beta = Tensor.Normal(affineShape, 0, 1, generator: new RandomGenerator((ulong)seed + 2));
        Tensor mean = Tensor.Normal(new[] { c }, test.Mean, test.Std + 0.1, generator: new RandomGenerator((ulong)seed + 3));
        Tensor variance = Tensor.Uniform(new[] { c }, 0.1 * (test.Std * test.Std + 0.01), 2 * (test.Std * test.Std + 0.01), generator: new RandomGenerator((ulong)seed + 4));

        var (ours, ort) = test.Op switch
        {
            "BatchNormalization" => (Functional.BatchNorm(x, mean, variance, gamma, beta, training: false, eps: test.Eps),
                Run(new OnnxModelWriter("BatchNormalization").Input("X", shape).Input("scale", c).Input("B", c).Input("mean", c).Input("var", c)
                    .Attribute("epsilon", (float)test.Eps).Build(opset: 15), x, gamma, beta, mean, variance)),
            "LayerNormalization" => (Functional.LayerNorm(x, affineShape, gamma, beta, test.Eps),
                Run(new OnnxModelWriter("LayerNormalization").Input("X", shape).Input("Scale", affineShape).Input("B", affineShape)
                    .Attribute("axis", 1L).Attribute("epsilon", (float)test.Eps).Build(opset: 17), x, gamma, beta)),
            "InstanceNormalization" => (Functional.InstanceNorm(x, weight: gamma, bias: beta, eps: test.Eps),
                Run(new OnnxModelWriter("InstanceNormalization").Input("input", shape).Input("scale", c).Input("B", c)
                    .Attribute("epsilon", (float)test.Eps).Build(opset: 15), x, gamma, beta)),
            _ => (Functional.GroupNorm(x, test.Groups, gamma, beta, test.Eps),
                Run(new OnnxModelWriter("GroupNormalization").Input("X", shape).Input("scale", c).Input("bias", c)
                    .Attribute("epsilon", (float)test.Eps).Attribute("num_groups", (long)test.Groups).Build(opset: 21), x, gamma, beta)),
        };
        double[] exact = Exact(test.Op, x.ToDoubleArray(), shape, test.Groups, gamma.ToDoubleArray(), beta.ToDoubleArray(), mean.ToDoubleArray(), variance.ToDoubleArray(), test.Eps);
        double error = MaxRelativeError(ort, ours.ToDoubleArray()), oursExact = MaxRelativeError(exact, ours.ToDoubleArray()), ortExact = MaxRelativeError(exact, ort);
        output.WriteLine($"{test}: ours vs ORT {error:E2}; vs the float64 formula: ours {oursExact:E2}, ORT {ortExact:E2}");
        Assert.True(oursExact <= Tolerance, $"{test}: NormSharp is {oursExact:E2} from the float64 formula");
        if (ortExact <= Tolerance) Assert.True(error <= Tolerance, $"{test}: NormSharp and ONNX Runtime differ by {error:E2}");
        // Otherwise ONNX Runtime itself is off the exact value (float32 cancellation when the mean is far larger than
        // the spread); NormSharp, within 1e-5 of it as asserted above, must then be the closer of the two.
        else Assert.True(oursExact < ortExact, $"{test}: ONNX Runtime {ortExact:E2} and NormSharp {oursExact:E2} from the float64 formula");
        if (test.Constant && test.Op != "BatchNormalization")
        {
            double[] y = ours.ToDoubleArray(), b = beta.ToDoubleArray();
            int inner = shape.Skip(2).Aggregate(1, (p, q) => p * q);
            for (int i = 0; i < y.Length; i++) Assert.Equal(b[test.Op == "LayerNormalization" ? i % b.Length : i / inner % c], y[i]);
        }
    }

    /// <summary>The operator evaluated naively in float64 on the same float32 inputs.</summary>
    private static double[] Exact(string op, double[] x, int[] shape, int groups, double[] gamma, double[] beta, double[] mean, double[] variance, double eps)
    {
        int c = shape[1], inner = shape.Skip(2).Aggregate(1, (p, q) => p * q);
        return op switch
        {
            "BatchNormalization" => x.Select((v, i) => (v - mean[i / inner % c]) / Math.Sqrt(variance[i / inner % c] + eps) * gamma[i / inner % c] + beta[i / inner % c]).ToArray(),
            "LayerNormalization" => Normalize(x, RowGroup(c * inner), i => i % (c * inner), gamma, beta, eps),
            "InstanceNormalization" => Normalize(x, i => i / inner, i => i / inner % c, gamma, beta, eps),
            _ => Normalize(x, GroupNormGroup(c, inner, groups), i => i / inner % c, gamma, beta, eps),
        };
    }

    [Fact]
    public void BatchNormalization_training_mode_matches_the_hand_formulas_on_hostile_inputs()
    {
        foreach (var (shape, mean, std, eps) in new[] { (new[] { 2, 1, 1, 1 }, 0.5, 1.0, 1e-5), (new[] { 3, 4, 5, 6 }, 1e4, 1.0, 1e-5), (new[] { 4, 3, 2, 2 }, -2.0, 3.0, 1e-12), (new[] { 4, 3, 2, 2 }, 1.0, 0.3, 1.0) })
        {
            var (x, values) = RandomFloat(77, mean, std, shape);
            double[] expected = Normalize(values, BatchNormGroup(shape[1], shape[2] * shape[3]), i => 0, null, null, eps);
            double error = MaxRelativeError(expected, Functional.BatchNorm(x, null, null, training: true, eps: eps).ToDoubleArray());
            output.WriteLine($"BatchNorm training {ShapeUtil.Format(shape)} mean {mean} eps {eps}: {error:E2} from the float64 formula");
            Assert.True(error <= Tolerance, $"{ShapeUtil.Format(shape)}: {error:E2}");
        }
    }

    [Fact]
    public void OnnxRuntime_native_library_loads()
    {
        Assert.Contains("CPUExecutionProvider", OrtEnv.Instance().GetAvailableProviders());
    }

    private static double[] Run(byte[] model, params Tensor[] inputs)
    {
        using var session = new InferenceSession(model);
        var values = session.InputMetadata.Keys.Zip(inputs, (name, t) => NamedOnnxValue.CreateFromTensor(name, new DenseTensor<float>(t.ToArray(), t.Shape))).ToList();
        using var results = session.Run(values);
        return results.First().AsTensor<float>().ToArray().Select(v => (double)v).ToArray();
    }

    private static Tensor Constant(int[] shape, double value)
    {
        var data = new float[shape.Aggregate(1, (a, b) => a * b)];
        Array.Fill(data, (float)value);
        return Tensor.FromArray(data, shape);
    }
}
