using NormSharp.Nn;
using NormSharp.Tests.Testing;

namespace NormSharp.Tests.Nn.Normalization;

/// <summary>Batch Renormalization (Ioffe 2017) and Ghost Batch Normalization (Hoffer et al. 2017): their limits are
/// BatchNorm, their training forward follows the papers, their backward matches finite differences in float64, and
/// their evaluation form folds like BatchNorm.</summary>
public class SmallBatchNormTests
{
    private static readonly BatchRenormClipping PlainBatchNorm = new(RMax: 1, DMax: 0, WarmupSteps: 0, RMaxSteps: 0, DMaxSteps: 0);

    private static Tensor Input(int seed, params int[] shape) => Tensor.Normal(shape, 0.5, 2, DType.Float64, new RandomGenerator((ulong)seed));

    /// <summary>Runs both layers in training mode on the same three batches (float64) and asserts equal outputs,
    /// input gradients and running statistics.</summary>
    private static void AssertSameTraining(BatchNorm expected, BatchNorm actual, int[] shape, double tolerance)
    {
        expected.To(DType.Float64);
        actual.To(DType.Float64);
        foreach (var (e, a) in expected.Parameters().Zip(actual.Parameters()))
        {
            Tensor values = Tensor.Normal(e.Shape, 1, 0.3, DType.Float64, new RandomGenerator(9));
            e.CopyFrom(values);
            a.CopyFrom(values);
        }
        for (int step = 0; step < 3; step++)
        {
            Tensor x1 = Input(step, shape), x2 = x1.CloneData();
            x1.RequiresGrad = x2.RequiresGrad = true;
            Tensor y1 = expected.Forward(x1), y2 = actual.Forward(x2);
            TensorAssert.Close(y1.ToDoubleArray(), y2, tolerance, tolerance);
            Tensor projection = Input(100 + step, y1.Shape);
            (y1 * projection).Sum().Backward();
            (y2 * projection).Sum().Backward();
            TensorAssert.Close(x1.Grad!.ToDoubleArray(), x2.Grad!, tolerance, tolerance);
        }
        TensorAssert.Close(expected.RunningMean!.ToDoubleArray(), actual.RunningMean!, tolerance, tolerance);
        TensorAssert.Close(expected.RunningVar!.ToDoubleArray(), actual.RunningVar!, tolerance, tolerance);
        Assert.Equal(expected.NumBatchesTracked!.Item(), actual.NumBatchesTracked!.Item());
    }

    [Fact]
    public void BatchRenorm_with_rmax_1_and_dmax_0_is_BatchNorm()
    {
        AssertSameTraining(new BatchNorm2d(3), new BatchRenorm2d(3, clipping: PlainBatchNorm), new[] { 4, 3, 2, 2 }, 1e-12);
        AssertSameTraining(new BatchNorm1d(3), new BatchRenorm1d(3, clipping: PlainBatchNorm), new[] { 5, 3 }, 1e-12);
        AssertSameTraining(new KerasBatchNormalization(3, axis: -1), new KerasBatchNormalization(3, axis: -1, renorm: true, renormClipping: PlainBatchNorm), new[] { 2, 2, 3 }, 1e-12);
    }

    [Fact]
    public void BatchRenorm_is_BatchNorm_during_the_warm_up()
    {
        // The paper's default schedule: rmax = 1, dmax = 0 for the first 5000 steps.
        AssertSameTraining(new BatchNorm2d(3), new BatchRenorm2d(3), new[] { 4, 3, 2, 2 }, 1e-12);
        Assert.Equal((1.0, 0.0), new BatchRenormClipping().At(4999));
        Assert.Equal(2.0, new BatchRenormClipping().At(22500).RMax, 12); // halfway from 5k to 40k
        Assert.Equal(2.5, new BatchRenormClipping().At(15000).DMax, 12); // halfway from 5k to 25k
        Assert.Equal((3.0, 5.0), new BatchRenormClipping().At(40000));
    }

