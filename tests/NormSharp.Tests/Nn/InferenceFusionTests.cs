using NormSharp.Data;
using NormSharp.Nn;
using static NormSharp.Tests.Testing.NormalizationReference;
using NnSequential = NormSharp.Nn.Sequential;
using SeedModels = NormSharp.Keras.SeedModels;

namespace NormSharp.Tests.Nn;

/// <summary>The inference copy of a network: BatchNorm folded, ReLU fused, outputs unchanged.</summary>
public class InferenceFusionTests
{
    /// <summary>Gives every BatchNorm in <paramref name="network"/> non-trivial running statistics (and γ, β when it
    /// has them), then puts the network in evaluation mode.</summary>
    private static TModule WithTrainedStatistics<TModule>(TModule network, ulong seed) where TModule : Module
    {
        var generator = new RandomGenerator(seed);
        foreach (BatchNorm bn in network.NamedModules().Select(m => m.Module).OfType<BatchNorm>().Where(bn => bn.TrackRunningStats))
        {
            int[] shape = { bn.NumFeatures };
            bn.RunningMean!.CopyFrom(Tensor.Normal(shape, 0, 0.5, generator: generator));
            bn.RunningVar!.CopyFrom(Tensor.Uniform(shape, 0.3, 3, generator: generator));
            bn.Weight?.CopyFrom(Tensor.Normal(shape, 1, 0.3, generator: generator));
            bn.Bias?.CopyFrom(Tensor.Normal(shape, 0, 0.3, generator: generator));
        }
        network.Eval();
        return network;
    }

    private static Tensor Images(int batch, int seed, DType dtype = DType.Float32) =>
        Tensor.Normal(new[] { batch, 1, 28, 28 }, 0, 1, dtype, new RandomGenerator((ulong)seed));

    /// <summary>The seed CNN as PyTorch writes it (and as the libtorch benchmark builds it), without the softmax.</summary>
    private static NnSequential TorchSeedCnn(RandomGenerator generator) => new(
        new Conv2d(1, 32, 3, padding: 1, generator: generator), new BatchNorm2d(32), new ReLU(), new MaxPool2d(2),
        new Conv2d(32, 64, 3, padding: 1, generator: generator), new BatchNorm2d(64), new ReLU(), new MaxPool2d(2),
        new Conv2d(64, 128, 3, padding: 1, generator: generator), new BatchNorm2d(128), new ReLU(), new MaxPool2d(2),
        new Flatten(), new Linear(1152, 128, generator: generator), new ReLU(), new BatchNorm1d(128),
        new Linear(128, 10, generator: generator));

    private static double[] Run(Module network, Tensor x)
    {
        using (Tensor.NoGrad()) return network.Forward(x).ToDoubleArray();
    }

    [Fact]
    public void Fused_seed_cnn_matches_the_unfused_eval_forward()
    {
        var model = SeedModels.Cnn(generator: new RandomGenerator(1));
        var network = WithTrainedStatistics((NnSequential)model.Network, 2);
        var fused = (NnSequential)InferenceFusion.Fuse(network);
        Tensor x = Images(6, 3);

        // Conv→BN ×3 fused, each ReLU kept to run with the max pooling after it (pools kept), Dense(128)→ReLU fused,
        // the BN after that ReLU folded into Dense(10).
        Assert.Equal(new[] { "FusedConv2d", "ReLU", "MaxPool2d", "FusedConv2d", "ReLU", "MaxPool2d", "FusedConv2d", "ReLU", "MaxPool2d", "Flatten", "FusedLinear", "FusedLinear", "Softmax" },
            fused.Layers.Select(m => m.GetType().Name));
        Assert.Equal("Conv2d → KerasBatchNormalization", ((FusedConv2d)fused[0]).FusedFrom);
        Assert.False(((FusedConv2d)fused[0]).AppliesRelu);
        Assert.Equal("Linear → ReLU", ((FusedLinear)fused[10]).FusedFrom);
        Assert.Equal("KerasBatchNormalization → Linear", ((FusedLinear)fused[11]).FusedFrom);
        Assert.Same(network[2], fused[1]);
        Assert.Same(network[3], fused[2]);

        // Compare logits (before the softmax, which would hide differences) and probabilities.
        var logits = new NnSequential(network.Layers.SkipLast(1).ToArray());
        var fusedLogits = new NnSequential(fused.Layers.SkipLast(1).ToArray());
        double[] expected = Run(logits, x);
        Assert.True(expected.Max(Math.Abs) > 1, "the test needs non-trivial logits");
        Assert.True(MaxRelativeError(expected, Run(fusedLogits, x)) <= 1e-5);
        Assert.True(MaxRelativeError(Run(network, x), Run(fused, x)) <= 1e-5);
    }

