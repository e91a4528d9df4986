using NormSharp.Data;
using NormSharp.Keras;
using NormSharp.Keras.Optimizers;
using NormSharp.Nn;
using NormSharp.Tests.Testing;
using NormSharp.Training;
using TorchAdam = NormSharp.Optim.Adam;

namespace NormSharp.Tests.KerasConventions;

public class KerasOptimizerTests
{
    // 11 elements: a whole SIMD block plus a remainder for every vector width.
    private static readonly double[] Initial = { 1.0, -2.0, 0.5, 3.0, -0.25, 0.0, 1.5, -1.0, 2.5, -3.5, 0.75 };
    private static readonly double[][] Gradients =
    {
        new[] { 0.5, -1.0, 0.25, 2.0, -0.5, 0.1, -0.3, 1e-4, 1.0, -2.0, 0.6 },
        new[] { -0.2, 0.4, 1.5, -1.0, 0.3, -0.6, 0.2, -2e-4, -0.4, 0.05, -1.1 },
        new[] { 0.7, 0.1, -0.8, 0.3, 0.0, 0.2, -0.9, 0.4, 0.5, 1.2, -0.1 },
    };

    private static Tensor Parameter(DType dtype = DType.Float64)
    {
        var p = Tensor.FromArray(Initial).To(dtype);
        p.RequiresGrad = true;
        return p;
    }

    private static Tensor Run(Func<Tensor, NormSharp.Optim.Optimizer> create, int steps, DType dtype = DType.Float64, Action<NormSharp.Optim.Optimizer, int>? beforeStep = null)
    {
        Tensor p = Parameter(dtype);
        var optimizer = create(p);
        for (int s = 0; s < steps; s++)
        {
            beforeStep?.Invoke(optimizer, s);
            p.Grad = Tensor.FromArray(Gradients[s]).To(dtype);
            optimizer.Step();
        }
        return p;
    }

    [Fact]
    public void Adam_adds_epsilon_hat_before_the_bias_correction_as_keras_does()
    {
        // Element 7 sees gradients 1e-4, then −2e-4, where ε matters. Worked by hand from Keras's rule:
        // step 1: lr_t = 1e-3·√(1 − 0.999)/(1 − 0.9) = 3.16227766e-4, m = 1e-5, √v = 3.16227766e-6,
        //         Δ = lr_t·m/(√v + 1e-7) = 9.693465699682853e-4;
        // step 2: Δ = −3.6099773746821936e-4.
        Tensor p = Run(p => new Adam(new[] { p }), 2);
        Assert.Equal(-1.0 - 9.693465699682853e-4 + 3.6099773746821936e-4, p.ToDoubleArray()[7], 15);
        // PyTorch's placement (ε after the bias correction) moves the same element to −1 − 9.99e-4 + … at step 1.
        Tensor torch = Run(p => new TorchAdam(new[] { p }, epsilon: 1e-7), 1);
        Assert.Equal(-1.0 - 1e-2 * 1e-5 / (1e-4 + 1e-7), torch.ToDoubleArray()[7], 15);
    }

    [Fact]
    public void Adam_has_kerass_defaults()
    {
        var adam = new Adam(new[] { Parameter() });
        Assert.Equal((1e-3, 0.9, 0.999, 1e-7, false, 0.0), (adam.LearningRate, adam.Beta1, adam.Beta2, adam.Epsilon, adam.AmsGrad, adam.ParameterGroups[0].WeightDecay));
        Assert.Equal(0.004, new AdamW(new[] { Parameter() }).ParameterGroups[0].WeightDecay);
        var rms = new RMSprop(new[] { Parameter() });
        Assert.Equal((1e-3, 0.9, 0.0, 1e-7, false), (rms.LearningRate, rms.Rho, rms.Momentum, rms.Epsilon, rms.Centered));
        var sgd = new SGD(new[] { Parameter() });
        Assert.Equal((0.01, 0.0, false), (sgd.LearningRate, sgd.Momentum, sgd.Nesterov));
    }