    [Fact]
    public void One_ghost_batch_is_BatchNorm()
    {
        AssertSameTraining(new BatchNorm2d(3), new GhostBatchNorm2d(3, virtualBatchSize: 4), new[] { 4, 3, 2, 2 }, 0);
        AssertSameTraining(new BatchNorm1d(3), new GhostBatchNorm1d(3, virtualBatchSize: 64), new[] { 5, 3 }, 0);
    }

    [Fact]
    public void Ghost_batches_are_normalized_one_by_one_with_their_own_statistics()
    {
        // 7 samples in virtual batches of 3 → ⌊7/3⌋ = 2 batches, of sizes 4 and 3, each BatchNorm with its own
        // update of the running statistics.
        var ghost = new GhostBatchNorm1d(2, virtualBatchSize: 3);
        var plain = new BatchNorm1d(2);
        ghost.To(DType.Float64);
        plain.To(DType.Float64);
        Tensor x = Input(4, 7, 2);
        Tensor y = ghost.Forward(x);
        Tensor expected = Tensor.Concat(new[] { plain.Forward(x.Narrow(0, 0, 4)), plain.Forward(x.Narrow(0, 4, 3)) });
        Assert.Equal(expected.ToDoubleArray(), y.ToDoubleArray());
        Assert.Equal(plain.RunningMean!.ToDoubleArray(), ghost.RunningMean!.ToDoubleArray());
        Assert.Equal(2.0, ghost.NumBatchesTracked!.Item());
    }

    [Fact]
    public void Precise_statistics_of_a_ghost_layer_come_from_whole_batches()
    {
        // Inference normalizes with the population's statistics, so re-estimating them must not split the batches.
        var ghost = new GhostBatchNorm1d(2, virtualBatchSize: 2);
        var plain = new BatchNorm1d(2);
        ghost.To(DType.Float64);
        plain.To(DType.Float64);
        Tensor[] batches = { Input(1, 8, 2), Input(2, 8, 2) };
        ghost.RecomputeBatchNormStatistics(batches);
        plain.RecomputeBatchNormStatistics(batches);
        Assert.Equal(plain.RunningVar!.ToDoubleArray(), ghost.RunningVar!.ToDoubleArray());
        Assert.Equal(plain.RunningMean!.ToDoubleArray(), ghost.RunningMean!.ToDoubleArray());
        ghost.Train();
        ghost.Forward(Input(3, 8, 2));
        Assert.Equal(2.0 + 4, ghost.NumBatchesTracked!.Item()); // training splits again: 8 samples → 4 virtual batches
    }

    [Fact]
    public void BatchRenorm_corrects_the_batch_normalized_values_by_clipped_r_and_d()
    {
        // One channel, running mean 1 and variance 3 (σ = 2 with ε = 1); batch 0, 2, 4, 6: μ_B = 3, σ²_B = 5, σ_B = √6.
        // r = √6/2 = 1.2247 → clipped to rmax = 1.1; d = (3 − 1)/2 = 1 → clipped to dmax = 0.5.
        var layer = new BatchRenorm1d(1, eps: 1, momentum: 0.5, affine: false, clipping: new BatchRenormClipping(1.1, 0.5, 0, 0, 0));
        layer.To(DType.Float64);
        layer.RunningMean!.CopyFrom(Tensor.FromArray(new[] { 1.0 }));
        layer.RunningVar!.CopyFrom(Tensor.FromArray(new[] { 3.0 }));
        Tensor y = layer.Forward(Tensor.FromArray(new[] { 0.0, 2, 4, 6 }, 4, 1));
        double[] expected = new[] { 0.0, 2, 4, 6 }.Select(v => (v - 3) / Math.Sqrt(6) * 1.1 + 0.5).ToArray();
        TensorAssert.Close(expected, y, 1e-14, 1e-14);
        // Then the running statistics move halfway to the batch's mean 3 and unbiased variance 20/3.
        TensorAssert.Close(new[] { 2.0 }, layer.RunningMean!, 1e-14, 0);
        TensorAssert.Close(new[] { (3 + 20.0 / 3) / 2 }, layer.RunningVar!, 1e-14, 0);
    }

