using NormSharp.Optim;
using NormSharp.Tests.Testing;

namespace NormSharp.Tests.Optim;

public class OptimizerTests
{
    // 11 elements: a whole SIMD block plus a remainder for every vector width.
    private static readonly double[] Initial = { 1.0, -2.0, 0.5, 3.0, -0.25, 0.0, 1.5, -1.0, 2.5, -3.5, 0.75 };
    private static readonly double[][] Gradients =
    {
        new[] { 0.5, -1.0, 0.25, 2.0, -0.5, 0.1, -0.3, 0.0, 1.0, -2.0, 0.6 },
        new[] { -0.2, 0.4, 1.5, -1.0, 0.3, -0.6, 0.2, 0.9, -0.4, 0.05, -1.1 },
        new[] { 0.7, 0.1, -0.8, 0.3, 0.0, 0.2, -0.9, 0.4, 0.5, 1.2, -0.1 },
    };

    private static Tensor Parameter(DType dtype = DType.Float64)
    {
        var p = Tensor.FromArray(Initial).To(dtype);
        p.RequiresGrad = true;
        return p;
    }

    private static void RunSteps(Optimizer optimizer, Tensor p, int steps, int firstStep = 0)
    {
        for (int s = firstStep; s < firstStep + steps; s++)
        {
            p.Grad = Tensor.FromArray(Gradients[s]).To(p.DType);
            optimizer.Step();
        }
    }

    // ---- references: torch.optim formulas, element by element in double ---------------------------------------

    private static double[] ReferenceSgd(int steps, double lr, double momentum, double dampening, double weightDecay, bool nesterov)
    {
        double[] p = (double[])Initial.Clone();
        double[] buf = new double[p.Length];
        for (int s = 0; s < steps; s++)
            for (int i = 0; i < p.Length; i++)
            {
                double d = Gradients[s][i] + weightDecay * p[i];
                if (momentum != 0)
                {
                    buf[i] = s == 0 ? d : momentum * buf[i] + (1 - dampening) * d;
                    d = nesterov ? d + momentum * buf[i] : buf[i];
                }
                p[i] -= lr * d;
            }
        return p;
    }

    private static double[] ReferenceAdam(int steps, double lr, double beta1, double beta2, double eps, double weightDecay, bool decoupled, bool amsgrad)
    {
        double[] p = (double[])Initial.Clone();
        double[] m = new double[p.Length], v = new double[p.Length], vMax = new double[p.Length];
        for (int s = 0; s < steps; s++)
        {
            int t = s + 1;
            for (int i = 0; i < p.Length; i++)
            {
                double g = Gradients[s][i];
                if (decoupled) p[i] *= 1 - lr * weightDecay;
                else g += weightDecay * p[i];
                m[i] = beta1 * m[i] + (1 - beta1) * g;
                v[i] = beta2 * v[i] + (1 - beta2) * g * g;
                vMax[i] = Math.Max(vMax[i], v[i]);
                double mHat = m[i] / (1 - Math.Pow(beta1, t));
                double vHat = (amsgrad ? vMax[i] : v[i]) / (1 - Math.Pow(beta2, t));
                p[i] -= lr * mHat / (Math.Sqrt(vHat) + eps);
            }
        }
        return p;
    }

    // ---- SGD ---------------------------------------------------------------------------------------------------

    [Fact]
    public void Sgd_takes_plain_gradient_steps()
    {
        var p = Parameter();
        RunSteps(new SGD(new[] { p }, learningRate: 0.1), p, 2);
        TensorAssert.Close(ReferenceSgd(2, 0.1, 0, 0, 0, false), p, rtol: 1e-15, atol: 1e-15);
        Assert.Equal(1.0 - 0.1 * (0.5 - 0.2), p.ToDoubleArray()[0], 15);
    }

    [Fact]
    public void Sgd_momentum_buffer_starts_at_the_first_gradient()
    {
        var p = Parameter();
        RunSteps(new SGD(new[] { p }, 0.1, momentum: 0.9, dampening: 0.1, weightDecay: 0.01), p, 2);
        TensorAssert.Close(ReferenceSgd(2, 0.1, 0.9, 0.1, 0.01, false), p, rtol: 1e-14, atol: 1e-15);
        // By hand for element 0: d1 = 0.5 + 0.01·1 = 0.51, b1 = 0.51, p1 = 1 − 0.051 = 0.949;
        // d2 = −0.2 + 0.00949, b2 = 0.9·0.51 + 0.9·d2 = 0.287541, p2 = 0.949 − 0.0287541.
        Assert.Equal(0.9202459, p.ToDoubleArray()[0], 12);
    }

