using NormSharp.Nn;
using NormSharp.Tests.Testing;

namespace NormSharp.Tests.Nn;

public class LossTests
{
    private static Tensor R(int seed, params int[] shape) => GradCheck.Random(seed, shape);

    /// <summary>Uniform values in [low, high) in float64, for probabilities.</summary>
    private static Tensor U(int seed, double low, double high, params int[] shape) =>
        Tensor.Uniform(shape, low, high, DType.Float64, new RandomGenerator((ulong)seed));

    /// <summary>log softmax of one row, independently of the library.</summary>
    private static double[] LogSoftmaxRow(double[] row)
    {
        double max = row.Max();
        double lse = max + Math.Log(row.Sum(v => Math.Exp(v - max)));
        return row.Select(v => v - lse).ToArray();
    }

    // ---- cross-entropy: values ---------------------------------------------------------------------------------

    [Fact]
    public void Cross_entropy_of_known_logits_matches_hand_computed_values()
    {
        // −log softmax([1, 2, 3]) = [2.4076059, 1.4076059, 0.4076059].
        var logits = Tensor.FromArray(new float[] { 1, 2, 3, 1, 2, 3 }, 2, 3);
        int[] target = { 2, 0 };
        TensorAssert.Close(new[] { 1.4076059 }, Functional.CrossEntropy(logits, target));
        TensorAssert.Close(new[] { 2.8152118 }, Functional.CrossEntropy(logits, target, Reduction.Sum));
        TensorAssert.Close(new[] { 0.4076059, 2.4076059 }, Functional.CrossEntropy(logits, target, Reduction.None));
        Assert.Empty(Functional.CrossEntropy(logits, target).Shape);
        Assert.Equal(new[] { 2 }, Functional.CrossEntropy(logits, target, Reduction.None).Shape);
    }

    [Fact]
    public void Cross_entropy_with_one_hot_probabilities_equals_the_class_index_form()
    {
        var logits = R(1, 4, 5);
        int[] target = { 3, 0, 4, 1 };
        var oneHot = Tensor.Zeros(new[] { 4, 5 }, DType.Float64);
        for (int i = 0; i < 4; i++) oneHot.SpanD[i * 5 + target[i]] = 1;
        TensorAssert.Close(Functional.CrossEntropy(logits, target, Reduction.None).ToDoubleArray(), Functional.CrossEntropy(logits, oneHot, Reduction.None), rtol: 1e-14, atol: 1e-14);
    }

    [Fact]
    public void Cross_entropy_with_soft_targets_is_minus_target_dot_log_softmax_averaged_over_samples()
    {
        double[] x = { 0.2, -1, 3, 0.5, 0.5, -2 };
        double[] q = { 0.1, 0.3, 0.6, 0.5, 0.25, 0.25 };
        double expected = 0;
        for (int n = 0; n < 2; n++)
        {
            double[] logp = LogSoftmaxRow(x.Skip(3 * n).Take(3).ToArray());
            for (int c = 0; c < 3; c++) expected -= q[3 * n + c] * logp[c];
        }
        var loss = Functional.CrossEntropy(Tensor.FromArray(x, 2, 3), Tensor.FromArray(q, 2, 3));
        TensorAssert.Close(new[] { expected / 2 }, loss, rtol: 1e-14, atol: 0);
    }

    [Fact]
    public void Label_smoothing_mixes_the_uniform_distribution_into_the_target()
    {
        double[] x = { 0.2, -1, 3, 0.5, 0.5, -2 };
        int[] target = { 1, 2 };
        const double eps = 0.2;
        double expected = 0;
        for (int n = 0; n < 2; n++)
        {
            double[] logp = LogSoftmaxRow(x.Skip(3 * n).Take(3).ToArray());
            expected += (1 - eps) * -logp[target[n]] + eps / 3 * -logp.Sum();
        }
        var logits = Tensor.FromArray(x, 2, 3);
        TensorAssert.Close(new[] { expected / 2 }, Functional.CrossEntropy(logits, target, labelSmoothing: eps), rtol: 1e-14, atol: 0);
        TensorAssert.Close(new[] { expected / 2 }, new CrossEntropyLoss(labelSmoothing: eps).Forward(logits, target), rtol: 1e-14, atol: 0);
    }

