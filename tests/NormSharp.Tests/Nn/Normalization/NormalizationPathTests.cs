using NormSharp.Nn;
using NormSharp.Tests.Testing;
using static NormSharp.Tests.Testing.NormalizationReference;

namespace NormSharp.Tests.Nn.Normalization;

/// <summary>The kernels' vector paths with the shapes that exercise their edges: partial last vectors (lengths and
/// channel counts that are not multiples of 16), BatchNorm runs split into several pieces, outputs large enough to
/// bypass the cache, against the float64 reference and finite differences.</summary>
public class NormalizationPathTests
{
    [Theory]
    [InlineData(2, 3, 5000)] // runs split into three pieces of 1667
    [InlineData(3, 2, 4096)] // two pieces of 2048
    [InlineData(4, 3, 25)]   // one piece with a partial last vector
    public void BatchNorm_training_matches_the_reference_when_runs_are_split_into_pieces(int n, int c, int s)
    {
        var (x, values) = RandomFloat(11, mean: 1e4, std: 1, n, c, s);
        double[] gamma = Enumerable.Range(0, c).Select(i => 0.5 + i).ToArray(), beta = Enumerable.Range(0, c).Select(i => i - 1.0).ToArray();
        Tensor runningMean = Tensor.Zeros(new[] { c }), runningVar = Tensor.Ones(new[] { c });
        Tensor y = Functional.BatchNorm(x, runningMean, runningVar, ToFloat(gamma), ToFloat(beta), training: true, momentum: 1.0);
        Assert.True(MaxRelativeError(Normalize(values, BatchNormGroup(c, s), i => i / s % c, gamma, beta, 1e-5), y.ToDoubleArray()) < 2e-6);
        var (mean, variance) = Statistics(values, BatchNormGroup(c, s));
        for (int k = 0; k < c; k++)
        {
            Assert.Equal(mean[k], runningMean.ToDoubleArray()[k], 1e-2);
            Assert.Equal(1, runningVar.ToDoubleArray()[k] / (variance[k] * n * s / (n * s - 1)), 1e-5);
        }
    }

    [Fact]
    public void BatchNorm_of_a_constant_channel_split_into_pieces_gives_exactly_beta()
    {
        Tensor x = Tensor.Full(new[] { 2, 2, 4100 }, 12345.678);
        float[] y = Functional.BatchNorm(x, null, null, Tensor.Full(new[] { 2 }, 3.0), Tensor.FromArray(new[] { -1.5f, 0.25f }), training: true).ToArray();
        for (int i = 0; i < y.Length; i++) Assert.Equal(i / 4100 % 2 == 0 ? -1.5f : 0.25f, y[i]);
    }

