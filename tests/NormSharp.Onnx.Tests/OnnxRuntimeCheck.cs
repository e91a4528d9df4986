using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using NormSharp.Nn;

namespace NormSharp.Onnx.Tests;

/// <summary>
/// Runs a model in ONNX Runtime and the same network in NormSharp (evaluation mode) on the same float32 input. The
/// metric is the largest element-wise |NormSharp − ORT| / max(|ORT|, 1): the relative error, with an absolute floor
/// of 1 for outputs near zero (the metric of NormSharp's normalization conformance tests).
/// </summary>
public static class OnnxRuntimeCheck
{
    /// <summary>The tolerance the exported models must meet.</summary>
    public const double Tolerance = 1e-5;

    /// <summary>The model's single output for <paramref name="input"/>, computed by ONNX Runtime.</summary>
    public static float[] Run(byte[] model, Tensor input)
    {
        using var session = new InferenceSession(model);
        string name = session.InputMetadata.Keys.Single();
        var values = new[] { NamedOnnxValue.CreateFromTensor(name, new DenseTensor<float>(input.ToArray(), input.Shape)) };
        using var results = session.Run(values);
        return results.Single().AsTensor<float>().ToArray();
    }

    /// <summary>The network's evaluation-mode output, as float32 values.</summary>
    public static float[] Forward(Module network, Tensor input)
    {
        network.Eval();
        using (Tensor.NoGrad())
        using (TensorScope.Begin())
            return network.Forward(input).ToArray();
    }

    /// <summary>Largest |actual − expected| / max(|expected|, 1); infinite on a NaN or a length mismatch.</summary>
    public static double MaxRelativeError(float[] expected, float[] actual)
    {
        if (expected.Length != actual.Length) return double.PositiveInfinity;
        double worst = 0;
        for (int i = 0; i < expected.Length; i++)
            worst = float.IsNaN(expected[i]) || float.IsNaN(actual[i]) ? double.PositiveInfinity
                : Math.Max(worst, Math.Abs((double)actual[i] - expected[i]) / Math.Max(Math.Abs((double)expected[i]), 1));
        return worst;
    }
}