    [Fact]
    public void CrossEntropy_of_float32_rows_of_several_vectors_and_its_gradient_match_float64()
    {
        // 1000 classes: whole vectors and a partial last one at every width, on the path that keeps the softmax for
        // the backward; one ignored row.
        const int rows = 4, classes = 1000;
        const double eps = 0.1;
        var random = new Random(3);
        float[] x = Enumerable.Range(0, rows * classes).Select(_ => (float)(random.NextDouble() * 20 - 10)).ToArray();
        int[] target = { 17, 999, -100, 0 };
        double loss = 0;
        double[] gradient = new double[x.Length];
        for (int n = 0; n < rows; n++)
        {
            if (target[n] < 0) continue;
            double[] logp = LogSoftmaxRow(x.Skip(n * classes).Take(classes).Select(v => (double)v).ToArray());
            for (int c = 0; c < classes; c++)
            {
                double q = (c == target[n] ? 1 - eps : 0) + eps / classes;
                loss -= q * logp[c] / 3;
                gradient[n * classes + c] = (Math.Exp(logp[c]) - q) / 3;
            }
        }
        Tensor logits = Tensor.FromArray(x, rows, classes);
        logits.RequiresGrad = true;
        Tensor result = Functional.CrossEntropy(logits, target, labelSmoothing: eps);
        TensorAssert.Close(new[] { loss }, result, rtol: 1e-5, atol: 0);
        TensorAssert.Close(gradient, result.GradFn!.Backward!(Tensor.Ones(result.Shape))[0]!, rtol: 1e-4, atol: 1e-9);
    }

    [Fact]
    public void Ignored_samples_are_left_out_of_the_loss_and_the_mean()
    {
        var logits = R(2, 3, 4);
        double[] each = Functional.CrossEntropy(logits, new[] { 1, 0, 3 }, Reduction.None).ToDoubleArray();
        TensorAssert.Close(new[] { (each[0] + each[2]) / 2 }, Functional.CrossEntropy(logits, new[] { 1, -100, 3 }), rtol: 1e-14, atol: 0);
        TensorAssert.Close(new[] { each[0], 0, each[2] }, Functional.CrossEntropy(logits, new[] { 1, -100, 3 }, Reduction.None), rtol: 1e-14, atol: 0);
        TensorAssert.Close(new[] { each[0] }, new CrossEntropyLoss(ignoreIndex: 7).Forward(logits, new[] { 1, 7, 7 }), rtol: 1e-14, atol: 0);
    }

    [Fact]
    public void Cross_entropy_on_spatial_maps_equals_cross_entropy_on_the_flattened_positions()
    {
        // (N, C, L) with targets (N, L) is the (N·L, C) problem with the class axis moved last.
        var logits = R(3, 2, 3, 4);
        int[] target = { 0, 2, 1, 1, 2, 2, 0, 1 };
        var flat = logits.Permute(0, 2, 1).Reshape(8, 3);
        TensorAssert.Close(Functional.CrossEntropy(flat, target, Reduction.None).ToDoubleArray(),
            Functional.CrossEntropy(logits, target, Reduction.None).Reshape(8), rtol: 1e-14, atol: 1e-15);
        Assert.Equal(new[] { 2, 4 }, Functional.CrossEntropy(logits, target, Reduction.None).Shape);
    }

    [Fact]
    public void Class_indices_can_be_given_as_a_tensor_of_whole_numbers()
    {
        var logits = R(4, 3, 4);
        var byArray = Functional.CrossEntropy(logits, new[] { 3, 0, 2 });
        var byTensor = Functional.CrossEntropy(logits, Tensor.FromArray(new double[] { 3, 0, 2 }));
        Assert.Equal(byArray.Item(), byTensor.Item());
        Assert.Equal(Functional.NllLoss(logits, new[] { 3, 0, 2 }).Item(), new NLLLoss().Forward(logits, Tensor.FromArray(new double[] { 3, 0, 2 })).Item());
    }

