using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using NormSharp.Onnx.Protobuf;
using Xunit.Abstractions;

namespace NormSharp.Onnx.Tests;

/// <summary>
/// Every case of the ONNX backend suites pytorch-converted and pytorch-operator (opsets 6 to 12): imported as a graph,
/// run on input_*.pb and compared with output_*.pb (computed by PyTorch) to 1e-4 relative error, or refused, before
/// anything runs, for the reason listed in <see cref="Refused"/>. The pass count is set beside ONNX Runtime's on the
/// same cases.
/// </summary>
public class BackendSuiteTests(ITestOutputHelper output)
{
    /// <summary>The relative tolerance of the comparison (ONNX's backend tests use 1e-3 relative and 1e-7 absolute).</summary>
    private const double Tolerance = 1e-4;

    /// <summary>The cases NormSharp refuses, with the words the refusal must contain.</summary>
    private static readonly Dictionary<string, string> Refused = new()
    {
        ["pytorch-converted/test_AvgPool3d"] = "3-D windows are not supported",
        ["pytorch-converted/test_AvgPool3d_stride"] = "3-D windows are not supported",
        ["pytorch-converted/test_AvgPool3d_stride1_pad0_gpu_input"] = "3-D windows are not supported",
        ["pytorch-converted/test_Conv3d"] = "3-D windows are not supported",
        ["pytorch-converted/test_Conv3d_dilated"] = "3-D windows are not supported",
        ["pytorch-converted/test_Conv3d_dilated_strided"] = "3-D windows are not supported",
        ["pytorch-converted/test_Conv3d_groups"] = "3-D windows are not supported",
        ["pytorch-converted/test_Conv3d_no_bias"] = "3-D windows are not supported",
        ["pytorch-converted/test_Conv3d_stride"] = "3-D windows are not supported",
        ["pytorch-converted/test_Conv3d_stride_padding"] = "3-D windows are not supported",
        ["pytorch-converted/test_MaxPool3d"] = "3-D windows are not supported",
        ["pytorch-converted/test_MaxPool3d_stride"] = "3-D windows are not supported",
        ["pytorch-converted/test_MaxPool3d_stride_padding"] = "3-D windows are not supported",
        ["pytorch-converted/test_Embedding"] = "has element type Int64",
        ["pytorch-converted/test_Embedding_sparse"] = "has element type Int64",
        ["pytorch-operator/test_operator_non_float_params"] = "has element type Int64",
        ["pytorch-operator/test_operator_pow"] = "only a constant scalar exponent is supported",
        ["pytorch-operator/test_operator_repeat"] = "node #0 (Tile) at opset 9",
        ["pytorch-operator/test_operator_repeat_dim_overflow"] = "node #1 (Tile) at opset 9",
    };

    public static TheoryData<string> Cases() => new(BackendCases.All());

    [Theory]
    [MemberData(nameof(Cases))]
    public void Case_matches_the_PyTorch_output_or_is_refused_for_its_stated_reason(string id)
    {
        if (Refused.TryGetValue(id, out string? reason))
        {
            var refusal = Assert.Throws<NotSupportedException>(() => OnnxImporter.ImportGraph(BackendCases.Model(id), id));
            Assert.Contains(reason, refusal.Message);
            return;
        }
        double error = NormSharpError(id);
        Assert.True(error <= Tolerance, $"{id}: largest relative error {error:g3} > {Tolerance}");
    }

