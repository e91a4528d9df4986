using NormSharp.Nn;
using NormSharp.Tests.Testing;
using static NormSharp.Tests.Testing.NormalizationReference;

namespace NormSharp.Tests.Nn.Normalization;

/// <summary>LayerNorm, RMSNorm, GroupNorm and InstanceNorm: values, state, printing and errors.</summary>
public class RowAndGroupNormTests
{
    [Fact]
    public void LayerNorm_normalizes_each_row_by_hand()
    {
        // Row [1, 2, 3, 6]: mean 3, biased variance 3.5; row [2, 2, 2, 2]: constant → β.
        var ln = new LayerNorm(normalizedShape: new[] { 4 }, eps: 1e-5, elementwiseAffine: true);
        ln.Bias!.CopyFrom(new float[] { 0, 0, 0, 1 });
        Tensor y = ln.Forward(Tensor.FromArray(new float[] { 1, 2, 3, 6, 2, 2, 2, 2 }, 2, 4));
        double s = Math.Sqrt(3.5 + 1e-5);
        TensorAssert.Close(new[] { -2 / s, -1 / s, 0, 3 / s + 1, 0, 0, 0, 1 }, y, rtol: 1e-6);
    }

    [Fact]
    public void LayerNorm_over_two_trailing_axes_matches_the_reference()
    {
        var (x, values) = RandomFloat(1, mean: 100, std: 3, 5, 3, 4);
        var ln = new LayerNorm(new[] { 3, 4 });
        Assert.Equal(new[] { 3, 4 }, ln.Weight!.Shape);
        Assert.True(MaxRelativeError(Normalize(values, RowGroup(12), i => 0, null, null, 1e-5), ln.Forward(x).ToDoubleArray()) < 2e-6);
    }

    [Fact]
    public void RMSNorm_divides_by_the_root_mean_square_with_machine_epsilon_by_default()
    {
        // [3, 4]: mean square 12.5; y = x/√(12.5 + 2⁻²³).
        var rms = new RMSNorm(2);
        Assert.Equal("RMSNorm((2,), eps=None, elementwise_affine=True)", rms.ToString());
        double r = Math.Sqrt(12.5 + Math.Pow(2, -23));
        TensorAssert.Close(new[] { 3 / r, 4 / r }, rms.Forward(Tensor.FromArray(new float[] { 3, 4 }, 1, 2)), rtol: 1e-7);
        Assert.Equal(Math.Pow(2, -23), Functional.MachineEpsilon(DType.Float32));
        Assert.Equal(Math.Pow(2, -52), Functional.MachineEpsilon(DType.Float64));
    }

    [Fact]
    public void GroupNorm_normalizes_each_group_of_channels_per_sample()
    {
        // One sample, 4 channels of 2 positions, 2 groups: group 0 = [0, 2, 4, 6] (mean 3, var 5), group 1 = [1, 1, 1, 1].
        var gn = new GroupNorm(2, 4);
        gn.Bias!.CopyFrom(new float[] { 0, 0, 7, 8 });
        Tensor y = gn.Forward(Tensor.FromArray(new float[] { 0, 2, 4, 6, 1, 1, 1, 1 }, 1, 4, 2));
        double s = Math.Sqrt(5 + 1e-5);
        TensorAssert.Close(new[] { -3 / s, -1 / s, 1 / s, 3 / s, 7, 7, 8, 8 }, y, rtol: 1e-6);
        Assert.Equal("GroupNorm(2, 4, eps=1e-05, affine=True)", gn.ToString());
    }

    [Fact]
    public void GroupNorm_requires_divisible_channels_and_the_right_channel_count()
    {
        Assert.Contains("multiple of numGroups (3)", Assert.Throws<ArgumentException>(() => new GroupNorm(3, 10)).Message);
        var e = Assert.Throws<ArgumentException>(() => new GroupNorm(2, 4).Forward(Tensor.Zeros(new[] { 2, 6, 3 })));
        Assert.Contains("GroupNorm(2, 4, eps=1e-05, affine=True)", e.Message);
        Assert.Contains("(N, 4, *)", e.Message);
        Assert.Contains("(2, 6, 3)", e.Message);
    }

    [Fact]
    public void InstanceNorm_defaults_match_PyTorch_and_normalize_each_instance()
    {
        var inorm = new InstanceNorm2d(3);
        Assert.Equal("InstanceNorm2d(3, eps=1e-05, momentum=0.1, affine=False, track_running_stats=False)", inorm.ToString());
        Assert.Empty(inorm.StateDict());
        var (x, values) = RandomFloat(2, mean: 4, std: 2, 2, 3, 4, 5);
        Assert.True(MaxRelativeError(Normalize(values, GroupNormGroup(3, 20, 3), i => 0, null, null, 1e-5), inorm.Forward(x).ToDoubleArray()) < 2e-6);
        Assert.Contains("more than 1 spatial element", Assert.Throws<ArgumentException>(() => new InstanceNorm1d(3).Forward(Tensor.Zeros(new[] { 2, 3, 1 }))).Message);
    }

    [Fact]
    public void InstanceNorm_running_statistics_average_the_instances_and_serve_eval()
    {
        var inorm = new InstanceNorm1d(2, momentum: 0.5, trackRunningStats: true);
        // Sample 0: channel 0 [0, 2] (mean 1, unbiased var 2), channel 1 [4, 4]; sample 1: [2, 6] (4, 8), [0, 2] (1, 2).
        inorm.Forward(Tensor.FromArray(new float[] { 0, 2, 4, 4, 2, 6, 0, 2 }, 2, 2, 2));
        TensorAssert.Close(new[] { 0.5 * 2.5, 0.5 * 2.5 }, inorm.RunningMean!);
        TensorAssert.Close(new[] { 0.5 + 0.5 * 5, 0.5 + 0.5 * 1 }, inorm.RunningVar!);
        inorm.Eval();
        TensorAssert.Close(new[] { (3 - 1.25) / Math.Sqrt(3 + 1e-5), (1 - 1.25) / Math.Sqrt(1 + 1e-5) }, inorm.Forward(Tensor.FromArray(new float[] { 3, 1 }, 2, 1)), rtol: 1e-6);
    }

    [Fact]
    public void LayerNorm_shape_errors_name_the_layer()
    {
        var e = Assert.Throws<ArgumentException>(() => new LayerNorm(768).Forward(Tensor.Zeros(new[] { 2, 512 })));
        Assert.Contains("LayerNorm((768,), eps=1e-05, elementwise_affine=True)", e.Message);
        Assert.Contains("(*, 768)", e.Message);
        Assert.Contains("(2, 512)", e.Message);
        Assert.Throws<ArgumentException>(() => new RMSNorm(Array.Empty<int>()));
    }

    [Fact]
    public void LayerNorm_without_bias_has_only_a_weight()
    {
        var ln = new LayerNorm(8, bias: false);
        Assert.Equal(new[] { "weight" }, ln.StateDict().Keys);
        Assert.Null(ln.Bias);
        Assert.Empty(new LayerNorm(8, elementwiseAffine: false).Parameters());
    }
}