    [Fact]
    public void Sgd_nesterov_with_weight_decay_matches_pytorch_formulas()
    {
        var p = Parameter();
        RunSteps(new SGD(new[] { p }, 0.05, momentum: 0.8, weightDecay: 0.1, nesterov: true), p, 3);
        TensorAssert.Close(ReferenceSgd(3, 0.05, 0.8, 0, 0.1, true), p, rtol: 1e-14, atol: 1e-15);
    }

    [Fact]
    public void Sgd_updates_float32_parameters_to_float_precision()
    {
        var p = Parameter(DType.Float32);
        RunSteps(new SGD(new[] { p }, 0.1, momentum: 0.9), p, 3);
        TensorAssert.Close(ReferenceSgd(3, 0.1, 0.9, 0, 0, false), p, rtol: 1e-6, atol: 1e-6);
    }

    // ---- Adam and AdamW ------------------------------------------------------------------------------------------

    [Fact]
    public void Adam_matches_pytorch_formulas_with_bias_correction()
    {
        var p = Parameter();
        RunSteps(new Adam(new[] { p }, learningRate: 0.01), p, 2);
        TensorAssert.Close(ReferenceAdam(2, 0.01, 0.9, 0.999, 1e-8, 0, false, false), p, rtol: 1e-13, atol: 1e-15);
        // The first step moves every element with a non-zero gradient by lr·sign(g) (up to ε): m̂ = g, v̂ = g².
        var q = Parameter();
        RunSteps(new Adam(new[] { q }, learningRate: 0.01), q, 1);
        Assert.Equal(1.0 - 0.01, q.ToDoubleArray()[0], 9);
        Assert.Equal(-2.0 + 0.01, q.ToDoubleArray()[1], 9);
    }

    [Fact]
    public void Adam_with_l2_weight_decay_and_amsgrad_matches_pytorch_formulas()
    {
        var p = Parameter();
        RunSteps(new Adam(new[] { p }, 0.02, beta1: 0.8, beta2: 0.99, epsilon: 1e-6, weightDecay: 0.1, amsGrad: true), p, 3);
        TensorAssert.Close(ReferenceAdam(3, 0.02, 0.8, 0.99, 1e-6, 0.1, false, true), p, rtol: 1e-13, atol: 1e-15);
    }

    [Fact]
    public void AdamW_decays_the_weights_before_the_adam_step()
    {
        var p = Parameter();
        var adamW = new AdamW(new[] { p }, learningRate: 0.01);
        Assert.Equal(0.01, adamW.ParameterGroups[0].WeightDecay);
        RunSteps(adamW, p, 2);
        TensorAssert.Close(ReferenceAdam(2, 0.01, 0.9, 0.999, 1e-8, 0.01, true, false), p, rtol: 1e-13, atol: 1e-15);
    }

    [Fact]
    public void Adam_updates_float32_parameters_to_float_precision()
    {
        var p = Parameter(DType.Float32);
        RunSteps(new AdamW(new[] { p }, 0.01, weightDecay: 0.1, amsGrad: true), p, 3);
        TensorAssert.Close(ReferenceAdam(3, 0.01, 0.9, 0.999, 1e-8, 0.1, true, true), p, rtol: 1e-6, atol: 1e-6);
    }

    // ---- groups, skipping, zeroing --------------------------------------------------------------------------------

    [Fact]
    public void Parameter_groups_override_learning_rate_and_weight_decay()
    {
        var a = Parameter();
        var b = Parameter();
        var sgd = new SGD(new[] { new ParameterGroup(new[] { a }), new ParameterGroup(new[] { b }, learningRate: 0.2, weightDecay: 0) }, 0.1, weightDecay: 0.5);
        a.Grad = Tensor.FromArray(Gradients[0]);
        b.Grad = Tensor.FromArray(Gradients[0]);
        sgd.Step();
        Assert.Equal(1.0 - 0.1 * (0.5 + 0.5 * 1.0), a.ToDoubleArray()[0], 15);
        Assert.Equal(1.0 - 0.2 * 0.5, b.ToDoubleArray()[0], 15);
        sgd.LearningRate = 0.3;
        Assert.All(sgd.ParameterGroups, g => Assert.Equal(0.3, g.LearningRate));
    }