    [Fact]
    public void BatchNorm_larger_than_the_cache_gives_the_exact_statistics_and_gradients()
    {
        // 36 MB, past the cache: the batch path's reductions read with vectors of at most 256 bits. Channel c holds
        // 1000·c ± (c + 1) alternately (mean 1000·c, standard deviation c + 1, so x̂ = ±1), and dy is 1 at every fourth
        // element: mean(dy) = mean(dy·x̂) = 1/4, so dx = (γ/σ)·(dy − 1/4 − x̂/4) is (γ/σ)·(1/2, 0, −1/2, 0) in turn.
        const int n = 2, c = 3, s = 1_500_000;
        float[] values = new float[n * c * s], dyValues = new float[n * c * s];
        for (int i = 0; i < values.Length; i++)
        {
            int channel = i / s % c;
            values[i] = 1000 * channel + (i % 2 == 0 ? 1 : -1) * (channel + 1);
            dyValues[i] = i % 4 == 0 ? 1 : 0;
        }
        Tensor x = Tensor.FromArray(values).Reshape(n, c, s), gamma = Tensor.FromArray(new[] { 0.5f, 1f, 2f }), beta = Tensor.FromArray(new[] { -1f, 0f, 3f });
        foreach (Tensor t in new[] { x, gamma, beta }) t.RequiresGrad = true;
        Tensor y = Functional.BatchNorm(x, null, null, gamma, beta, training: true, eps: 0);
        y.Backward(Tensor.FromArray(dyValues).Reshape(n, c, s));
        float[] output = y.ToArray(), dx = x.Grad!.ToArray();
        double[] g = gamma.ToDoubleArray(), b = beta.ToDoubleArray(), expectedDx = { 0.5, 0, -0.5, 0 };
        double outputError = 0, dxError = 0;
        for (int i = 0; i < values.Length; i++)
        {
            int channel = i / s % c;
            outputError = Math.Max(outputError, Math.Abs(g[channel] * (i % 2 == 0 ? 1 : -1) + b[channel] - output[i]));
            dxError = Math.Max(dxError, Math.Abs(g[channel] / (channel + 1) * expectedDx[i % 4] - dx[i]));
        }
        Assert.True(outputError < 1e-5, $"y: {outputError:E2}");
        Assert.True(dxError < 1e-6, $"dx: {dxError:E2}");
        Assert.Equal(new[] { n * s / 4.0, n * s / 4.0, n * s / 4.0 }, gamma.Grad!.ToDoubleArray());
        Assert.Equal(new[] { n * s / 4.0, n * s / 4.0, n * s / 4.0 }, beta.Grad!.ToDoubleArray());
    }

    [Theory]
    [InlineData(50, 37)]  // one strip, a partial last vector
    [InlineData(9, 300)]  // two strips
    [InlineData(64, 5)]   // narrower than a vector
    public void BatchNorm1d_matches_the_reference_for_channel_counts_that_are_not_multiples_of_16(int n, int c)
    {
        var (x, values) = RandomFloat(12, mean: 1e4, std: 1, n, c);
        double[] gamma = Enumerable.Range(0, c).Select(i => 1 + 0.01 * i).ToArray(), beta = Enumerable.Range(0, c).Select(i => 0.1 * i).ToArray();
        Tensor runningMean = Tensor.Zeros(new[] { c }), runningVar = Tensor.Ones(new[] { c });
        Tensor y = Functional.BatchNorm(x, runningMean, runningVar, ToFloat(gamma), ToFloat(beta), training: true, momentum: 1.0);
        Assert.True(MaxRelativeError(Normalize(values, BatchNormGroup(c, 1), i => i % c, gamma, beta, 1e-5), y.ToDoubleArray()) < 2e-6);
        // Evaluation with the statistics just stored: the unbiased running variance instead of the biased one.
        Tensor eval = Functional.BatchNorm(x, runningMean, runningVar, ToFloat(gamma), ToFloat(beta), training: false);
        var (mean, variance) = Statistics(values, BatchNormGroup(c, 1));
        double[] expected = values.Select((v, i) => (v - mean[i % c]) / Math.Sqrt(variance[i % c] * n / (n - 1) + 1e-5) * gamma[i % c] + beta[i % c]).ToArray();
        Assert.True(MaxRelativeError(expected, eval.ToDoubleArray()) < 2e-3, $"{MaxRelativeError(expected, eval.ToDoubleArray()):E2}");
    }

    [Theory]
    [InlineData(5, 7)]    // rows shorter than a vector
    [InlineData(4, 19)]   // a partial last vector
    [InlineData(3, 130)]
    public void LayerNorm_and_RmsNorm_match_the_reference_for_row_lengths_that_are_not_multiples_of_16(int rows, int d)
    {
        var (x, values) = RandomFloat(13, mean: 3, std: 2, rows, d);
        double[] gamma = Enumerable.Range(0, d).Select(i => 1 + 0.01 * i).ToArray(), beta = Enumerable.Range(0, d).Select(i => 0.1 * i).ToArray();
        Assert.True(MaxRelativeError(Normalize(values, RowGroup(d), i => i % d, gamma, beta, 1e-5),
            Functional.LayerNorm(x, new[] { d }, ToFloat(gamma), ToFloat(beta)).ToDoubleArray()) < 2e-6);
        Assert.True(MaxRelativeError(Normalize(values, RowGroup(d), i => i % d, null, beta, 1e-5),
            Functional.LayerNorm(x, new[] { d }, null, ToFloat(beta)).ToDoubleArray()) < 2e-6);
        Assert.True(MaxRelativeError(Normalize(values, RowGroup(d), i => i % d, gamma, null, 1e-6, centered: false),
            Functional.RmsNorm(x, new[] { d }, ToFloat(gamma), 1e-6).ToDoubleArray()) < 2e-6);
    }

