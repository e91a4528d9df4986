using NormSharp.Nn;
using NormSharp.Tests.Testing;
using static NormSharp.Tests.Testing.NormalizationReference;

namespace NormSharp.Tests.Nn.Normalization;

/// <summary>
/// The worked examples of the seed articles (shared/seeds/000–004), recomputed with the correct formulas; each test
/// names the seed and the mistake it disproves. docs/seed-errata.md explains each one.
/// </summary>
public class SeedErrataTests
{
    private static Tensor Float64(double[] values, params int[] shape) => Tensor.FromArray(values, shape);

    [Fact]
    public void Seed004_example_has_variance_0_02667_and_z_of_1_2247_not_0_1_and_0_331()
    {
        // X = [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]: column 1 is [0.1, 0.3, 0.5], mean 0.3,
        // biased variance (0.04 + 0 + 0.04)/3 = 0.026667, z = ±0.2/√0.026667 = ±1.2247 (ε = 0).
        Tensor x = Float64(new[] { 0.1, 0.2, 0.3, 0.4, 0.5, 0.6 }, 3, 2);
        var (_, variance) = Statistics(x.ToDoubleArray(), BatchNormGroup(2, 1));
        Assert.Equal(0.0266667, variance[0], 6);
        Assert.Equal(0.0266667, variance[1], 6);
        var bn = (BatchNorm1d)new BatchNorm1d(2, eps: 0).To(DType.Float64);
        double[] z = bn.Forward(x).ToDoubleArray();
        Assert.Equal(new[] { -1.2247449, -1.2247449, 0, 0, 1.2247449, 1.2247449 }, z.Select(v => Math.Round(v, 7)));
        // PyTorch's running variance receives the unbiased 0.04, not the seed's 0.1 either.
        Assert.Equal(0.9 + 0.1 * 0.04, bn.RunningVar!.ToDoubleArray()[0], 12);
    }

    [Fact]
    public void Seed000_numpy_example_gives_the_standardized_columns_scaled_and_shifted()
    {
        // x = [[1, 2], [3, 4], [5, 6]], γ = [1.5, 2.5], β = [0.5, 1.5], ε = 1e-8: z = ±2/√(8/3 + 1e-8) = ±1.2247449.
        var bn = (BatchNorm1d)new BatchNorm1d(2, eps: 1e-8).To(DType.Float64);
        bn.Weight!.CopyFrom(Float64(new[] { 1.5, 2.5 }, 2));
        bn.Bias!.CopyFrom(Float64(new[] { 0.5, 1.5 }, 2));
        Tensor y = bn.Forward(Float64(new double[] { 1, 2, 3, 4, 5, 6 }, 3, 2));
        TensorAssert.Close(new[] { -1.3371173036, -1.5618621727, 0.5, 1.5, 2.3371173036, 4.5618621727 }, y, rtol: 1e-9, atol: 1e-9);
    }

    [Fact]
    public void Seed000_gamma_sqrt_variance_and_beta_mean_recover_the_identity_they_are_not_how_gamma_and_beta_are_computed()
    {
        // Ioffe & Szegedy 2015, section 3: γ = √(σ² + ε), β = μ is the point where BN can represent the identity.
        // γ and β are learned parameters (initialized to 1 and 0), not computed from the batch.
        var (x, values) = RandomFloat(1, mean: 3, std: 2, 16, 3);
        var bn = new BatchNorm1d(3);
        Assert.Equal(new float[] { 1, 1, 1 }, bn.Weight!.ToArray());
        var (mean, variance) = Statistics(values, BatchNormGroup(3, 1));
        bn.Weight.CopyFrom(Enumerable.Range(0, 3).Select(c => (float)Math.Sqrt(variance[c] + bn.Eps)).ToArray());
        bn.Bias!.CopyFrom(Enumerable.Range(0, 3).Select(c => (float)mean[c]).ToArray());
        Assert.True(MaxRelativeError(values, bn.Forward(x).ToDoubleArray()) < 1e-5);
    }

    [Fact]
    public void Seed000_three_by_three_example_has_column_variance_6_and_overall_variance_6_667_not_10()
    {
        double[] values = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
        // BatchNorm per column: [1, 4, 7], [2, 5, 8], [3, 6, 9], each with mean 4/5/6 and biased variance 6.
        var (columnMean, columnVariance) = Statistics(values, BatchNormGroup(3, 1));
        Assert.Equal(new[] { 4.0, 5, 6 }, columnMean.OrderBy(kv => kv.Key).Select(kv => kv.Value));
        Assert.All(columnVariance.Values, v => Assert.Equal(6, v, 12));
        double[] z = new BatchNorm1d(3, eps: 0).To(DType.Float64).Forward(Float64(values, 3, 3)).ToDoubleArray();
        TensorAssert.Close(new[] { -1.2247449, -1.2247449, -1.2247449, 0, 0, 0, 1.2247449, 1.2247449, 1.2247449 }, z, rtol: 1e-7, atol: 1e-7);
        // All nine values as one group (mean 5): variance 60/9 = 6.667.
        var (_, overall) = Statistics(values, i => 0);
        Assert.Equal(60.0 / 9, overall[0], 12);
        TensorAssert.Close(values.Select(v => (v - 5) / Math.Sqrt(60.0 / 9)).ToArray(), Functional.LayerNorm(Float64(values, 1, 9), new[] { 9 }, eps: 0), rtol: 1e-12, atol: 1e-12);
    }