    [Theory]
    [InlineData(false, 0.0)]
    [InlineData(true, 0.0)]
    [InlineData(false, 0.004)]
    public void Adam_and_AdamW_follow_kerass_rule_for_every_element(bool amsGrad, double weightDecay)
    {
        var expected = (double[])Initial.Clone();
        var m = new double[expected.Length];
        var v = new double[expected.Length];
        var vHat = new double[expected.Length];
        double lr = 2e-3;
        for (int t = 1; t <= 3; t++)
            for (int i = 0; i < expected.Length; i++)
            {
                double g = Gradients[t - 1][i];
                expected[i] -= expected[i] * weightDecay * lr;
                m[i] += (g - m[i]) * 0.1;
                v[i] += (g * g - v[i]) * 0.001;
                vHat[i] = Math.Max(vHat[i], v[i]);
                double alpha = lr * Math.Sqrt(1 - Math.Pow(0.999, t)) / (1 - Math.Pow(0.9, t));
                expected[i] -= m[i] * alpha / (Math.Sqrt(amsGrad ? vHat[i] : v[i]) + 1e-7);
            }
        Tensor p = Run(p => weightDecay > 0 ? new AdamW(new[] { p }, lr, weightDecay, amsGrad: amsGrad) : new Adam(new[] { p }, lr, amsGrad: amsGrad), 3);
        TensorAssert.Close(expected, p, rtol: 1e-14, atol: 1e-15);
        Tensor p32 = Run(p => weightDecay > 0 ? new AdamW(new[] { p }, lr, weightDecay, amsGrad: amsGrad) : new Adam(new[] { p }, lr, amsGrad: amsGrad), 3, DType.Float32);
        TensorAssert.Close(expected, p32, rtol: 1e-6, atol: 1e-6);
    }

    [Theory]
    [InlineData(0.0, false)]
    [InlineData(0.9, false)]
    [InlineData(0.9, true)]
    public void Sgd_puts_the_learning_rate_into_the_velocity_as_keras_does(double momentum, bool nesterov)
    {
        // A learning rate that changes every step tells Keras's v ← μv − lr·g from PyTorch's b ← μb + g; p −= lr·b.
        double[] rates = { 0.1, 0.05, 0.02 };
        var expected = (double[])Initial.Clone();
        var velocity = new double[expected.Length];
        for (int s = 0; s < 3; s++)
            for (int i = 0; i < expected.Length; i++)
            {
                double g = Gradients[s][i], lr = rates[s];
                velocity[i] = momentum * velocity[i] - lr * g;
                expected[i] += momentum == 0 ? -lr * g : nesterov ? momentum * velocity[i] - lr * g : velocity[i];
            }
        Tensor p = Run(p => new SGD(new[] { p }, rates[0], momentum, nesterov), 3, beforeStep: (o, s) => o.LearningRate = rates[s]);
        TensorAssert.Close(expected, p, rtol: 1e-14, atol: 1e-15);
        if (momentum > 0)
        {
            Tensor torch = Run(p => new NormSharp.Optim.SGD(new[] { p }, rates[0], momentum, nesterov: nesterov), 3, beforeStep: (o, s) => o.LearningRate = rates[s]);
            Assert.True(Math.Abs(torch.ToDoubleArray()[0] - expected[0]) > 1e-3, "PyTorch's momentum form should differ once the rate changes");
        }
    }

    [Theory]
    [InlineData(0.0, false)]
    [InlineData(0.5, false)]
    [InlineData(0.0, true)]
    [InlineData(0.5, true)]
    public void RmsProp_keeps_epsilon_inside_the_square_root_as_keras_does(double momentum, bool centered)
    {
        var expected = (double[])Initial.Clone();
        var velocity = new double[expected.Length];
        var average = new double[expected.Length];
        var moment = new double[expected.Length];
        const double lr = 1e-2, rho = 0.9, eps = 1e-7;
        for (int s = 0; s < 3; s++)
            for (int i = 0; i < expected.Length; i++)
            {
                double g = Gradients[s][i];
                velocity[i] = rho * velocity[i] + (1 - rho) * g * g;
                average[i] = rho * average[i] + (1 - rho) * g;
                double denominator = centered ? velocity[i] - average[i] * average[i] + eps : velocity[i] + eps;
                double increment = lr * g / Math.Sqrt(denominator);
                moment[i] = momentum * moment[i] + increment;
                expected[i] -= momentum > 0 ? moment[i] : increment;
            }
        Tensor p = Run(p => new RMSprop(new[] { p }, lr, rho, momentum, eps, centered), 3);
        TensorAssert.Close(expected, p, rtol: 1e-13, atol: 1e-15);
    }

