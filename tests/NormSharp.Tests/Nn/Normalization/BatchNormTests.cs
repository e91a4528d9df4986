using NormSharp.Nn;
using NormSharp.Tests.Testing;
using static NormSharp.Tests.Testing.NormalizationReference;

namespace NormSharp.Tests.Nn.Normalization;

public class BatchNormTests
{
    [Fact]
    public void Training_forward_matches_hand_computed_values()
    {
        // Channel 0: [1, 2, 3], mean 2, biased variance 2/3, x̂ = ±1/√(2/3 + 1e-5) = ±1.2247357; γ = 2, β = 0.5.
        // Channel 1: [10, 10, 40], mean 20, variance 200, x̂ = (−0.7071067, −0.7071067, 1.4142135); γ = 1, β = 0.
        var bn = new BatchNorm1d(2);
        bn.Weight!.CopyFrom(new float[] { 2, 1 });
        bn.Bias!.CopyFrom(new float[] { 0.5f, 0 });
        Tensor y = bn.Forward(Tensor.FromArray(new float[] { 1, 10, 2, 10, 3, 40 }, 3, 2));
        TensorAssert.Close(new[] { -1.9494714, -0.70710661, 0.5, -0.70710661, 2.9494714, 1.4142132 }, y, rtol: 1e-6, atol: 1e-6);
    }

    [Fact]
    public void Running_statistics_follow_momentum_with_the_unbiased_variance_over_several_steps()
    {
        var bn = new BatchNorm2d(3, momentum: 0.1);
        double[] mean = new double[3], variance = { 1, 1, 1 };
        for (int step = 0; step < 4; step++)
        {
            var (x, values) = RandomFloat(10 + step, mean: step, std: 1 + step, 4, 3, 2, 5);
            bn.Forward(x);
            var (batchMean, batchVariance) = Statistics(values, BatchNormGroup(3, 10));
            for (int c = 0; c < 3; c++)
            {
                mean[c] = 0.9 * mean[c] + 0.1 * batchMean[c];
                variance[c] = 0.9 * variance[c] + 0.1 * batchVariance[c] * 40 / 39;
            }
            TensorAssert.Close(mean, bn.RunningMean!, rtol: 1e-5, atol: 1e-6);
            TensorAssert.Close(variance, bn.RunningVar!, rtol: 1e-5, atol: 1e-6);
            Assert.Equal(step + 1, bn.NumBatchesTracked!.Item());
        }
    }

    [Fact]
    public void Null_momentum_is_the_cumulative_average_of_the_batch_statistics()
    {
        var bn = new BatchNorm1d(2, momentum: null);
        double[] sumMean = new double[2], sumVariance = new double[2];
        for (int step = 1; step <= 5; step++)
        {
            var (x, values) = RandomFloat(20 + step, mean: 3 * step, std: step, 6, 2);
            bn.Forward(x);
            var (batchMean, batchVariance) = Statistics(values, BatchNormGroup(2, 1));
            for (int c = 0; c < 2; c++)
            {
                sumMean[c] += batchMean[c];
                sumVariance[c] += batchVariance[c] * 6 / 5;
            }
            TensorAssert.Close(sumMean.Select(s => s / step).ToArray(), bn.RunningMean!, rtol: 1e-5, atol: 1e-6);
            TensorAssert.Close(sumVariance.Select(s => s / step).ToArray(), bn.RunningVar!, rtol: 1e-5, atol: 1e-6);
        }
    }

    [Fact]
    public void Eval_uses_running_statistics()
    {
        var bn = new BatchNorm2d(2, eps: 0.25);
        bn.RunningMean!.CopyFrom(new float[] { 1, -2 });
        bn.RunningVar!.CopyFrom(new float[] { 3.75f, 0.75f });
        bn.Weight!.CopyFrom(new float[] { 2, 3 });
        bn.Bias!.CopyFrom(new float[] { 1, 0 });
        bn.Eval();
        // (x − 1)/√4·2 + 1 and (x + 2)/√1·3.
        Tensor y = bn.Forward(Tensor.FromArray(new float[] { 5, -1, 0, -2 }, 1, 2, 2, 1));
        Assert.Equal(new float[] { 5, -1, 6, 0 }, y.ToArray());
        Assert.Equal(0, bn.NumBatchesTracked!.Item());
    }