    [Fact]
    public void Outputs_that_bypass_the_cache_match_the_reference()
    {
        // 8.4 million elements (34 MB) per output, past the 32 MiB from which the kernels write with streaming stores
        // (NormalizationKernels.StreamingBytes), here from runs of an odd length whose starts are not aligned.
        var (x, values) = RandomFloat(14, mean: -2, std: 3, 5, 4, 420_525);
        double[] gamma = { 0.5, 1, 1.5, 2 }, beta = { -1, 0, 1, 2 };
        Tensor runningMean = Tensor.FromArray(new[] { -2f, -1f, 0f, 1f }), runningVar = Tensor.FromArray(new[] { 9f, 4f, 1f, 0.25f });
        Tensor eval = Functional.BatchNorm(x, runningMean, runningVar, ToFloat(gamma), ToFloat(beta), training: false);
        double[] expected = values.Select((v, i) =>
        {
            int c = i / 420_525 % 4;
            return (v - (c - 2)) / Math.Sqrt(new[] { 9, 4, 1, 0.25 }[c] + 1e-5) * gamma[c] + beta[c];
        }).ToArray();
        Assert.True(MaxRelativeError(expected, eval.ToDoubleArray()) < 2e-6);
        Tensor train = Functional.BatchNorm(x, null, null, ToFloat(gamma), ToFloat(beta), training: true);
        Assert.True(MaxRelativeError(Normalize(values, BatchNormGroup(4, 420_525), i => i / 420_525 % 4, gamma, beta, 1e-5), train.ToDoubleArray()) < 2e-6);
        double[] rowGamma = Enumerable.Range(0, 1050).Select(i => 1 + 0.001 * i).ToArray(), rowBeta = Enumerable.Range(0, 1050).Select(i => 0.01 * i).ToArray();
        Tensor rows = Functional.LayerNorm(x.Reshape(8010, 1050), new[] { 1050 }, ToFloat(rowGamma), ToFloat(rowBeta));
        Assert.True(MaxRelativeError(Normalize(values, RowGroup(1050), i => i % 1050, rowGamma, rowBeta, 1e-5), rows.ToDoubleArray()) < 2e-6);
    }

    [Theory]
    [InlineData("batch-odd-pieces")]
    [InlineData("columns-odd")]
    [InlineData("layer-large")]
    public void Float32_gradients_agree_with_the_float64_path_on_large_odd_shapes(string operation)
    {
        // Large enough to split the work and, for the rows, for x, dy and dx together to pass the cache, so that the
        // backward reads with 256-bit vectors one row at a time where 512-bit ones exist (NormalizationKernels.ReadsNarrow),
        // with a partial last vector at every width.
        int[] shape = operation switch { "batch-odd-pieces" => new[] { 3, 5, 4500 }, "columns-odd" => new[] { 700, 300 }, _ => new[] { 3000, 1003 } };
        int features = operation == "layer-large" ? shape[^1] : shape[1];
        double[][] f32 = Gradients(operation, shape, features, DType.Float32), f64 = Gradients(operation, shape, features, DType.Float64);
        for (int k = 0; k < f64.Length; k++)
            Assert.True(MaxRelativeError(f64[k], f32[k]) < 1e-4, $"{operation}, gradient {k}: {MaxRelativeError(f64[k], f32[k]):E2}");
    }