    [Fact]
    public void Seed003_normalization_uses_the_biased_variance_and_only_the_running_variance_the_unbiased_one()
    {
        // x = [1, 3, 5]: biased variance 8/3 → z = ±2/√(8/3) = ±1.2247; the seed's x.var(dim=0) is unbiased (4) → ±1.
        var bn = (BatchNorm1d)new BatchNorm1d(1, eps: 0, momentum: 0.1).To(DType.Float64);
        TensorAssert.Close(new[] { -1.2247449, 0, 1.2247449 }, bn.Forward(Float64(new double[] { 1, 3, 5 }, 3, 1)), rtol: 1e-7, atol: 1e-7);
        Assert.Equal(0.9 * 1 + 0.1 * 4, bn.RunningVar!.ToDoubleArray()[0], 12);
        Assert.Equal(0.1 * 3, bn.RunningMean!.ToDoubleArray()[0], 12);
        // The running statistics are registered buffers (saved with the model, never trained), not plain fields.
        Assert.Contains("running_var", bn.StateDict().Keys);
        Assert.DoesNotContain(bn.RunningVar, bn.Parameters());
    }

    [Fact]
    public void Seed001_BatchNorm1d_of_a_single_sample_throws_in_training()
    {
        // The seed feeds torch.randn(1, 10) to nn.BatchNorm1d(10) in training mode and prints an output; PyTorch raises.
        var e = Assert.Throws<ArgumentException>(() => new BatchNorm1d(10).Forward(Tensor.Normal(new[] { 1, 10 })));
        Assert.Contains("Expected more than 1 value per channel when training, got input size (1, 10)", e.Message);
    }

    [Fact]
    public void Seed002_and_seed004_epsilon_is_positive_and_the_division_is_by_the_standard_deviation()
    {
        // Seed 002 calls ε "a constant less than zero"; it is a small positive number, so √(σ² + ε) > 0 even for σ² = 0.
        Assert.Throws<ArgumentOutOfRangeException>(() => new BatchNorm2d(3, eps: -1e-5));
        // Seeds 002/004 say "divide by the variance": x = [0, 4] has variance 4 and standard deviation 2, so z = ±1, not ±0.5.
        TensorAssert.Close(new[] { -1.0, 1.0 }, new BatchNorm1d(1, eps: 0).Forward(Tensor.FromArray(new float[] { 0, 4 }, 2, 1)), rtol: 1e-7);
    }

    [Fact]
    public void Seed004_evaluation_uses_running_statistics_not_gamma_and_beta()
    {
        // The seed's inference branch computes (x − β)/√(γ² + ε). Evaluation normalizes with the running statistics and
        // then applies γ and β: here (x − 1)/√(4 + 0)·2 + 1.
        var bn = new BatchNorm1d(1, eps: 0);
        bn.RunningMean!.CopyFrom(new float[] { 1 });
        bn.RunningVar!.CopyFrom(new float[] { 4 });
        bn.Weight!.CopyFrom(new float[] { 2 });
        bn.Bias!.CopyFrom(new float[] { 1 });
        bn.Eval();
        Assert.Equal(new float[] { 1, 3, -1 }, bn.Forward(Tensor.FromArray(new float[] { 1, 3, -1 }, 3, 1)).ToArray());
    }

    [Fact]
    public void Seed004_gradients_of_gamma_and_beta_are_sums_not_means()
    {
        // dβ = Σ dy and dγ = Σ dy·x̂ (Ioffe & Szegedy 2015, section 3); the seed takes means. With dy = 1 everywhere,
        // dβ = N = 4, dγ = Σ x̂ = 0, and dx = 0 (adding a constant to x does not change a normalized output).
        var bn = new BatchNorm1d(2);
        Tensor x = Tensor.Normal(new[] { 4, 2 }, 1, 2, generator: new RandomGenerator(5));
        x.RequiresGrad = true;
        bn.Forward(x).Backward(Tensor.Ones(new[] { 4, 2 }));
        Assert.Equal(new float[] { 4, 4 }, bn.Bias!.Grad!.ToArray());
        Assert.All(bn.Weight!.Grad!.ToArray(), g => Assert.Equal(0, g, 5));
        Assert.All(x.Grad!.ToArray(), g => Assert.Equal(0, g, 5));
    }

    [Fact]
    public void Seed004_layer_normalization_normalizes_each_sample_over_its_features_not_over_the_batch()
    {
        // Ba, Kiros & Hinton 2016 (not Glorot & Bengio 2014): statistics per sample over its features. The seed's
        // layer_norm reduces over the batch axis, which is batch normalization.
        Tensor x = Tensor.FromArray(new float[] { 1, 2, 3, 10, 20, 60 }, 2, 3);
        float[] ln = Functional.LayerNorm(x, new[] { 3 }).ToArray();
        Assert.Equal(0, ln[0] + ln[1] + ln[2], 5);
        Assert.Equal(0, ln[3] + ln[4] + ln[5], 5);
        TensorAssert.Close(new[] { -1.2247357, 0, 1.2247357, -0.9258200, -0.4629100, 1.3887301 }, Functional.LayerNorm(x, new[] { 3 }), rtol: 1e-5);
        Assert.NotEqual(ln, Functional.BatchNorm(x, null, null, training: true).ToArray());
    }
}