    [Fact]
    public void Nll_loss_picks_minus_the_log_probability_of_the_target()
    {
        var logp = Tensor.FromArray(new float[] { -0.5f, -1.5f, -2.5f, -3f, -0.1f, -4f }, 2, 3);
        TensorAssert.Close(new[] { 1.5, 4 }, Functional.NllLoss(logp, new[] { 1, 2 }, Reduction.None));
        TensorAssert.Close(new[] { 2.75 }, new NLLLoss().Forward(logp, new[] { 1, 2 }));
    }

    [Fact]
    public void Log_softmax_then_nll_equals_cross_entropy()
    {
        var logits = R(5, 5, 6);
        int[] target = { 5, 0, 2, 2, 1 };
        Assert.Equal(Functional.CrossEntropy(logits, target).Item(), Functional.NllLoss(Functional.LogSoftmax(logits, 1), target).Item(), 14);
    }

    // ---- binary and regression losses: values ------------------------------------------------------------------

    [Fact]
    public void Binary_cross_entropy_matches_hand_computed_values()
    {
        var x = Tensor.FromArray(new float[] { 0.8f, 0.3f });
        var y = Tensor.FromArray(new float[] { 1, 0 });
        // −log 0.8 = 0.2231436, −log 0.7 = 0.3566749.
        TensorAssert.Close(new[] { 0.2231436, 0.3566749 }, Functional.BinaryCrossEntropy(x, y, Reduction.None));
        TensorAssert.Close(new[] { 0.2899092 }, new BCELoss().Forward(x, y));
        TensorAssert.Close(new[] { 0.5798185 }, new BCELoss(Reduction.Sum).Forward(x, y));
    }

    [Fact]
    public void Binary_cross_entropy_clamps_the_log_at_minus_one_hundred_like_pytorch()
    {
        var x = Tensor.FromArray(new double[] { 0, 1, 1, 0 });
        var y = Tensor.FromArray(new double[] { 1, 1, 0, 0 });
        TensorAssert.Close(new double[] { 100, 0, 100, 0 }, Functional.BinaryCrossEntropy(x, y, Reduction.None), rtol: 0, atol: 0);
    }

    [Fact]
    public void Binary_cross_entropy_with_logits_matches_the_stable_formula_and_does_not_overflow()
    {
        var x = Tensor.FromArray(new double[] { 0, 2, -3, 1000, -1000 });
        var y = Tensor.FromArray(new double[] { 1, 0, 1, 1, 1 });
        double[] expected = { Math.Log(2), 2 + Math.Log(1 + Math.Exp(-2)), 3 + Math.Log(1 + Math.Exp(-3)), 0, 1000 };
        TensorAssert.Close(expected, Functional.BinaryCrossEntropyWithLogits(x, y, Reduction.None), rtol: 1e-15, atol: 1e-15);
    }

    [Fact]
    public void Binary_cross_entropy_with_logits_equals_binary_cross_entropy_of_the_sigmoid()
    {
        var x = R(6, 3, 5);
        var y = U(7, 0, 1, 3, 5);
        Assert.Equal(Functional.BinaryCrossEntropy(Functional.Sigmoid(x), y).Item(), Functional.BinaryCrossEntropyWithLogits(x, y).Item(), 12);
    }

    [Fact]
    public void Mse_loss_matches_hand_computed_values()
    {
        var x = Tensor.FromArray(new float[] { 1, 2, 3, 4 }, 2, 2);
        var y = Tensor.FromArray(new float[] { 0, 2, 5, 1 }, 2, 2);
        TensorAssert.Close(new[] { 3.5 }, new MSELoss().Forward(x, y));
        TensorAssert.Close(new[] { 14.0 }, new MSELoss(Reduction.Sum).Forward(x, y));
        TensorAssert.Close(new double[] { 1, 0, 4, 9 }, new MSELoss(Reduction.None).Forward(x, y));
    }

    // ---- gradients -------------------------------------------------------------------------------------------------

    [Theory]
    [InlineData(Reduction.Mean)]
    [InlineData(Reduction.Sum)]
    [InlineData(Reduction.None)]
    public void Cross_entropy_backward_matches_finite_differences(Reduction reduction) =>
        GradCheck.Check(t => Functional.CrossEntropy(t[0], new[] { 2, 0, 4, -100, 1 }, reduction), R(8, 5, 6));