    [Fact]
    public void Parameters_without_gradients_are_skipped_and_zero_grad_clears_in_place()
    {
        var withGrad = Parameter();
        var without = Parameter();
        var adam = new Adam(new[] { withGrad, without });
        withGrad.Grad = Tensor.FromArray(Gradients[0]);
        Tensor gradBuffer = withGrad.Grad;
        adam.Step();
        Assert.Equal(Initial, without.ToDoubleArray());
        Assert.NotEqual(Initial, withGrad.ToDoubleArray());
        Assert.DoesNotContain("state.1.step", adam.StateDict().Keys);
        adam.ZeroGrad();
        Assert.Same(gradBuffer, withGrad.Grad);
        Assert.All(withGrad.Grad!.ToDoubleArray(), v => Assert.Equal(0, v));
    }

    [Fact]
    public void Step_allocates_nothing_after_the_first()
    {
        var p = Tensor.Zeros(new[] { 1000 });
        p.RequiresGrad = true;
        p.Grad = Tensor.Ones(new[] { 1000 });
        var optimizers = new Optimizer[] { new Adam(new[] { p }, amsGrad: true), new SGD(new[] { p }, 0.1, momentum: 0.9, nesterov: true) };
        foreach (Optimizer optimizer in optimizers)
        {
            optimizer.Step();
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 10; i++) optimizer.Step();
            Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        }
    }

    // ---- state dictionary -----------------------------------------------------------------------------------------

    [Theory]
    [InlineData("adam")]
    [InlineData("sgd")]
    public void Loading_the_state_dict_resumes_exactly(string kind)
    {
        Optimizer Create(Tensor p) => kind == "adam" ? new Adam(new[] { p }, 0.01, amsGrad: true) : new SGD(new[] { p }, 0.1, momentum: 0.9, dampening: 0.2);

        var straight = Parameter(DType.Float32);
        RunSteps(Create(straight), straight, 3);

        var first = Parameter(DType.Float32);
        var before = Create(first);
        RunSteps(before, first, 2);
        IReadOnlyDictionary<string, Tensor> saved = before.StateDict();
        var resumed = Parameter(DType.Float32);
        resumed.CopyFrom(first);
        var after = Create(resumed);
        after.LoadStateDict(saved);
        RunSteps(after, resumed, 1, firstStep: 2);

        Assert.Equal(straight.ToArray(), resumed.ToArray());
    }

    [Fact]
    public void State_dict_uses_pytorch_names_and_counts_steps()
    {
        var p = Parameter();
        var adam = new Adam(new[] { p });
        RunSteps(adam, p, 2);
        var state = adam.StateDict();
        Assert.Equal(new[] { "param_groups.0.lr", "param_groups.0.param_count", "state.0.exp_avg", "state.0.exp_avg_sq", "state.0.step" }, state.Keys.Order());
        Assert.Equal(2, state["state.0.step"].Item());
        Assert.Equal(1e-3, state["param_groups.0.lr"].Item());
    }

    [Fact]
    public void Loading_a_state_dict_of_another_optimizer_names_the_unexpected_keys()
    {
        var p = Parameter();
        var sgd = new SGD(new[] { p }, 0.1, momentum: 0.9);
        RunSteps(sgd, p, 1);
        var e = Assert.Throws<ArgumentException>(() => new Adam(new[] { Parameter() }).LoadStateDict(sgd.StateDict()));
        Assert.Contains("Adam", e.Message);
        Assert.Contains("state.0.momentum_buffer", e.Message);

        var wrongShape = Tensor.Zeros(new[] { 3 }, DType.Float64);
        wrongShape.RequiresGrad = true;
        e = Assert.Throws<ArgumentException>(() => new SGD(new[] { wrongShape }, 0.1, momentum: 0.9).LoadStateDict(sgd.StateDict()));
        Assert.Contains("(11,)", e.Message);
    }

    // ---- validation --------------------------------------------------------------------------------------------

    [Fact]
    public void Invalid_hyper_parameters_are_rejected_with_the_optimizer_and_the_value()
    {
        Tensor[] ps = { Parameter() };
        var e = Assert.ThrowsAny<ArgumentException>(() => new SGD(ps, -0.1));
        Assert.Contains("SGD", e.Message);
        Assert.Contains("-0.1", e.Message);
        e = Assert.ThrowsAny<ArgumentException>(() => new Adam(ps, double.NaN));
        Assert.Contains("Adam", e.Message);
        Assert.Contains("NaN", e.Message);
        e = Assert.ThrowsAny<ArgumentException>(() => new Adam(ps, beta1: 1.0));
        Assert.Contains("beta1", e.Message);
        e = Assert.ThrowsAny<ArgumentException>(() => new AdamW(ps, beta2: -0.5));
        Assert.Contains("AdamW", e.Message);
        Assert.Contains("beta2", e.Message);
        e = Assert.ThrowsAny<ArgumentException>(() => new Adam(ps, epsilon: -1e-8));
        Assert.Contains("epsilon", e.Message);
        e = Assert.ThrowsAny<ArgumentException>(() => new SGD(ps, 0.1, nesterov: true));
        Assert.Contains("Nesterov", e.Message);
        e = Assert.ThrowsAny<ArgumentException>(() => new SGD(ps, 0.1, weightDecay: double.PositiveInfinity));
        Assert.Contains("weight decay", e.Message);
        var sgd = new SGD(ps, 0.1);
        e = Assert.ThrowsAny<ArgumentException>(() => sgd.LearningRate = -1);
        Assert.Contains("SGD", e.Message);
        var p = Parameter();
        Assert.ThrowsAny<ArgumentException>(() => new SGD(new[] { p, p }, 0.1));
        Assert.ThrowsAny<ArgumentException>(() => new SGD(new[] { p * 2.0 }, 0.1));
    }

    // ---- schedulers ----------------------------------------------------------------------------------------------

    [Fact]
    public void StepLR_multiplies_by_gamma_every_step_size_epochs()
    {
        var sgd = new SGD(new[] { Parameter() }, 0.1);
        var scheduler = new StepLR(sgd, stepSize: 3, gamma: 0.5);
        for (int epoch = 0; epoch < 10; epoch++)
        {
            Assert.Equal(0.1 * Math.Pow(0.5, epoch / 3), sgd.LearningRate, 15);
            scheduler.Step();
        }
        Assert.Equal(0.1 * 0.125, sgd.LearningRate, 15);
    }

    [Fact]
    public void Cosine_annealing_follows_the_closed_form_for_every_group()
    {
        var sgd = new SGD(new[] { new ParameterGroup(new[] { Parameter() }), new ParameterGroup(new[] { Parameter() }, learningRate: 0.5) }, 0.1);
        var scheduler = new CosineAnnealingLR(sgd, tMax: 10, etaMin: 0.001);
        for (int epoch = 0; epoch <= 12; epoch++)
        {
            double cosine = (1 + Math.Cos(Math.PI * epoch / 10)) / 2;
            Assert.Equal(0.001 + (0.1 - 0.001) * cosine, sgd.ParameterGroups[0].LearningRate, 15);
            Assert.Equal(0.001 + (0.5 - 0.001) * cosine, sgd.ParameterGroups[1].LearningRate, 15);
            scheduler.Step();
        }
        Assert.Equal(0.001, new CosineAnnealingLR(new SGD(new[] { Parameter() }, 0.1), 10, 0.001) { LastEpoch = 10 }.Optimizer.LearningRate, 15);
    }

    [Fact]
    public void A_resumed_schedule_continues_from_the_saved_initial_learning_rate()
    {
        var sgd = new SGD(new[] { Parameter() }, 0.1);
        var scheduler = new StepLR(sgd, 2);
        for (int i = 0; i < 5; i++) scheduler.Step();
        var saved = sgd.StateDict();

        var resumedSgd = new SGD(new[] { Parameter() }, 0.1);
        resumedSgd.LoadStateDict(saved);
        Assert.Equal(sgd.LearningRate, resumedSgd.LearningRate);
        var resumed = new StepLR(resumedSgd, 2) { LastEpoch = 5 };
        resumed.Step();
        scheduler.Step();
        Assert.Equal(0.1, resumed.BaseLearningRates[0]);
        Assert.Equal(sgd.LearningRate, resumedSgd.LearningRate, 15);
    }
}