    [Fact]
    public void Pass_count_is_reported_beside_OnnxRuntime_on_the_same_cases()
    {
        string[] cases = BackendCases.All().ToArray();
        var lines = new List<string>();
        var passes = new Dictionary<string, (int NormSharp, int OnnxRuntime, int Cases)>();
        foreach (string id in cases)
        {
            bool ours = !Refused.ContainsKey(id) && NormSharpError(id) <= Tolerance;
            string ort = OnnxRuntimeResult(id);
            string suite = id.Split('/')[0];
            var (n, o, c) = passes.GetValueOrDefault(suite);
            passes[suite] = (n + (ours ? 1 : 0), o + (ort == "pass" ? 1 : 0), c + 1);
            lines.Add($"{id}: NormSharp {(ours ? "pass" : "refused: " + Refused[id])}; ONNX Runtime {ort}");
        }
        foreach (string line in lines) output.WriteLine(line);
        foreach (var (suite, (n, o, c)) in passes) output.WriteLine($"{suite}: NormSharp passes {n} of {c}; ONNX Runtime 1.31.1 passes {o}.");
        int normSharp = passes.Values.Sum(p => p.NormSharp), onnxRuntime = passes.Values.Sum(p => p.OnnxRuntime);
        Assert.Equal(cases.Length - Refused.Count, normSharp);
        Assert.True(normSharp >= onnxRuntime, $"NormSharp passes {normSharp}, ONNX Runtime {onnxRuntime}");
    }

    /// <summary>The largest relative error of NormSharp's outputs against the expected ones.</summary>
    private static double NormSharpError(string id)
    {
        GraphModule graph = OnnxImporter.ImportGraph(BackendCases.Model(id), id);
        var (inputs, outputs) = BackendCases.Data(id);
        Tensor[] actual;
        using (Tensor.NoGrad())
            actual = graph.Run(inputs.Select(t => Tensor.FromArray(t.ToFloats(), t.Dims.Select(d => (int)d).ToArray())).ToArray());
        Assert.Equal(outputs.Length, actual.Length);
        return outputs.Select((o, i) => Error(o.ToFloats(), actual[i].ToArray(), o.Dims.Select(d => (int)d), actual[i].Shape)).Max();
    }

    /// <summary>"pass", "mismatch" or the reason ONNX Runtime gave for not running the case.</summary>
    private static string OnnxRuntimeResult(string id)
    {
        try
        {
            using var options = new SessionOptions { LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
            using var session = new InferenceSession(BackendCases.Model(id), options);
            var (inputs, outputs) = BackendCases.Data(id);
            var names = session.InputMetadata.Keys.ToArray();
            var values = inputs.Select((t, i) => t.ElementType switch
            {
                TensorProto.Types.DataType.Double => NamedOnnxValue.CreateFromTensor(names[i], new DenseTensor<double>(t.ToFloats().Select(v => (double)v).ToArray(), t.Dims.Select(d => (int)d).ToArray())),
                TensorProto.Types.DataType.Int64 => NamedOnnxValue.CreateFromTensor(names[i], new DenseTensor<long>(t.ToInt64s(), t.Dims.Select(d => (int)d).ToArray())),
                _ => NamedOnnxValue.CreateFromTensor(names[i], new DenseTensor<float>(t.ToFloats(), t.Dims.Select(d => (int)d).ToArray())),
            }).ToList();
            using var results = session.Run(values);
            var actual = results.Select(r => r.Value is DenseTensor<double> d ? d.ToArray().Select(v => (float)v).ToArray() : r.AsTensor<float>().ToArray()).ToArray();
            double error = outputs.Select((o, i) => Error(o.ToFloats(), actual[i], Array.Empty<int>(), Array.Empty<int>())).Max();
            return error <= Tolerance ? "pass" : $"mismatch {error:g3}";
        }
        catch (OnnxRuntimeException e) { return "refused: " + e.Message.Split('\n')[0]; }
    }

    /// <summary>Largest |actual − expected| / max(|expected|, 1), where equal values (infinities included) and two
    /// NaNs agree; infinite on a shape or length mismatch.</summary>
    private static double Error(float[] expected, float[] actual, IEnumerable<int> expectedShape, int[] actualShape)
    {
        if (expected.Length != actual.Length || (actualShape.Length > 0 && !expectedShape.SequenceEqual(actualShape))) return double.PositiveInfinity;
        double worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            if (expected[i] == actual[i] || (float.IsNaN(expected[i]) && float.IsNaN(actual[i]))) continue;
            worst = Math.Max(worst, float.IsNaN(actual[i]) ? double.PositiveInfinity : Math.Abs((double)actual[i] - expected[i]) / Math.Max(Math.Abs((double)expected[i]), 1));
        }
        return worst;
    }
}