    [Fact]
    public void Cross_entropy_with_label_smoothing_backward_matches_finite_differences() =>
        GradCheck.Check(t => Functional.CrossEntropy(t[0], new[] { 2, 0, 3 }, labelSmoothing: 0.15), R(9, 3, 4));

    [Theory]
    [InlineData(Reduction.Mean)]
    [InlineData(Reduction.None)]
    public void Cross_entropy_on_spatial_maps_backward_matches_finite_differences(Reduction reduction) =>
        GradCheck.Check(t => Functional.CrossEntropy(t[0], new[] { 0, 2, 1, 1, 2, 2, 0, 1, 1, 0, 2, 0 }, reduction), R(10, 2, 3, 2, 3));

    [Theory]
    [InlineData(Reduction.Mean)]
    [InlineData(Reduction.Sum)]
    [InlineData(Reduction.None)]
    public void Cross_entropy_with_probability_targets_backward_matches_finite_differences_for_both_inputs(Reduction reduction) =>
        GradCheck.Check(t => Functional.CrossEntropy(t[0], t[1], reduction, labelSmoothing: 0.1), R(11, 3, 4), U(12, 0, 1, 3, 4));

    [Theory]
    [InlineData(Reduction.Mean)]
    [InlineData(Reduction.Sum)]
    [InlineData(Reduction.None)]
    public void Nll_loss_backward_matches_finite_differences(Reduction reduction) =>
        GradCheck.Check(t => Functional.NllLoss(t[0], new[] { 1, 3, -100, 0 }, reduction), R(13, 4, 5));

    [Theory]
    [InlineData(Reduction.Mean)]
    [InlineData(Reduction.Sum)]
    [InlineData(Reduction.None)]
    public void Binary_cross_entropy_backward_matches_finite_differences_for_both_inputs(Reduction reduction) =>
        GradCheck.Check(t => Functional.BinaryCrossEntropy(t[0], t[1], reduction), U(14, 0.05, 0.95, 3, 7), U(15, 0, 1, 3, 7));

    [Theory]
    [InlineData(Reduction.Mean)]
    [InlineData(Reduction.Sum)]
    [InlineData(Reduction.None)]
    public void Binary_cross_entropy_with_logits_backward_matches_finite_differences_for_both_inputs(Reduction reduction) =>
        GradCheck.Check(t => Functional.BinaryCrossEntropyWithLogits(t[0], t[1], reduction), R(16, 3, 7), U(17, 0, 1, 3, 7));

    [Theory]
    [InlineData(Reduction.Mean)]
    [InlineData(Reduction.Sum)]
    [InlineData(Reduction.None)]
    public void Mse_loss_backward_matches_finite_differences_for_both_inputs(Reduction reduction) =>
        GradCheck.Check(t => Functional.MseLoss(t[0], t[1], reduction), R(18, 3, 7), R(19, 3, 7));

    [Fact]
    public void Cross_entropy_gradient_is_softmax_minus_one_hot_over_the_batch()
    {
        var logits = Tensor.FromArray(new double[] { 1, 2, 3, 1, 2, 3 }, 2, 3);
        logits.RequiresGrad = true;
        Functional.CrossEntropy(logits, new[] { 2, 0 }).Backward();
        double[] p = { 0.09003057317038046, 0.24472847105479767, 0.6652409557748219 };
        TensorAssert.Close(new[] { p[0] / 2, p[1] / 2, (p[2] - 1) / 2, (p[0] - 1) / 2, p[1] / 2, p[2] / 2 }, logits.Grad!, rtol: 1e-14, atol: 1e-16);
    }