    public static TheoryData<string> GradientCases => new() { "BatchNorm1d-19", "BatchNorm1d-70", "BatchNorm2d-5x5", "BatchNorm2d-23x25", "LayerNorm-19", "RMSNorm-35", "GroupNorm-17",
        "GroupNorm-3-channels-3x3", "GroupNorm-1-channel-33" };

    [Theory]
    [MemberData(nameof(GradientCases))]
    public void Backward_with_partial_vectors_matches_finite_differences(string layer)
    {
        var (module, shape) = layer switch
        {
            "BatchNorm1d-19" => ((Module)new BatchNorm1d(19), new[] { 6, 19 }),
            "BatchNorm1d-70" => (new BatchNorm1d(70), new[] { 3, 70 }),
            "BatchNorm2d-5x5" => (new BatchNorm2d(2), new[] { 2, 2, 5, 5 }),
            "BatchNorm2d-23x25" => (new BatchNorm2d(2), new[] { 2, 2, 23, 25 }), // runs of 575: the memory-order batch path
            "LayerNorm-19" => (new LayerNorm(19), new[] { 3, 19 }),
            "RMSNorm-35" => (new RMSNorm(35), new[] { 2, 35 }),
            "GroupNorm-3-channels-3x3" => (new GroupNorm(2, 6), new[] { 2, 6, 3, 3 }), // channels shorter than a vector
            "GroupNorm-1-channel-33" => (new GroupNorm(4, 4), new[] { 2, 4, 33 }),
            _ => (new GroupNorm(2, 4), new[] { 2, 4, 17 }),
        };
        foreach (Tensor p in module.Parameters()) p.CopyFrom(Tensor.Normal(p.Shape, 1, 0.3, generator: new RandomGenerator(2)));
        Assert.True(GradCheck.CheckModule(module, GradCheck.Random(3, shape) * 1.5 + 0.25) <= GradCheck.Tolerance);
    }

    /// <summary>dx, dγ, dβ of Σ f(x)·r for a fixed random r.</summary>
    private static double[][] Gradients(string operation, int[] shape, int features, DType dtype)
    {
        Tensor x = Tensor.Normal(shape, 3, 2, generator: new RandomGenerator(15)).To(dtype).Detach();
        Tensor w = Tensor.Normal(new[] { features }, 1, 0.2, generator: new RandomGenerator(16)).To(dtype).Detach();
        Tensor b = Tensor.Normal(new[] { features }, 0, 1, generator: new RandomGenerator(17)).To(dtype).Detach();
        foreach (Tensor t in new[] { x, w, b }) t.RequiresGrad = true;
        Tensor y = operation == "layer-large" ? Functional.LayerNorm(x, new[] { features }, w, b) : Functional.BatchNorm(x, null, null, w, b, training: true);
        y.Backward(Tensor.Normal(shape, generator: new RandomGenerator(18)).To(dtype));
        return new[] { x.Grad!.ToDoubleArray(), w.Grad!.ToDoubleArray(), b.Grad!.ToDoubleArray() };
    }

    private static Tensor ToFloat(double[] values) => Tensor.FromArray(values.Select(v => (float)v).ToArray());
}

/// <summary>The new paths' results for one and two threads (BatchNorm pieces, odd column strips, rows written past
/// the cache).</summary>
[Collection("Parallelism")]
public class NormalizationPathDeterminismTests
{
    [Theory]
    [InlineData(3, 5, 4500)]
    [InlineData(2000, 300, 0)]
    [InlineData(2600, 1000, -1)]
    [InlineData(3000, 1003, -1)] // the rows' backward past the cache (NormalizationKernels.ReadsNarrow)
    [InlineData(16, 64, -2)]
    public void Results_are_bit_identical_for_one_and_two_threads(int n, int c, int s)
    {
        int saved = Parallelism.ThreadCount;
        try
        {
            Parallelism.ThreadCount = 1;
            float[][] one = Run(n, c, s);
            Parallelism.ThreadCount = 2;
            float[][] two = Run(n, c, s);
            for (int k = 0; k < one.Length; k++) Assert.Equal(one[k], two[k]);
        }
        finally { Parallelism.ThreadCount = saved; }
    }

