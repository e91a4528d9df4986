using NormSharp.Nn;
using NormSharp.Tests.Testing;
using static NormSharp.Tests.Testing.NormalizationReference;

namespace NormSharp.Tests.Nn.Normalization;

/// <summary>Folding, freezing and precise re-estimation of BatchNorm.</summary>
public class BatchNormToolsTests
{
    /// <summary>A BatchNorm with non-trivial running statistics and affine parameters, in evaluation mode.</summary>
    private static T Trained<T>(T bn, int[] shape, int seed) where T : BatchNorm
    {
        for (int step = 0; step < 3; step++) bn.Forward(Tensor.Normal(shape, 2 + step, 3, generator: new RandomGenerator((ulong)(seed + step))));
        bn.Weight!.CopyFrom(Tensor.Normal(new[] { bn.NumFeatures }, 1, 0.5, generator: new RandomGenerator((ulong)seed + 10)));
        bn.Bias!.CopyFrom(Tensor.Normal(new[] { bn.NumFeatures }, 0, 1, generator: new RandomGenerator((ulong)seed + 11)));
        bn.Eval();
        return bn;
    }

    [Fact]
    public void Folding_into_Linear_gives_the_same_outputs()
    {
        Tensor.ManualSeed(1);
        var linear = new Linear(5, 4);
        BatchNorm1d bn = Trained(new BatchNorm1d(4), new[] { 16, 4 }, 2);
        Tensor x = Tensor.Normal(new[] { 7, 5 }, generator: new RandomGenerator(3));
        double[] expected = bn.Forward(linear.Forward(x)).ToDoubleArray();
        Linear fused = BatchNormFolding.Fuse(linear, bn);
        Assert.True(MaxRelativeError(expected, fused.Forward(x).ToDoubleArray()) < 1e-5);
        Linear withoutBias = new Linear(5, 4, bias: false);
        Assert.True(MaxRelativeError(bn.Forward(withoutBias.Forward(x)).ToDoubleArray(), BatchNormFolding.Fuse(withoutBias, bn).Forward(x).ToDoubleArray()) < 1e-5);
    }

    [Fact]
    public void Folding_into_Conv2d_gives_the_same_outputs()
    {
        Tensor.ManualSeed(2);
        BatchNorm2d bn = Trained(new BatchNorm2d(6), new[] { 8, 6, 5, 5 }, 4);
        Tensor x = Tensor.Normal(new[] { 3, 2, 9, 9 }, generator: new RandomGenerator(5));
        foreach (var conv in new[] { new Conv2d(2, 6, 3, padding: ConvPadding.Same), new Conv2d(2, 6, (3, 2), stride: 2, padding: 1, dilation: (1, 2), bias: false) })
        {
            double[] expected = bn.Forward(conv.Forward(x)).ToDoubleArray();
            Conv2d fused = BatchNormFolding.Fuse(conv, bn);
            Assert.Equal(conv.Forward(x).Shape, fused.Forward(x).Shape);
            Assert.True(MaxRelativeError(expected, fused.Forward(x).ToDoubleArray()) < 1e-5);
        }
    }

    [Fact]
    public void Freezing_survives_a_change_of_element_type()
    {
        var model = new Sequential(new Linear(2, 3), new BatchNorm1d(3));
        model.FreezeBatchNorm();
        model.To(DType.Float64);
        var bn = (BatchNorm1d)model[1];
        Assert.False(bn.Weight!.RequiresGrad);
        Assert.True(((Linear)model[0]).Weight.RequiresGrad);
    }

    [Fact]
    public void Folding_handles_any_weight_with_output_channels_first()
    {
        // A 1×1 convolution (out, in, 1, 1) written out by hand: y[n, o, p] = Σ_i W[o, i]·x[n, i, p] + b[o].
        int n = 2, cin = 3, cout = 4, pixels = 6;
        Tensor w = Tensor.Normal(new[] { cout, cin, 1, 1 }, generator: new RandomGenerator(4));
        Tensor b = Tensor.Normal(new[] { cout }, generator: new RandomGenerator(5));
        Tensor x = Tensor.Normal(new[] { n, cin, pixels }, generator: new RandomGenerator(6));
        BatchNorm1d bn = Trained(new BatchNorm1d(cout), new[] { 8, cout, 3 }, 7);
        var (fw, fb) = BatchNormFolding.Fold(w, b, bn);
        Assert.Equal(new[] { cout, cin, 1, 1 }, fw.Shape);
        double[] expected = bn.Forward(PointwiseConvolution(x, w, b)).ToDoubleArray();
        Assert.True(MaxRelativeError(expected, PointwiseConvolution(x, fw, fb).ToDoubleArray()) < 1e-5);
    }