    [Fact]
    public void Weight_decay_shrinks_before_the_update_in_every_keras_optimizer()
    {
        // Keras: p ← p − p·λ·lr, then the rule. With a zero gradient SGD leaves only the decay.
        Tensor p = Parameter();
        var sgd = new SGD(new[] { p }, 0.1, weightDecay: 0.5);
        p.Grad = Tensor.Zeros(new[] { Initial.Length }, DType.Float64);
        sgd.Step();
        TensorAssert.Close(Initial.Select(x => x * (1 - 0.05)).ToArray(), p, rtol: 1e-15, atol: 0);
    }

    [Fact]
    public void Unknown_optimizer_name_lists_the_valid_ones()
    {
        var e = Assert.Throws<ArgumentException>(() => KerasOptimizer.Create("adagrad", new[] { Parameter() }));
        Assert.Contains("adam, adamw, sgd, rmsprop", e.Message);
    }

    [Fact]
    public void State_dict_uses_kerass_names_and_resumes_exactly()
    {
        Tensor straight = Run(p => new Adam(new[] { p }), 3);
        Tensor p = Parameter();
        var first = new Adam(new[] { p });
        p.Grad = Tensor.FromArray(Gradients[0]);
        first.Step();
        var state = first.StateDict();
        Assert.Contains("state.0.momentum", state.Keys);
        Assert.Contains("state.0.velocity", state.Keys);
        var second = new Adam(new[] { p });
        second.LoadStateDict(state);
        for (int s = 1; s < 3; s++)
        {
            p.Grad = Tensor.FromArray(Gradients[s]);
            second.Step();
        }
        Assert.Equal(straight.ToDoubleArray(), p.ToDoubleArray());
    }

    /// <summary>Keras's Adam rule written out element by element in float64, independently of the library:
    /// m ← m + (g − m)(1 − β1), v ← v + (g² − v)(1 − β2), w ← w − m·lr_t/(√v + ε̂), lr_t = lr·√(1 − β2ᵗ)/(1 − β1ᵗ)
    /// (keras/src/optimizers/adam.py), with Keras's defaults. <c>torchPlacement</c> puts ε after the bias correction
    /// instead (torch.optim.Adam), for contrast.</summary>
    private sealed class KerasAdamReference(double[][] weights, bool torchPlacement = false)
    {
        private readonly double[][] _m = weights.Select(w => new double[w.Length]).ToArray();
        private readonly double[][] _v = weights.Select(w => new double[w.Length]).ToArray();
        private int _t;

        public double[][] Weights { get; } = weights;

        public void Step(double[][] gradients)
        {
            _t++;
            double alpha = 1e-3 * Math.Sqrt(1 - Math.Pow(0.999, _t)) / (1 - Math.Pow(0.9, _t));
            double epsilon = torchPlacement ? 1e-7 * Math.Sqrt(1 - Math.Pow(0.999, _t)) : 1e-7;
            for (int k = 0; k < Weights.Length; k++)
                for (int i = 0; i < Weights[k].Length; i++)
                {
                    double g = gradients[k][i];
                    _m[k][i] += (g - _m[k][i]) * (1 - 0.9);
                    _v[k][i] += (g * g - _v[k][i]) * (1 - 0.999);
                    Weights[k][i] -= _m[k][i] * alpha / (Math.Sqrt(_v[k][i]) + epsilon);
                }
        }
    }

    private static List<(Tensor Images, int[] Labels)> EightDigitBatches()
    {
        ImageClassificationDataset digits = Datasets.Load(DatasetCatalog.EmbeddedName, new DatasetOptions { AllowDownload = false }).Train;
        return new DataLoader(digits, 32, shuffle: true, seed: 7).Batches(0).Take(8).Select(b => (b.Images.CloneData(), b.Labels)).ToList();
    }

    private static double[][] Values(IEnumerable<Tensor> tensors) => tensors.Select(t => t.ToDoubleArray()).ToArray();