    [Theory]
    [InlineData(37)]
    [InlineData(1000)]
    public void Cross_entropy_gradient_on_rows_of_several_vectors_is_softmax_minus_one_hot_over_the_batch(int classes)
    {
        int rows = 4;
        var random = new Random(classes);
        float[] x = Enumerable.Range(0, rows * classes).Select(_ => (float)(random.NextDouble() * 30 - 20)).ToArray();
        int[] target = { 0, classes / 2, classes - 1, 1 };
        double[] expected = new double[x.Length];
        for (int r = 0; r < rows; r++)
        {
            var row = Enumerable.Range(r * classes, classes);
            double max = row.Max(i => (double)x[i]), sum = row.Sum(i => Math.Exp(x[i] - max));
            foreach (int i in row) expected[i] = (Math.Exp(x[i] - max) / sum - (i - r * classes == target[r] ? 1 : 0)) / rows;
        }
        var logits = Tensor.FromArray(x, rows, classes);
        logits.RequiresGrad = true;
        Functional.CrossEntropy(logits, target).Backward();
        TensorAssert.Close(expected, logits.Grad!, rtol: 1e-5, atol: 1e-9);
    }

    // ---- errors ------------------------------------------------------------------------------------------------

    [Fact]
    public void Wrong_number_of_class_indices_names_the_loss_and_the_shapes()
    {
        var e = Assert.Throws<ArgumentException>(() => new CrossEntropyLoss().Forward(Tensor.Zeros(new[] { 4, 3 }), new[] { 0, 1, 2 }));
        Assert.Contains("CrossEntropyLoss(reduction=mean)", e.Message);
        Assert.Contains("(4, 3)", e.Message);
        Assert.Contains("needs 4 class indices", e.Message);
        Assert.Contains("got 3", e.Message);
    }

    [Fact]
    public void Out_of_range_class_index_names_the_loss_the_index_and_the_class_count()
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => Functional.CrossEntropy(Tensor.Zeros(new[] { 2, 3 }), new[] { 0, 3 }));
        Assert.Contains("CrossEntropy", e.Message);
        Assert.Contains("target 3 at position 1", e.Message);
        Assert.Contains("3 classes", e.Message);
        e = Assert.ThrowsAny<ArgumentException>(() => new NLLLoss().Forward(Tensor.Zeros(new[] { 2, 3 }), new[] { -1, 0 }));
        Assert.Contains("NLLLoss(reduction=mean)", e.Message);
        Assert.Contains("target -1", e.Message);
    }

    [Fact]
    public void Target_tensor_of_the_wrong_shape_names_both_accepted_shapes()
    {
        var e = Assert.Throws<ArgumentException>(() => Functional.CrossEntropy(Tensor.Zeros(new[] { 4, 3 }), Tensor.Zeros(new[] { 4, 2 })));
        Assert.Contains("CrossEntropy", e.Message);
        Assert.Contains("class indices of shape (4,)", e.Message);
        Assert.Contains("probabilities of the input's shape (4, 3)", e.Message);
        Assert.Contains("got (4, 2)", e.Message);

        e = Assert.Throws<ArgumentException>(() => Functional.CrossEntropy(Tensor.Zeros(new[] { 2, 3 }), Tensor.FromArray(new float[] { 0, 1.5f })));
        Assert.Contains("whole numbers", e.Message);
    }

    [Fact]
    public void Element_wise_losses_reject_mismatched_shapes_and_invalid_probabilities()
    {
        var e = Assert.Throws<ArgumentException>(() => new MSELoss().Forward(Tensor.Zeros(new[] { 4, 1 }), Tensor.Zeros(new[] { 4 })));
        Assert.Contains("MSELoss(reduction=mean)", e.Message);
        Assert.Contains("(4, 1)", e.Message);
        Assert.Contains("(4,)", e.Message);

        e = Assert.Throws<ArgumentException>(() => new BCELoss().Forward(Tensor.FromArray(new float[] { 0.5f, 1.5f }), Tensor.Zeros(new[] { 2 })));
        Assert.Contains("BCELoss(reduction=mean)", e.Message);
        Assert.Contains("[0, 1]", e.Message);

        e = Assert.Throws<ArgumentException>(() => new BCEWithLogitsLoss(Reduction.Sum).Forward(Tensor.Zeros(new[] { 3 }), Tensor.Zeros(new[] { 3 }, DType.Float64)));
        Assert.Contains("BCEWithLogitsLoss(reduction=sum)", e.Message);
        Assert.Contains("Float64", e.Message);

        Assert.ThrowsAny<ArgumentException>(() => new CrossEntropyLoss(labelSmoothing: 1.5));
    }
}