    [Fact]
    public void Fused_pytorch_style_seed_cnn_matches_in_float32_and_is_exact_algebra_in_float64()
    {
        var network = WithTrainedStatistics(TorchSeedCnn(new RandomGenerator(4)), 5);
        Tensor x = Images(4, 6);
        Assert.True(MaxRelativeError(Run(network, x), Run(InferenceFusion.Fuse(network), x)) <= 1e-5);

        // In float64 only rounding differs, so the folded and fused network agrees to far below float32's precision.
        network.To(DType.Float64);
        Tensor x64 = Images(4, 6, DType.Float64);
        Module fused64 = InferenceFusion.Fuse(network);
        Assert.Equal(DType.Float64, ((FusedConv2d)((NnSequential)fused64)[0]).Weight.DType);
        Assert.True(MaxRelativeError(Run(network, x64), Run(fused64, x64)) <= 1e-12);
    }

    [Fact]
    public void Convolutions_without_bias_and_BatchNorm_without_affine_parameters_fold()
    {
        var g = new RandomGenerator(7);
        var network = WithTrainedStatistics(new NnSequential(
            new Conv2d(3, 8, 3, bias: false, generator: g), new BatchNorm2d(8, affine: false), new ReLU(),
            new Conv2d(8, 6, (3, 2), stride: 2, padding: 1, dilation: (1, 2), bias: false, generator: g), new BatchNorm2d(6, eps: 1e-3),
            new Conv2d(6, 4, 1, generator: g), new ReLU(),
            new Flatten(), new Linear(64, 12, bias: false, generator: g), new BatchNorm1d(12, affine: false), new ReLU(),
            new Linear(12, 5, bias: false, generator: g)), 8);
        var fused = (NnSequential)InferenceFusion.Fuse(network);

        Assert.Equal(new[] { "Conv2d → BatchNorm2d → ReLU", "Conv2d → BatchNorm2d", "Conv2d → ReLU", "", "Linear → BatchNorm1d → ReLU", "Linear" },
            fused.Layers.Select(m => (m as FusedLayer)?.FusedFrom ?? ""));
        Assert.Null(((FusedLinear)fused[5]).Bias); // nothing folded into it, and it had no bias
        Tensor x = Tensor.Normal(new[] { 5, 3, 10, 10 }, generator: new RandomGenerator(9));
        Assert.True(MaxRelativeError(Run(network, x), Run(fused, x)) <= 1e-5);
    }

    [Fact]
    public void Unrecognised_layers_are_kept_and_nested_sequentials_are_fused()
    {
        var g = new RandomGenerator(10);
        var groupNorm = new GroupNorm(2, 8);
        var batchStatisticsOnly = new BatchNorm1d(16, trackRunningStats: false);
        var finalBatchNorm = new BatchNorm1d(4);
        var network = WithTrainedStatistics(new NnSequential(
            new Conv2d(2, 8, 3, padding: 1, generator: g), groupNorm, new LeakyReLU(),
            new NnSequential(new Conv2d(8, 8, 3, generator: g), new BatchNorm2d(8), new ReLU(), new AvgPool2d(2)),
            new Flatten(), new Dropout(0.5),
            new Linear(72, 16, generator: g), batchStatisticsOnly, new ReLU(),
            new BatchNorm1d(16), new Tanh(), new Linear(16, 4, generator: g), finalBatchNorm), 11);
        var fused = (NnSequential)InferenceFusion.Fuse(network);

        Assert.Same(groupNorm, fused[1]);
        Assert.Same(batchStatisticsOnly, fused[7]); // uses batch statistics even in evaluation mode: not an affine map
        Assert.Same(network[9], fused[9]); // followed by Tanh, not by a Linear
        var inner = Assert.IsType<NnSequential>(fused[3]);
        Assert.NotSame(network[3], inner);
        Assert.Equal(new[] { "FusedConv2d", "AvgPool2d" }, inner.Layers.Select(m => m.GetType().Name));
        Assert.Equal("Linear → BatchNorm1d", ((FusedLinear)fused[11]).FusedFrom);
        Assert.Equal(12, fused.Count);

        Tensor x = Tensor.Normal(new[] { 4, 2, 8, 8 }, generator: new RandomGenerator(12));
        Assert.True(MaxRelativeError(Run(network, x), Run(fused, x)) <= 1e-5);
    }