    [Fact]
    public void BatchRenorm_gradient_is_BatchNorms_scaled_by_r_because_r_and_d_are_constants()
    {
        // Unclipped: y = x̂·r·γ + d·γ + β, so dL/dx is BatchNorm's with weight r·γ (Alg. 1's stop_gradient on r and d).
        var layer = new BatchRenorm1d(1, eps: 1, momentum: 0, affine: false, clipping: BatchRenormClipping.Unclipped);
        layer.To(DType.Float64);
        layer.RunningVar!.CopyFrom(Tensor.FromArray(new[] { 3.0 }));
        Tensor x = Tensor.FromArray(new[] { 0.0, 2, 4, 7 }, 4, 1);
        x.RequiresGrad = true;
        Tensor projection = Tensor.FromArray(new[] { 0.3, -1.2, 0.7, 2.0 }, 4, 1);
        (layer.Forward(x) * projection).Sum().Backward();
        double batchVariance = new[] { 0.0, 2, 4, 7 }.Select(v => (v - 3.25) * (v - 3.25)).Average();
        double r = Math.Sqrt(batchVariance + 1) / 2;
        Tensor x2 = Tensor.FromArray(new[] { 0.0, 2, 4, 7 }, 4, 1);
        x2.RequiresGrad = true;
        (Functional.BatchNorm(x2, null, null, Tensor.FromArray(new[] { r }, 1), null, training: true, eps: 1) * projection).Sum().Backward();
        TensorAssert.Close(x2.Grad!.ToDoubleArray(), x.Grad!, 1e-13, 1e-14);
    }

    public static TheoryData<string> GradientCases() => new()
    {
        "BatchRenorm2d-clipped", "BatchRenorm1d-clipped", "GhostBatchNorm2d", "GhostBatchNorm1d-uneven", "Keras-renorm-ghost-channels-last",
    };

    [Theory]
    [MemberData(nameof(GradientCases))]
    public void Backward_matches_finite_differences(string layer)
    {
        // With r and d at their clips the forward is locally x̂·r + d with constant r, d, so finite differences see
        // exactly the gradient Alg. 1 defines; momentum 0 keeps the running statistics fixed between evaluations.
        var clipping = new BatchRenormClipping(1.5, 0.5, 0, 0, 0);
        var (module, shape) = layer switch
        {
            "BatchRenorm2d-clipped" => ((BatchNorm)new BatchRenorm2d(2, momentum: 0, clipping: clipping), new[] { 3, 2, 2, 2 }),
            "BatchRenorm1d-clipped" => (new BatchRenorm1d(3, momentum: 0, clipping: clipping), new[] { 6, 3 }),
            "GhostBatchNorm2d" => (new GhostBatchNorm2d(2, virtualBatchSize: 2), new[] { 4, 2, 2, 2 }),
            "GhostBatchNorm1d-uneven" => (new GhostBatchNorm1d(3, virtualBatchSize: 2), new[] { 5, 3 }),
            "Keras-renorm-ghost-channels-last" => (new KerasBatchNormalization(3, axis: -1, momentum: 1, renorm: true, renormClipping: clipping, virtualBatchSize: 3), new[] { 6, 2, 3 }),
            _ => throw new ArgumentException(layer),
        };
        module.To(DType.Float64);
        module.RunningMean!.CopyFrom(Tensor.FromArray(Enumerable.Repeat(10.0, module.NumFeatures).ToArray()));
        module.RunningVar!.CopyFrom(Tensor.FromArray(Enumerable.Repeat(25.0, module.NumFeatures).ToArray())); // σ = 5 against batch σ ≈ 1.5–2: r and d clip
        foreach (Tensor p in module.Parameters()) p.CopyFrom(Tensor.Normal(p.Shape, 1, 0.3, DType.Float64, new RandomGenerator(2)));
        module.Train();
        double error = GradCheck.CheckModule(module, GradCheck.Random(3, shape) * 1.5 + 0.25);
        Assert.True(error <= GradCheck.Tolerance);
    }