    [Theory]
    [InlineData(7, 5, 3)]     // runs shorter than a vector
    [InlineData(9, 5, 13)]    // a partial last vector
    [InlineData(63, 10, 196)] // 14×14 maps; on two threads the second one's runs start at channel 5
    [InlineData(41, 3, 1000)] // on two threads the second one's runs start at channel 1
    public void BatchNorm_over_runs_matches_float64_and_is_bit_identical_for_one_and_two_threads(int n, int c, int s)
    {
        var (x, values) = NormalizationReference.RandomFloat(23, mean: 2, std: 3, n, c, s);
        double[] mean = Enumerable.Range(0, c).Select(j => 0.5 * j - 1).ToArray(), variance = Enumerable.Range(0, c).Select(j => 0.25 + j).ToArray();
        double[] gamma = Enumerable.Range(0, c).Select(j => 1.5 - 0.1 * j).ToArray(), beta = Enumerable.Range(0, c).Select(j => 0.2 * j).ToArray();
        Tensor Float(double[] v) => Tensor.FromArray(v.Select(e => (float)e).ToArray());
        float[][] Run() => new[]
        {
            Functional.BatchNorm(x, Float(mean), Float(variance), Float(gamma), Float(beta), training: false).ToArray(),
            Functional.BatchNorm(x, null, null, Float(gamma), Float(beta), training: true).ToArray(),
        };
        int saved = Parallelism.ThreadCount;
        try
        {
            Parallelism.ThreadCount = 1;
            float[][] one = Run();
            Parallelism.ThreadCount = 2;
            float[][] two = Run();
            for (int k = 0; k < one.Length; k++) Assert.Equal(one[k], two[k]);
            double[] evaluation = values.Select((v, i) =>
            {
                int j = i / s % c;
                return (v - mean[j]) / Math.Sqrt(variance[j] + 1e-5) * gamma[j] + beta[j];
            }).ToArray();
            Assert.True(NormalizationReference.MaxRelativeError(evaluation, one[0].Select(v => (double)v).ToArray()) < 2e-6);
            double[] training = NormalizationReference.Normalize(values, NormalizationReference.BatchNormGroup(c, s), i => i / s % c, gamma, beta, 1e-5);
            Assert.True(NormalizationReference.MaxRelativeError(training, one[1].Select(v => (double)v).ToArray()) < 2e-6);
        }
        finally { Parallelism.ThreadCount = saved; }
    }

    /// <summary>BatchNorm on (n, c, s), on (n, c) for s = 0, LayerNorm over rows of c for s = −1, GroupNorm(8) on
    /// (n, c, 14, 14) for s = −2: output and gradients.</summary>
    private static float[][] Run(int n, int c, int s)
    {
        int[] shape = s > 0 ? new[] { n, c, s } : s == -2 ? new[] { n, c, 14, 14 } : new[] { n, c };
        Tensor x = Tensor.Normal(shape, 3, 2, generator: new RandomGenerator(19));
        Tensor w = Tensor.Normal(new[] { c }, 1, 0.1, generator: new RandomGenerator(20)), b = Tensor.Normal(new[] { c }, 0, 1, generator: new RandomGenerator(21));
        foreach (Tensor t in new[] { x, w, b }) t.RequiresGrad = true;
        Tensor y = s == -2 ? Functional.GroupNorm(x, 8, w, b)
            : s < 0 ? Functional.LayerNorm(x, new[] { c }, w, b) : Functional.BatchNorm(x, null, null, w, b, training: true);
        y.Backward(Tensor.Normal(shape, generator: new RandomGenerator(22)));
        return new[] { y.ToArray(), x.Grad!.ToArray(), w.Grad!.ToArray(), b.Grad!.ToArray() };
    }
}