    [Fact]
    public void Folding_forward_into_the_next_Linear_is_the_affine_map_of_BatchNorm()
    {
        // Linear(BN(h)) for h of shape (N, C), in float64: W·(s⊙h + t) + b = (W·diag(s))·h + (b + W·t).
        var bn = WithTrainedStatistics(new BatchNorm1d(5, eps: 0.1), 13);
        var linear = new Linear(5, 3, generator: new RandomGenerator(14));
        bn.To(DType.Float64);
        linear.To(DType.Float64);
        Tensor h = Tensor.Normal(new[] { 7, 5 }, 0, 2, DType.Float64, new RandomGenerator(15));
        var (w, b) = BatchNormFolding.FoldIntoFollowing(linear.Weight, linear.Bias, bn);
        Assert.Equal(new[] { 3, 5 }, w.Shape);
        double[] expected = Run(new NnSequential(bn, linear), h);
        Assert.True(MaxRelativeError(expected, Functional.Linear(h, w, b).ToDoubleArray()) <= 1e-13);
        Assert.Contains("(3, 4)", Assert.Throws<ArgumentException>(() => BatchNormFolding.FoldIntoFollowing(Tensor.Zeros(new[] { 3, 4 }), null, bn)).Message);
    }

    [Fact]
    public void The_fused_copy_shares_no_weights_with_the_original()
    {
        var g = new RandomGenerator(16);
        var network = WithTrainedStatistics(new NnSequential(new Conv2d(1, 4, 3, generator: g), new ReLU(), new Flatten(), new Linear(36, 3, generator: g)), 17);
        Module fused = InferenceFusion.Fuse(network);
        Tensor x = Tensor.Normal(new[] { 2, 1, 5, 5 }, generator: new RandomGenerator(18));
        double[] before = Run(fused, x);
        foreach (Tensor p in network.Parameters()) p.CopyFrom(Tensor.Zeros(p.Shape));
        Assert.Equal(before, Run(fused, x));
        Assert.Empty(fused.Parameters()); // folded tensors are buffers: nothing for an optimizer to train
    }

    [Fact]
    public void A_network_in_training_mode_is_refused_with_the_layer_named()
    {
        var network = new NnSequential(new Conv2d(1, 4, 3), new BatchNorm2d(4), new ReLU());
        var whole = Assert.Throws<ArgumentException>(() => InferenceFusion.Fuse(network));
        Assert.Contains("layer '0', Conv2d(1, 4, kernel_size=(3, 3)", whole.Message);
        Assert.Contains("training mode", whole.Message);

        network.Eval();
        network[1].Train();
        var one = Assert.Throws<ArgumentException>(() => InferenceFusion.Fuse(network));
        Assert.Contains("layer '1', BatchNorm2d(4, eps=1e-05", one.Message);
        Assert.Contains("Eval()", one.Message);
    }