    /// <summary>
    /// The seed CNN compiled as Keras would (<c>Compile("adam", "categorical_crossentropy")</c>), run in float64 so that
    /// rounding cannot hide a wrong rule, takes 8 steps on one-hot targets; a second float64 copy of the network,
    /// updated by the independent <see cref="KerasAdamReference"/> from its own gradients, must stay equal to it.
    /// </summary>
    [Fact]
    public void Seed_cnn_adam_steps_in_float64_equal_an_independent_implementation_of_kerass_rule()
    {
        var model = SeedModels.Cnn(generator: new RandomGenerator(3));
        model.Network.To(DType.Float64);
        model.Compile("adam", "categorical_crossentropy");
        var reference = (NormSharp.Nn.Sequential)SeedModels.Cnn(generator: new RandomGenerator(3)).Network;
        reference.To(DType.Float64);
        Tensor[] parameters = reference.Parameters().ToArray();
        var rule = new KerasAdamReference(Values(parameters));
        model.Network.Train();
        reference.Train();
        foreach (var (images, labels) in EightDigitBatches())
        {
            Tensor x = images.To(DType.Float64);
            double loss = model.TrainOnBatch(x, LabelEncoding.OneHot(labels, 10));
            foreach (Tensor p in parameters) p.Grad = null;
            for (int i = 0; i < reference.Count - 1; i++) x = reference[i].Forward(x); // the logits before the softmax
            Tensor referenceLoss = Functional.CrossEntropy(x, labels);
            referenceLoss.Backward();
            // Within 1e-12, not "to 12 decimal places", which fails on a rounding boundary: the two networks' losses
            // come from cross-entropy's two paths (class indices, probabilities), whose gradients differ in the last bits.
            Assert.Equal(referenceLoss.Item(), loss, 1e-12);
            rule.Step(Values(parameters.Select(p => p.Grad!)));
            using (Tensor.NoGrad())
                for (int k = 0; k < parameters.Length; k++) parameters[k].CopyFrom(Tensor.FromArray(rule.Weights[k], parameters[k].Shape));
        }
        double[][] actual = Values(model.Network.Parameters());
        // A millionth of one step (lr 1e-3): any other rule (ε after the bias correction moves the first step by 4.5 %)
        // is far outside.
        for (int k = 0; k < actual.Length; k++)
            Assert.True(MaxDifference(actual[k], rule.Weights[k]) < 1e-9, $"parameter {k}: largest difference {MaxDifference(actual[k], rule.Weights[k]):E2}");
    }

    /// <summary>
    /// The float32 seed CNN from <c>Compile("adam", "categorical_crossentropy")</c>: after each of 8 steps its weights
    /// equal Keras's rule (<see cref="KerasAdamReference"/>, float64) applied to the same gradients, to float32
    /// rounding. (Two whole float32 and float64 trajectories drift apart because training itself amplifies rounding,
    /// so the rule is compared on shared gradients here and exactly in float64 above.) PyTorch's ε placement, applied
    /// to the same gradients, is far outside that tolerance in the Dense(128) bias.
    /// </summary>
    [Fact]
    public void Seed_cnn_float32_adam_steps_equal_kerass_rule_on_the_same_gradients_to_float32_rounding()
    {
        var model = SeedModels.Cnn(generator: new RandomGenerator(3));
        model.Compile("adam", "categorical_crossentropy");
        Tensor[] parameters = model.Network.Parameters().ToArray();
        var rule = new KerasAdamReference(Values(parameters));
        var torch = new KerasAdamReference(Values(parameters), torchPlacement: true);
        int denseBias = model.Network.NamedParameters().Select(p => p.Name).ToList().IndexOf("13.bias");
        model.Network.Train();
        double worst = 0, torchDenseBias = 0;
        foreach (var (images, labels) in EightDigitBatches())
        {
            model.TrainOnBatch(images, LabelEncoding.OneHot(labels, 10));
            double[][] gradients = Values(parameters.Select(p => p.Grad!)); // the step's gradients stay until the next ZeroGrad
            rule.Step(gradients);
            torch.Step(gradients);
            double[][] actual = Values(parameters);
            for (int k = 0; k < actual.Length; k++) worst = Math.Max(worst, MaxDifference(actual[k], rule.Weights[k]));
            torchDenseBias = Math.Max(torchDenseBias, MaxDifference(torch.Weights[denseBias], rule.Weights[denseBias]));
            for (int k = 0; k < actual.Length; k++) rule.Weights[k] = actual[k]; // next step starts from the model's float32 weights
            for (int k = 0; k < actual.Length; k++) torch.Weights[k] = (double[])actual[k].Clone();
        }
        // Weights lie within ±0.5, where float32's spacing is at most 6e-8; a step is ~1e-3.
        Assert.True(worst < 3e-7, $"largest difference from Keras's rule over 8 steps: {worst:E2}");
        Assert.True(torchDenseBias > 30 * worst, $"PyTorch's ε placement should move the Dense(128) bias visibly: {torchDenseBias:E2} vs {worst:E2}");
    }

    private static double MaxDifference(double[] a, double[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max();
}