    [Fact]
    public void Trained_layers_fold_into_the_convolution_and_linear_layers_like_BatchNorm()
    {
        var network = new NormSharp.Nn.Sequential(
            new Conv2d(1, 3, 3, padding: ConvPadding.Same, generator: new RandomGenerator(1)), new BatchRenorm2d(3, clipping: new BatchRenormClipping(2, 1, 0, 0, 0)), new ReLU(),
            new NormSharp.Nn.Flatten(), new Linear(3 * 4 * 4, 5, generator: new RandomGenerator(2)), new GhostBatchNorm1d(5, virtualBatchSize: 4));
        network.Train();
        for (int step = 0; step < 3; step++) network.Forward(Tensor.Normal(new[] { 8, 1, 4, 4 }, generator: new RandomGenerator((ulong)step)));
        network.Eval();
        Tensor x = Tensor.Normal(new[] { 6, 1, 4, 4 }, generator: new RandomGenerator(7));
        var fused = (NormSharp.Nn.Sequential)InferenceFusion.Fuse(network);
        Assert.DoesNotContain(fused.Layers, m => m is BatchNorm);
        TensorAssert.Close(network.Forward(x).ToDoubleArray(), fused.Forward(x), 1e-5, 1e-5);
    }

    [Fact]
    public void Invalid_settings_are_refused_with_the_layer_named()
    {
        Assert.Contains("GhostBatchNorm2d", Assert.Throws<ArgumentOutOfRangeException>(() => new GhostBatchNorm2d(3, virtualBatchSize: 1)).Message);
        Assert.Contains("rmax ≥ 1", Assert.Throws<ArgumentOutOfRangeException>(() => new BatchRenorm2d(3, clipping: new BatchRenormClipping(RMax: 0.5))).Message);
        Assert.Contains("warm-up", Assert.Throws<ArgumentOutOfRangeException>(() => new BatchRenorm1d(3, clipping: new BatchRenormClipping(WarmupSteps: 10, RMaxSteps: 5))).Message);
    }
}

/// <summary>Batch Renormalization inside a <see cref="TensorScope"/>, whose tensors are rented uninitialized from the
/// pool that every thread shares. In the collection that runs alone, so that no other test's arrays come between
/// the ones this test leaves in the pool and the layer that rents them.</summary>
[Collection("Parallelism")]
public class BatchRenormInScopeTests
{
    [Fact]
    public void Training_in_a_scope_is_unaffected_by_NaN_left_in_pooled_arrays()
    {
        // The batch statistics' scratch buffers (one value per channel) are rented from the pool; a diverged run
        // (the learning-rate experiment's highest rates) returns arrays full of NaN to it. BatchRenorm used to rent
        // them uninitialized and have BatchNorm compute (1 − 1)·old + batch into them: NaN from the first step.
        const int channels = 8;
        Tensor x = Tensor.Normal(new[] { 4, channels, 3, 3 }, generator: new RandomGenerator(1));
        Tensor expected = new BatchNorm2d(channels).Forward(x);
        using (TensorScope.Begin())
        {
            for (int i = 0; i < 64; i++) Tensor.Full(new[] { channels }, double.NaN);
        }
        var layer = new BatchRenorm2d(channels); // in its warm-up: rmax = 1, dmax = 0, so BatchNorm
        using (TensorScope.Begin())
        {
            Tensor y = layer.Forward(x);
            TensorAssert.Close(expected.ToArray(), y, 1e-6, 1e-6);
        }
        Assert.All(layer.RunningMean!.ToArray().Concat(layer.RunningVar!.ToArray()), v => Assert.True(float.IsFinite(v)));
    }
}