    [Fact]
    public void A_fused_layer_with_a_folded_BatchNorm_needs_the_batched_layout()
    {
        var network = WithTrainedStatistics(new NnSequential(new Conv2d(2, 3, 3), new BatchNorm2d(3), new ReLU()), 19);
        Module fused = InferenceFusion.Fuse(network);
        var error = Assert.Throws<ArgumentException>(() => fused.Forward(Tensor.Zeros(new[] { 2, 5, 5 })));
        Assert.Contains("(2, 5, 5)", error.Message);
        Assert.Contains("FusedConv2d(2, 3", error.Message);
        // Without a folded BatchNorm an unbatched input is fine, as for Conv2d.
        var plain = InferenceFusion.Fuse(new NnSequential(new Conv2d(2, 3, 3), new ReLU()).Eval());
        Assert.Equal(new[] { 3, 3, 3 }, plain.Forward(Tensor.Zeros(new[] { 2, 5, 5 })).Shape);
    }

    [Fact]
    public void Evaluate_and_predict_through_the_fused_copy_agree_with_the_unfused_network()
    {
        var data = Datasets.Load(DatasetCatalog.EmbeddedName, new DatasetOptions { AllowDownload = false }).Test.Subset(Enumerable.Range(0, 200).ToArray());
        var model = SeedModels.Cnn(generator: new RandomGenerator(20));
        WithTrainedStatistics(model.Network, 21).Train();
        model.Compile(new NormSharp.Optim.Adam(model.Network.Parameters()), "categorical_crossentropy", "accuracy");

        Assert.True(model.FuseForInference);
        var fused = model.Evaluate(data, batchSize: 64);
        Tensor fusedProbabilities = model.Predict(data.ToTensor(), batchSize: 64);
        Assert.True(model.Network.IsTraining); // the mode is restored
        model.FuseForInference = false;
        var unfused = model.Evaluate(data, batchSize: 64);
        Tensor probabilities = model.Predict(data.ToTensor(), batchSize: 64);

        Assert.Equal(unfused["accuracy"], fused["accuracy"], 1e-5);
        Assert.True(Math.Abs(fused["loss"] - unfused["loss"]) <= 1e-5 * Math.Max(1, Math.Abs(unfused["loss"])));
        Assert.True(MaxRelativeError(probabilities.ToDoubleArray(), fusedProbabilities.ToDoubleArray()) <= 1e-5);
    }

    [Fact]
    public void A_transient_copy_gives_the_same_bits_and_shares_only_the_weights_it_does_not_fold()
    {
        var network = WithTrainedStatistics(TorchSeedCnn(new RandomGenerator(30)), 31);
        Tensor x = Images(6, 32);
        Module owned = InferenceFusion.Fuse(network);
        double[] expected = Run(owned, x);
        using (TensorScope.Begin())
        {
            var transient = (NnSequential)InferenceFusion.Fuse(network, transient: true);
            Assert.Equal(expected, Run(transient, x));
            // Linear(1152, 128) is followed by a ReLU, so it folds nothing and is shared; the convolutions fold their BatchNorm.
            var firstLinear = network.Layers.OfType<Linear>().First();
            var sharedLayer = transient.Layers.OfType<FusedLinear>().First();
            Assert.Same(firstLinear.Weight, sharedLayer.Weight);
            Assert.NotSame(firstLinear.Weight, ((NnSequential)owned).Layers.OfType<FusedLinear>().First().Weight);
            Assert.NotSame(network.Layers.OfType<Conv2d>().First().Weight, transient.Layers.OfType<FusedConv2d>().First().Weight);
        }
        Assert.Equal(expected, Run(owned, x));
    }

    [Fact]
    public void Predict_results_keep_their_values_after_later_calls_reuse_the_pooled_buffers()
    {
        var model = SeedModels.Cnn(generator: new RandomGenerator(40));
        WithTrainedStatistics(model.Network, 41);
        Tensor first = Images(10, 42), second = Images(10, 43);
        Tensor outside = model.Predict(first, batchSize: 4);
        double[] expected = outside.ToDoubleArray();
        for (int call = 0; call < 3; call++) model.Predict(second, batchSize: 4);
        Assert.Equal(expected, outside.ToDoubleArray());
        using (TensorScope.Begin())
        {
            Tensor inside = model.Predict(first, batchSize: 10);
            for (int call = 0; call < 3; call++) model.Predict(second, batchSize: 10);
            Assert.Equal(expected, inside.ToDoubleArray());
        }
        Assert.Equal(expected, outside.ToDoubleArray());
    }
}
