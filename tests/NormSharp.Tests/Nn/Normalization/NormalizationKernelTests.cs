using NormSharp.Nn;
using NormSharp.Tests.Testing;
using static NormSharp.Tests.Testing.NormalizationReference;

namespace NormSharp.Tests.Nn.Normalization;

/// <summary>The shared kernels through the functional forms: exact statistics on hostile data, every layout path
/// (channel runs, strided columns, rows with per-element affine) against the float64 reference, and float32
/// gradients against the float64 ones (which the gradient checks prove).</summary>
public class NormalizationKernelTests
{
    [Theory]
    [InlineData(4, 3, 50)]   // group path: runs of 50 contiguous values
    [InlineData(64, 37, 1)]  // column path: each channel a strided column
    public void BatchNorm_is_exact_when_the_mean_is_1e4_times_the_spread(int n, int c, int s)
    {
        var (x, values) = RandomFloat(1, mean: 1e4, std: 1, n, c, s);
        Tensor y = Functional.BatchNorm(x, null, null, training: true);
        double[] expected = Normalize(values, BatchNormGroup(c, s), i => 0, null, null, 1e-5);
        Assert.True(MaxRelativeError(expected, y.ToDoubleArray()) < 2e-6, $"error {MaxRelativeError(expected, y.ToDoubleArray()):E2}");
    }

    [Fact]
    public void BatchNorm_statistics_are_exact_for_large_offsets_in_the_running_update()
    {
        var (x, values) = RandomFloat(2, mean: 1e4, std: 1e-2, 8, 2, 100);
        Tensor runningMean = Tensor.Zeros(new[] { 2 }), runningVar = Tensor.Ones(new[] { 2 });
        Functional.BatchNorm(x, runningMean, runningVar, training: true, momentum: 1.0);
        var (mean, variance) = Statistics(values, BatchNormGroup(2, 100));
        double n = 8 * 100;
        for (int c = 0; c < 2; c++)
        {
            Assert.Equal(mean[c], runningMean.ToDoubleArray()[c], 1e-3);
            Assert.Equal(1, runningVar.ToDoubleArray()[c] / (variance[c] * n / (n - 1)), 1e-5);
        }
    }

    [Theory]
    [InlineData(2, 3, 16)]
    [InlineData(300, 5, 1)]
    public void Constant_channel_gives_exactly_beta(int n, int c, int s)
    {
        Tensor x = Tensor.Full(new[] { n, c, s }, 12345.678);
        Tensor beta = Tensor.FromArray(Enumerable.Range(0, c).Select(i => (float)i - 1.5f).ToArray());
        Tensor gamma = Tensor.Full(new[] { c }, 3.0);
        float[] y = Functional.BatchNorm(x, null, null, gamma, beta, training: true).ToArray();
        for (int i = 0; i < y.Length; i++) Assert.Equal(beta.ToArray()[i / s % c], y[i]);
    }

    [Fact]
    public void GroupNorm_matches_the_reference_with_per_channel_affine()
    {
        int n = 3, c = 6, s = 20, g = 2;
        var (x, values) = RandomFloat(3, mean: 5, std: 2, n, c, s);
        double[] gamma = Enumerable.Range(0, c).Select(i => 0.5 + i).ToArray(), beta = Enumerable.Range(0, c).Select(i => -1.0 + 0.25 * i).ToArray();
        Tensor y = Functional.GroupNorm(x, g, Tensor.FromArray(gamma.Select(v => (float)v).ToArray()), Tensor.FromArray(beta.Select(v => (float)v).ToArray()));
        double[] expected = Normalize(values, GroupNormGroup(c, s, g), i => i / s % c, gamma, beta, 1e-5);
        Assert.True(MaxRelativeError(expected, y.ToDoubleArray()) < 2e-6);
    }

    [Fact]
    public void LayerNorm_and_RmsNorm_match_the_reference_with_per_element_affine()
    {
        int rows = 7, d = 45;
        var (x, values) = RandomFloat(4, mean: 3, std: 2, rows, d);
        double[] gamma = Enumerable.Range(0, d).Select(i => 1 + 0.01 * i).ToArray(), beta = Enumerable.Range(0, d).Select(i => 0.1 * i).ToArray();
        Tensor w = Tensor.FromArray(gamma.Select(v => (float)v).ToArray()), b = Tensor.FromArray(beta.Select(v => (float)v).ToArray());
        double[] ln = Normalize(values, RowGroup(d), i => i % d, gamma, beta, 1e-5);
        Assert.True(MaxRelativeError(ln, Functional.LayerNorm(x, new[] { d }, w, b).ToDoubleArray()) < 2e-6);
        double eps = Functional.MachineEpsilon(DType.Float32);
        double[] rms = Normalize(values, RowGroup(d), i => i % d, gamma, null, eps, centered: false);
        Assert.True(MaxRelativeError(rms, Functional.RmsNorm(x, new[] { d }, w).ToDoubleArray()) < 2e-6);
    }