    [Fact]
    public void Without_running_statistics_batch_statistics_are_used_in_eval_too()
    {
        var bn = new BatchNorm1d(1, trackRunningStats: false);
        bn.Eval();
        Assert.Null(bn.RunningMean);
        TensorAssert.Close(new[] { -1.2247357, 0, 1.2247357 }, bn.Forward(Tensor.FromArray(new float[] { 1, 2, 3 }, 3, 1)), rtol: 1e-6);
    }

    [Fact]
    public void Training_with_one_value_per_channel_throws_like_PyTorch()
    {
        var bn = new BatchNorm1d(10);
        var e = Assert.Throws<ArgumentException>(() => bn.Forward(Tensor.Zeros(new[] { 1, 10 })));
        Assert.Contains("BatchNorm1d(10, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)", e.Message);
        Assert.Contains("Expected more than 1 value per channel when training, got input size (1, 10)", e.Message);
        Assert.Equal(0, bn.NumBatchesTracked!.Item());
        bn.Eval();
        Assert.Equal(new float[10], bn.Forward(Tensor.Zeros(new[] { 1, 10 })).ToArray());
    }

    [Fact]
    public void Wrong_rank_and_wrong_channel_count_name_the_layer_and_both_shapes()
    {
        var bn = new BatchNorm2d(numFeatures: 32, eps: 1e-5, momentum: 0.1, affine: true, trackRunningStats: true);
        var rank = Assert.Throws<ArgumentException>(() => bn.Forward(Tensor.Zeros(new[] { 2, 32, 5 })));
        Assert.Contains("BatchNorm2d(32, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)", rank.Message);
        Assert.Contains("4-D", rank.Message);
        Assert.Contains("(2, 32, 5)", rank.Message);
        var channels = Assert.Throws<ArgumentException>(() => bn.Forward(Tensor.Zeros(new[] { 2, 16, 3, 3 })));
        Assert.Contains("expected 32 channels on axis 1", channels.Message);
        Assert.Contains("(2, 16, 3, 3)", channels.Message);
        Assert.Contains("5-D", Assert.Throws<ArgumentException>(() => new BatchNorm3d(2).Forward(Tensor.Zeros(new[] { 2, 2, 2, 2 }))).Message);
    }

    [Fact]
    public void State_and_printing_follow_PyTorch()
    {
        var bn = new BatchNorm2d(4, momentum: null, affine: false);
        Assert.Equal(new[] { "running_mean", "running_var", "num_batches_tracked" }, bn.StateDict().Keys);
        Assert.Equal("BatchNorm2d(4, eps=1e-05, momentum=None, affine=False, track_running_stats=True)", bn.ToString());
        Assert.Empty(bn.Parameters());
        var affine = new BatchNorm1d(3, eps: 1e-3);
        Assert.Equal(new[] { "weight", "bias", "running_mean", "running_var", "num_batches_tracked" }, affine.StateDict().Keys);
        Assert.Equal(new float[] { 1, 1, 1 }, affine.Weight!.ToArray());
        Assert.Equal(new float[] { 0, 0, 0 }, affine.Bias!.ToArray());
        Assert.Equal(new float[] { 1, 1, 1 }, affine.RunningVar!.ToArray());
        Assert.Empty(affine.NumBatchesTracked!.Shape);
    }

    [Fact]
    public void Reset_running_stats_restores_the_initial_state()
    {
        var bn = new BatchNorm1d(2);
        bn.Forward(Tensor.Normal(new[] { 8, 2 }, 5, 3, generator: new RandomGenerator(4)));
        bn.ResetRunningStats();
        Assert.Equal(new float[] { 0, 0 }, bn.RunningMean!.ToArray());
        Assert.Equal(new float[] { 1, 1 }, bn.RunningVar!.ToArray());
        Assert.Equal(0, bn.NumBatchesTracked!.Item());
    }

    [Fact]
    public void BatchNorm1d_normalizes_each_channel_over_batch_and_length()
    {
        var (x, values) = RandomFloat(5, mean: -3, std: 2, 4, 3, 7);
        Tensor y = new BatchNorm1d(3).Forward(x);
        Assert.True(MaxRelativeError(Normalize(values, BatchNormGroup(3, 7), c => 0, null, null, 1e-5), y.ToDoubleArray()) < 2e-6);
    }

    [Fact]
    public void Functional_eval_without_running_statistics_is_an_error()
    {
        var e = Assert.Throws<ArgumentException>(() => Functional.BatchNorm(Tensor.Zeros(new[] { 2, 2 }), null, null));
        Assert.Contains("running mean and variance", e.Message);
    }
}