    private static Tensor PointwiseConvolution(Tensor x, Tensor w, Tensor b)
    {
        int n = x.Shape[0], cin = x.Shape[1], pixels = x.Shape[2], cout = w.Shape[0];
        float[] xs = x.ToArray(), ws = w.ToArray(), bs = b.ToArray(), y = new float[n * cout * pixels];
        for (int s = 0; s < n; s++)
            for (int o = 0; o < cout; o++)
                for (int p = 0; p < pixels; p++)
                {
                    double sum = bs[o];
                    for (int i = 0; i < cin; i++) sum += ws[o * cin + i] * xs[(s * cin + i) * pixels + p];
                    y[(s * cout + o) * pixels + p] = (float)sum;
                }
        return Tensor.FromArray(y, n, cout, pixels);
    }

    [Fact]
    public void Folding_checks_shapes_and_needs_running_statistics()
    {
        Assert.Contains("(3, 2)", Assert.Throws<ArgumentException>(() => BatchNormFolding.Fold(Tensor.Zeros(new[] { 3, 2 }), null, new BatchNorm1d(4))).Message);
        Assert.Throws<InvalidOperationException>(() => BatchNormFolding.Fold(Tensor.Zeros(new[] { 4, 2 }), null, new BatchNorm1d(4, trackRunningStats: false)));
    }

    [Fact]
    public void Frozen_BatchNorm_keeps_its_statistics_while_the_rest_trains()
    {
        Tensor.ManualSeed(8);
        var bn = Trained(new BatchNorm1d(4), new[] { 16, 4 }, 9);
        var model = new Sequential(new Linear(3, 4), bn);
        model.Train();
        Assert.Equal(1, model.FreezeBatchNorm());
        float[] mean = bn.RunningMean!.ToArray(), variance = bn.RunningVar!.ToArray();
        double batches = bn.NumBatchesTracked!.Item();
        Tensor x = Tensor.Normal(new[] { 10, 3 }, 5, 2, generator: new RandomGenerator(10));
        Tensor y = model.Forward(x);
        y.Sum().Backward();
        Assert.Equal(mean, bn.RunningMean!.ToArray());
        Assert.Equal(variance, bn.RunningVar!.ToArray());
        Assert.Equal(batches, bn.NumBatchesTracked!.Item());
        Assert.Null(bn.Weight!.Grad);
        Assert.NotNull(((Linear)model[0]).Weight.Grad);
        model.Eval();
        Assert.Equal(model.Forward(x).ToArray(), y.ToArray());
        model.UnfreezeBatchNorm();
        model.Train();
        model.Forward(x);
        Assert.NotEqual(mean, bn.RunningMean!.ToArray());
    }

    [Fact]
    public void Frozen_BatchNorm_backward_matches_finite_differences_in_training_mode()
    {
        var bn = Trained(new BatchNorm2d(2), new[] { 4, 2, 2, 2 }, 11);
        bn.Freeze(freezeParameters: false);
        bn.Train();
        Assert.True(GradCheck.CheckModule(bn, GradCheck.Random(12, 2, 2, 3, 3)) <= GradCheck.Tolerance);
    }

    [Fact]
    public void Precise_statistics_are_the_equal_weight_average_over_the_data_set()
    {
        var bn = new BatchNorm1d(3, momentum: 0.1);
        var model = new Sequential(new ModeRecorder(), bn);
        model.Train();
        var batches = Enumerable.Range(0, 5).Select(i => Tensor.Normal(new[] { 8, 3 }, i, 1 + i, generator: new RandomGenerator((ulong)(20 + i)))).ToList();
        double[] mean = new double[3], variance = new double[3];
        foreach (Tensor batch in batches.Take(4))
        {
            var (m, v) = Statistics(batch.ToDoubleArray(), BatchNormGroup(3, 1));
            for (int c = 0; c < 3; c++)
            {
                mean[c] += m[c] / 4;
                variance[c] += v[c] * 8 / 7 / 4;
            }
        }
        Assert.Equal(4, model.RecomputeBatchNormStatistics(batches, maxBatches: 4));
        TensorAssert.Close(mean, bn.RunningMean!, rtol: 1e-5);
        TensorAssert.Close(variance, bn.RunningVar!, rtol: 1e-5);
        Assert.Equal(0.1, bn.Momentum);
        Assert.True(bn.IsTraining && model.IsTraining);
        Assert.False(((ModeRecorder)model[0]).SawTraining);
    }

    [Fact]
    public void Precise_statistics_with_no_data_leave_the_statistics_unchanged()
    {
        var bn = Trained(new BatchNorm1d(2), new[] { 6, 2 }, 30);
        float[] mean = bn.RunningMean!.ToArray();
        Assert.Throws<ArgumentException>(() => bn.RecomputeBatchNormStatistics(Array.Empty<Tensor>()));
        Assert.Equal(mean, bn.RunningMean!.ToArray());
        Assert.False(bn.IsTraining);
    }

    /// <summary>Passes its input through and records whether it ever ran in training mode.</summary>
    private sealed class ModeRecorder : Module
    {
        public bool SawTraining { get; private set; }

        public override Tensor Forward(Tensor input)
        {
            SawTraining |= IsTraining;
            return input;
        }
    }
}
