using NormSharp.Nn;
using NormSharp.Tests.Testing;
using static NormSharp.Tests.Testing.NormalizationReference;

namespace NormSharp.Tests.Nn.Normalization;

public class KerasBatchNormalizationTests
{
    [Fact]
    public void Defaults_are_Keras_and_momentum_099_is_PyTorch_momentum_001()
    {
        var keras = new KerasBatchNormalization(4);
        Assert.Equal(0.99, keras.KerasMomentum, 12);
        Assert.Equal(0.01, keras.Momentum!.Value, 12);
        Assert.Equal(1e-3, keras.Eps);
        Assert.Equal(1, keras.Axis);
        Assert.Equal("KerasBatchNormalization(4, axis=1, momentum=0.99, epsilon=0.001, center=True, scale=True)", keras.ToString());
    }

    [Fact]
    public void Moving_statistics_decay_with_momentum_and_follow_the_biased_variance()
    {
        var keras = new KerasBatchNormalization(2, axis: -1, momentum: 0.9);
        double[] movingMean = { 0, 0 }, movingVariance = { 1, 1 };
        for (int step = 0; step < 3; step++)
        {
            var (x, values) = RandomFloat(30 + step, mean: 2 * step, std: 1 + step, 5, 2);
            keras.Forward(x);
            var (mean, variance) = Statistics(values, BatchNormGroup(2, 1));
            for (int c = 0; c < 2; c++)
            {
                movingMean[c] = 0.9 * movingMean[c] + (1 - 0.9) * mean[c];
                movingVariance[c] = 0.9 * movingVariance[c] + (1 - 0.9) * variance[c];
            }
            TensorAssert.Close(movingMean, keras.MovingMean, rtol: 1e-5);
            TensorAssert.Close(movingVariance, keras.MovingVariance, rtol: 1e-5);
        }
    }

    [Fact]
    public void Channels_last_axis_runs_the_same_computation_as_BatchNorm2d_on_NCHW()
    {
        Tensor nhwc = Tensor.Normal(new[] { 3, 4, 5, 6 }, 2, 3, generator: new RandomGenerator(40));
        var keras = new KerasBatchNormalization(6, axis: -1, momentum: 0.9, epsilon: 1e-3);
        var torch = new BatchNorm2d(6, eps: 1e-3, momentum: 0.1);
        foreach (var (k, t) in new[] { (keras.Gamma!, torch.Weight!), (keras.Beta!, torch.Bias!) })
        {
            Tensor values = Tensor.Normal(new[] { 6 }, 1, 0.5, generator: new RandomGenerator(41));
            k.CopyFrom(values);
            t.CopyFrom(values);
        }
        Tensor yKeras = keras.Forward(nhwc);
        Tensor yTorch = torch.Forward(nhwc.Permute(0, 3, 1, 2)).Permute(0, 2, 3, 1);
        Assert.True(MaxRelativeError(yTorch.ToDoubleArray(), yKeras.ToDoubleArray()) < 1e-6);
        TensorAssert.Close(torch.RunningMean!.ToDoubleArray(), keras.MovingMean, rtol: 1e-6);
        // Same batch variance, but PyTorch's running update Bessel-corrects it (n = 3·4·5 = 60) and Keras's does not.
        double[] torchVariance = torch.RunningVar!.ToDoubleArray(), kerasVariance = keras.MovingVariance.ToDoubleArray();
        for (int c = 0; c < 6; c++) Assert.Equal(60.0 / 59, (torchVariance[c] - 0.9) / (kerasVariance[c] - 0.9), 4);
    }

    [Fact]
    public void Center_and_scale_switch_beta_and_gamma_separately()
    {
        var noBeta = new KerasBatchNormalization(3, center: false);
        Assert.NotNull(noBeta.Gamma);
        Assert.Null(noBeta.Beta);
        var noGamma = new KerasBatchNormalization(3, scale: false);
        Assert.Null(noGamma.Gamma);
        noGamma.Beta!.CopyFrom(new float[] { 1, 2, 3 });
        Tensor y = noGamma.Forward(Tensor.Full(new[] { 2, 3 }, 5.0));
        Assert.Equal(new float[] { 1, 2, 3, 1, 2, 3 }, y.ToArray());
    }

    [Fact]
    public void Eval_normalizes_with_moving_statistics_and_epsilon_1e3()
    {
        var keras = new KerasBatchNormalization(1, axis: -1);
        keras.MovingMean.CopyFrom(new float[] { 2 });
        keras.MovingVariance.CopyFrom(new float[] { 0.999f });
        keras.Eval();
        TensorAssert.Close(new[] { 3.0, -1.0 }, keras.Forward(Tensor.FromArray(new float[] { 5, 1 }, 2, 1)), rtol: 1e-6);
    }

    [Fact]
    public void Bad_axis_or_momentum_is_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new KerasBatchNormalization(3, momentum: 1.5));
        var e = Assert.Throws<ArgumentException>(() => new KerasBatchNormalization(3, axis: 3).Forward(Tensor.Zeros(new[] { 2, 3 })));
        Assert.Contains("KerasBatchNormalization(3, axis=3", e.Message);
        Assert.Contains("(2, 3)", e.Message);
    }
}