    [Fact]
    public void LayerNorm_is_exact_when_the_first_values_of_a_row_lie_far_from_its_mean()
    {
        // Rows near 1e4 whose first 16 values sit 50 below the rest: the statistics' pilot (the first values' mean)
        // lies about 15 standard deviations from the mean, which sends them through their second pass, about the mean.
        int rows = 3, d = 4096;
        double[] values = Enumerable.Range(0, rows * d).Select(i => (double)(float)(i % d < 16 ? 1e4 - 50 : 1e4 + (i * 37 % 101) / 50.0 - 1 + i / d)).ToArray();
        Tensor x = Tensor.FromArray(values.Select(v => (float)v).ToArray()).Reshape(rows, d);
        double[] expected = Normalize(values, RowGroup(d), i => i % d, null, null, 1e-5);
        Assert.True(MaxRelativeError(expected, Functional.LayerNorm(x, new[] { d }).ToDoubleArray()) < 2e-6);
    }

    public static TheoryData<string> Operations => new() { "batch", "columns", "group", "instance", "layer", "layer-bias-only", "rms" };

    [Theory]
    [MemberData(nameof(Operations))]
    public void Float32_gradients_agree_with_the_float64_path(string operation)
    {
        double worst = 0;
        double[][] f32 = Gradients(operation, DType.Float32), f64 = Gradients(operation, DType.Float64);
        for (int k = 0; k < f64.Length; k++) worst = Math.Max(worst, MaxRelativeError(f64[k], f32[k]));
        Assert.True(worst < 1e-5, $"{operation}: {worst:E2}");
    }

    /// <summary>Runs the functional form named by <paramref name="operation"/> with per-channel (or per-element) w and b.</summary>
    internal static Tensor Apply(string operation, Tensor x, Tensor w, Tensor b) => operation switch
    {
        "batch" or "columns" => Functional.BatchNorm(x, null, null, w, b, training: true),
        "group" => Functional.GroupNorm(x, 3, w, b),
        "instance" => Functional.InstanceNorm(x, weight: w, bias: b),
        "layer" => Functional.LayerNorm(x, new[] { x.Shape[^1] }, w, b),
        "layer-bias-only" => Functional.LayerNorm(x, new[] { x.Shape[^1] }, null, b),
        _ => Functional.RmsNorm(x, new[] { x.Shape[^1] }, w),
    };

    /// <summary>dx, dγ, dβ of Σ f(x)·r for a fixed random r.</summary>
    private static double[][] Gradients(string operation, DType dtype)
    {
        int[] shape = operation switch { "columns" => new[] { 40, 24 }, "layer" or "layer-bias-only" or "rms" => new[] { 3, 5, 40 }, _ => new[] { 4, 6, 30 } };
        int features = operation is "layer" or "layer-bias-only" or "rms" ? shape[^1] : shape[1];
        Tensor x = GradCheck.Random(5, shape).To(dtype).Detach();
        Tensor w = (GradCheck.Random(6, features) * 0.5 + 1).To(dtype).Detach(), b = GradCheck.Random(7, features).To(dtype).Detach();
        foreach (Tensor t in new[] { x, w, b }) t.RequiresGrad = true;
        Tensor y = Apply(operation, x, w, b);
        (y * GradCheck.Random(8, shape).To(dtype)).Sum().Backward();
        return new[] { x.Grad!.ToDoubleArray(), w.Grad?.ToDoubleArray() ?? Array.Empty<double>(), b.Grad?.ToDoubleArray() ?? Array.Empty<double>() };
    }
}

/// <summary>Changes the global thread count, so it runs alone.</summary>
[Collection("Parallelism")]
public class NormalizationDeterminismTests
{
    public static TheoryData<string> Operations => NormalizationKernelTests.Operations;

    [Theory]
    [MemberData(nameof(Operations))]
    public void Results_are_bit_identical_for_one_and_two_threads(string operation)
    {
        int saved = Parallelism.ThreadCount;
        try
        {
            Parallelism.ThreadCount = 1;
            float[][] one = Run(operation);
            Parallelism.ThreadCount = 2;
            float[][] two = Run(operation);
            for (int k = 0; k < one.Length; k++) Assert.Equal(one[k], two[k]);
        }
        finally { Parallelism.ThreadCount = saved; }
    }

    /// <summary>Output and gradients on data large enough that the kernels do split the work.</summary>
    private static float[][] Run(string operation)
    {
        int[] shape = operation switch { "columns" => new[] { 512, 640 }, "layer" or "layer-bias-only" or "rms" => new[] { 300, 768 }, _ => new[] { 16, 6, 4096 } };
        int features = operation is "layer" or "layer-bias-only" or "rms" ? shape[^1] : shape[1];
        Tensor x = Tensor.Normal(shape, 3, 2, generator: new RandomGenerator(9));
        Tensor w = Tensor.Normal(new[] { features }, 1, 0.1, generator: new RandomGenerator(10)), b = Tensor.Normal(new[] { features }, 0, 1, generator: new RandomGenerator(11));
        foreach (Tensor t in new[] { x, w, b }) t.RequiresGrad = true;
        Tensor y = NormalizationKernelTests.Apply(operation, x, w, b);
        y.Backward(Tensor.Normal(shape, generator: new RandomGenerator(12)));
        return new[] { y.ToArray(), x.Grad!.ToArray(), w.Grad?.ToArray() ?? Array.Empty<float>(), b.Grad?.ToArray() ?? Array.Empty<float>() };
    }
}
