namespace NormSharp.Tests.Testing;

/// <summary>Value assertions for tensors.</summary>
public static class TensorAssert
{
    /// <summary>Asserts element-wise |actual − expected| ≤ atol + rtol·|expected|.</summary>
    public static void Close(double[] expected, double[] actual, double rtol = 1e-6, double atol = 1e-6)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(actual[i] - expected[i]) <= atol + rtol * Math.Abs(expected[i]),
                $"element {i}: expected {expected[i]:G9}, got {actual[i]:G9}");
    }

    /// <summary>Asserts the tensor's values, as float64, are close to <paramref name="expected"/>.</summary>
    public static void Close(double[] expected, Tensor actual, double rtol = 1e-6, double atol = 1e-6) =>
        Close(expected, actual.ToDoubleArray(), rtol, atol);

    /// <summary>Asserts the tensor's values are close to <paramref name="expected"/>.</summary>
    public static void Close(float[] expected, Tensor actual, double rtol = 1e-5, double atol = 1e-6) =>
        Close(expected.Select(v => (double)v).ToArray(), actual.ToDoubleArray(), rtol, atol);
}
