using NormSharp.Nn;
using NormSharp.Tests.Testing;
using static NormSharp.Tests.Testing.NormalizationReference;

namespace NormSharp.Tests.Nn.Normalization;

/// <summary>Degenerate shapes, huge offsets, constant data and extreme ε through the layers.</summary>
public class HostileInputTests
{
    [Fact]
    public void Two_samples_one_channel_one_pixel_normalize_to_plus_minus_one()
    {
        // [1, 3]: mean 2, biased variance 1.
        Tensor y = new BatchNorm2d(1).Forward(Tensor.FromArray(new float[] { 1, 3 }, 2, 1, 1, 1));
        double z = 1 / Math.Sqrt(1 + 1e-5);
        TensorAssert.Close(new[] { -z, z }, y, rtol: 1e-7);
    }

    [Theory]
    [InlineData(1e-12)]
    [InlineData(1.0)]
    public void Extreme_eps_values_enter_as_the_formula_says(double eps)
    {
        var (x, values) = RandomFloat(3, mean: -1, std: 0.01, 4, 2, 3, 3);
        var layers = new Module[] { new BatchNorm2d(2, eps: eps), new GroupNorm(1, 2, eps: eps), new InstanceNorm2d(2, eps: eps), new LayerNorm(new[] { 2, 3, 3 }, eps: eps) };
        var groups = new[] { BatchNormGroup(2, 9), GroupNormGroup(2, 9, 1), GroupNormGroup(2, 9, 2), RowGroup(18) };
        for (int k = 0; k < layers.Length; k++)
            Assert.True(MaxRelativeError(Normalize(values, groups[k], i => 0, null, null, eps), layers[k].Forward(x).ToDoubleArray()) < 1e-5, layers[k].ToString());
    }

    [Fact]
    public void Constant_channel_gives_beta_and_a_finite_gradient()
    {
        // x̂ = 0 everywhere, so y = β and dx = γ/√ε·(dy − mean(dy)).
        var bn = new BatchNorm1d(1, eps: 1e-4);
        bn.Weight!.CopyFrom(new float[] { 2 });
        bn.Bias!.CopyFrom(new float[] { -3 });
        Tensor x = Tensor.Full(new[] { 4, 1 }, 1e4);
        x.RequiresGrad = true;
        Tensor y = bn.Forward(x);
        Assert.Equal(new float[] { -3, -3, -3, -3 }, y.ToArray());
        y.Backward(Tensor.FromArray(new float[] { 1, 2, 3, 6 }, 4, 1));
        TensorAssert.Close(new[] { -2.0, -1, 0, 3 }.Select(d => 2 / Math.Sqrt(1e-4) * d).ToArray(), x.Grad!, rtol: 1e-5);
        Assert.Equal(new float[] { 12 }, bn.Bias.Grad!.ToArray());
    }
}
