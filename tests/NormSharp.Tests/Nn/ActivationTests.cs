using NormSharp.Nn;
using NormSharp.Tests.Testing;

namespace NormSharp.Tests.Nn;

public class ActivationTests
{
    private static Tensor R(int seed, params int[] shape) => GradCheck.Random(seed, shape);

    // ---- forward values ----------------------------------------------------------------------------------------

    [Fact]
    public void Softmax_of_one_two_three_matches_hand_computed_values()
    {
        var expected = new[] { 0.0900306, 0.2447285, 0.6652410 };
        TensorAssert.Close(expected, Functional.Softmax(Tensor.FromArray(new float[] { 1, 2, 3 })), rtol: 1e-6, atol: 1e-7);
        TensorAssert.Close(expected, Functional.Softmax(Tensor.FromArray(new double[] { 1, 2, 3 })), rtol: 1e-6, atol: 1e-7);
    }

    [Fact]
    public void Softmax_subtracts_the_maximum_so_large_logits_do_not_overflow()
    {
        var y = Functional.Softmax(Tensor.FromArray(new float[] { 1000, 1001, 1002, -1000, -1001, -1002 }, 2, 3));
        TensorAssert.Close(new[] { 0.0900306, 0.2447285, 0.6652410, 0.6652410, 0.2447285, 0.0900306 }, y, rtol: 1e-6, atol: 1e-7);
    }

    [Fact]
    public void Log_softmax_equals_x_minus_log_sum_exp()
    {
        var y = Functional.LogSoftmax(Tensor.FromArray(new double[] { 1, 2, 3, 1000, 0, -1000 }, 2, 3));
        double lse = Math.Log(Math.Exp(1) + Math.Exp(2) + Math.Exp(3));
        TensorAssert.Close(new[] { 1 - lse, 2 - lse, 3 - lse, 0, -1000, -2000 }, y, rtol: 1e-12, atol: 1e-12);
    }

    [Theory]
    [InlineData(37)]
    [InlineData(1000)]
    public void Softmax_log_softmax_and_their_gradients_on_rows_of_several_vectors_match_float64(int classes)
    {
        // Rows longer than a vector, ending in a partial one, take the vectorized exponential of every width.
        int rows = 3;
        var random = new Random(classes);
        float[] x = Enumerable.Range(0, rows * classes).Select(_ => (float)(random.NextDouble() * 30 - 20)).ToArray();
        double[] p = new double[x.Length], dy = x.Select((_, i) => Math.Sin(i)).ToArray();
        double[] softmaxGrad = new double[x.Length], logSoftmaxGrad = new double[x.Length];
        for (int r = 0; r < rows; r++)
        {
            var row = Enumerable.Range(r * classes, classes);
            double max = row.Max(i => (double)x[i]), sum = row.Sum(i => Math.Exp(x[i] - max));
            foreach (int i in row) p[i] = Math.Exp(x[i] - max) / sum;
            double dot = row.Sum(i => dy[i] * p[i]), dySum = row.Sum(i => dy[i]);
            foreach (int i in row) (softmaxGrad[i], logSoftmaxGrad[i]) = (p[i] * (dy[i] - dot), dy[i] - p[i] * dySum);
        }
        Tensor gradOutput = Tensor.FromArray(dy.Select(v => (float)v).ToArray(), rows, classes);
        Tensor input = Tensor.FromArray(x, rows, classes);
        input.RequiresGrad = true;
        Tensor softmax = Functional.Softmax(input), logSoftmax = Functional.LogSoftmax(input);
        TensorAssert.Close(p, softmax, rtol: 1e-5, atol: 1e-9);
        TensorAssert.Close(p.Select(v => Math.Log(v)).ToArray(), logSoftmax, rtol: 1e-5, atol: 1e-5);
        TensorAssert.Close(softmaxGrad, softmax.GradFn!.Backward!(gradOutput)[0]!, rtol: 1e-4, atol: 1e-7);
        TensorAssert.Close(logSoftmaxGrad, logSoftmax.GradFn!.Backward!(gradOutput)[0]!, rtol: 1e-4, atol: 1e-6);
    }

    [Fact]
    public void Softmax_over_a_middle_axis_normalizes_each_column()
    {
        // (2, 3, 2): the softmax runs over the 3 entries of each (sample, column).
        double[] x = { 0.5, -1, 2, 0, -0.3, 4, 1, 1, 1, 2, 1, 3 };
        var y = Functional.Softmax(Tensor.FromArray(x, 2, 3, 2), axis: 1).ToDoubleArray();
        for (int n = 0; n < 2; n++)
            for (int col = 0; col < 2; col++)
            {
                double sum = 0;
                for (int c = 0; c < 3; c++) sum += Math.Exp(x[n * 6 + c * 2 + col]);
                for (int c = 0; c < 3; c++)
                    Assert.Equal(Math.Exp(x[n * 6 + c * 2 + col]) / sum, y[n * 6 + c * 2 + col], 12);
            }
    }

    [Fact]
    public void Pointwise_activations_match_hand_computed_values()
    {
        var x = Tensor.FromArray(new float[] { -2, -0.5f, 0, 1, 2 });
        Assert.Equal(new float[] { 0, 0, 0, 1, 2 }, Functional.Relu(x).ToArray());
        TensorAssert.Close(new[] { -0.02, -0.005, 0, 1, 2 }, Functional.LeakyRelu(x));
        TensorAssert.Close(new[] { -0.4, -0.1, 0, 1, 2 }, new LeakyReLU(0.2).Forward(x));
        TensorAssert.Close(new[] { 0.1192029, 0.3775407, 0.5, 0.7310586, 0.8807971 }, new Sigmoid().Forward(x));
        TensorAssert.Close(new[] { -0.9640276, -0.4621172, 0, 0.7615942, 0.9640276 }, new Tanh().Forward(x));
    }

    [Fact]
    public void Pointwise_activations_cover_the_vector_body_and_the_scalar_tail()
    {
        // 37 elements: whole SIMD blocks plus a remainder for every vector width.
        double[] values = Enumerable.Range(0, 37).Select(i => (i - 18) * 0.25).ToArray();
        var x = Tensor.FromArray(values);
        TensorAssert.Close(values.Select(v => Math.Max(v, 0)).ToArray(), Functional.Relu(x), rtol: 0, atol: 0);
        TensorAssert.Close(values.Select(v => v > 0 ? v : 0.3 * v).ToArray(), Functional.LeakyRelu(x, 0.3), rtol: 1e-15, atol: 0);
        TensorAssert.Close(values.Select(v => 1 / (1 + Math.Exp(-v))).ToArray(), Functional.Sigmoid(x), rtol: 1e-14, atol: 1e-15);
        TensorAssert.Close(values.Select(Math.Tanh).ToArray(), Functional.Tanh(x), rtol: 1e-14, atol: 1e-15);
    }

    // ---- gradients -------------------------------------------------------------------------------------------------

    [Fact] public void Relu_backward_matches_finite_differences() => GradCheck.CheckModule(new ReLU(), R(1, 3, 37));
    [Fact] public void LeakyRelu_backward_matches_finite_differences() => GradCheck.CheckModule(new LeakyReLU(0.1), R(2, 3, 37));
    [Fact] public void Sigmoid_backward_matches_finite_differences() => GradCheck.CheckModule(new Sigmoid(), R(3, 3, 37));
    [Fact] public void Tanh_backward_matches_finite_differences() => GradCheck.CheckModule(new Tanh(), R(4, 3, 37));
    [Fact] public void Softmax_backward_matches_finite_differences() => GradCheck.CheckModule(new Softmax(), R(5, 4, 7));
    [Fact] public void Softmax_over_a_strided_axis_backward_matches_finite_differences() => GradCheck.CheckModule(new Softmax(1), R(6, 2, 3, 5));
    [Fact] public void LogSoftmax_backward_matches_finite_differences() => GradCheck.CheckModule(new LogSoftmax(), R(7, 4, 7));
    [Fact] public void LogSoftmax_over_a_strided_axis_backward_matches_finite_differences() => GradCheck.CheckModule(new LogSoftmax(0), R(8, 3, 2, 4));
    [Fact] public void Flatten_backward_matches_finite_differences() => GradCheck.CheckModule(new Flatten(), R(9, 2, 3, 4));
    [Fact] public void Reshape_backward_matches_finite_differences() => GradCheck.CheckModule(new Reshape(2, -1), R(10, 3, 8));

    [Fact]
    public void Dropout_backward_with_a_fixed_mask_matches_finite_differences() =>
        // A fresh generator with the same seed in every evaluation gives the same mask each time.
        GradCheck.Check(t => Functional.Dropout(t[0], 0.3, training: true, new RandomGenerator(42)), R(11, 4, 9));

    // ---- dropout -----------------------------------------------------------------------------------------------

    [Fact]
    public void Dropout_zeroes_about_p_and_scales_the_survivors_by_one_over_one_minus_p()
    {
        var x = Tensor.Full(new[] { 100, 100 }, 2.0);
        float[] y = new Dropout(0.3, new RandomGenerator(7)).Forward(x).ToArray();
        double dropped = y.Count(v => v == 0) / (double)y.Length;
        Assert.InRange(dropped, 0.28, 0.32);
        Assert.All(y.Where(v => v != 0), v => Assert.Equal(2 / 0.7f, v, 5));
    }

    [Fact]
    public void Dropout_is_the_identity_in_eval_mode_and_for_p_zero()
    {
        var x = R(12, 3, 4);
        var dropout = new Dropout(0.5);
        dropout.Eval();
        Assert.Same(x, dropout.Forward(x));
        Assert.Same(x, new Dropout(0).Forward(x));
    }

    [Fact]
    public void Dropout_masks_repeat_for_the_same_seed()
    {
        var x = Tensor.Ones(new[] { 50 });
        Assert.Equal(new Dropout(0.5, new RandomGenerator(3)).Forward(x).ToArray(), new Dropout(0.5, new RandomGenerator(3)).Forward(x).ToArray());
        Tensor.ManualSeed(9);
        float[] first = new Dropout(0.5).Forward(x).ToArray();
        Tensor.ManualSeed(9);
        Assert.Equal(first, new Dropout(0.5).Forward(x).ToArray());
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(-0.1)]
    [InlineData(double.NaN)]
    public void Dropout_rejects_p_outside_zero_to_one(double p)
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => new Dropout(p));
        Assert.Contains("Dropout", e.Message);
        Assert.Contains("[0, 1)", e.Message);
    }

    // ---- shape layers ------------------------------------------------------------------------------------------

    [Fact]
    public void Flatten_keeps_the_batch_axis_by_default()
    {
        var x = Tensor.Zeros(new[] { 2, 3, 4, 5 });
        Assert.Equal(new[] { 2, 60 }, new Flatten().Forward(x).Shape);
        Assert.Equal(new[] { 2, 3, 20 }, new Flatten(2).Forward(x).Shape);
        Assert.Equal(new[] { 6, 4, 5 }, new Flatten(0, 1).Forward(x).Shape);
    }

    [Fact]
    public void Reshape_applies_to_each_sample_and_infers_minus_one()
    {
        var x = Tensor.FromArray(Enumerable.Range(0, 24).Select(i => (float)i).ToArray(), 2, 12);
        var y = new Reshape(3, -1).Forward(x);
        Assert.Equal(new[] { 2, 3, 4 }, y.Shape);
        Assert.Equal(x.ToArray(), y.ToArray());
    }

    [Fact]
    public void Identity_returns_its_input() 
    {
        var x = R(13, 2, 2);
        Assert.Same(x, new Identity().Forward(x));
    }

    [Fact]
    public void Shape_errors_name_the_layer_and_the_input_shape()
    {
        var e = Assert.Throws<ArgumentException>(() => new Flatten().Forward(Tensor.Zeros(new[] { 5 })));
        Assert.Contains("Flatten(start_dim=1, end_dim=-1)", e.Message);
        Assert.Contains("(5,)", e.Message);

        e = Assert.Throws<ArgumentException>(() => new Reshape(5).Forward(Tensor.Zeros(new[] { 2, 12 })));
        Assert.Contains("Reshape(shape=(5,))", e.Message);
        Assert.Contains("(2, 12)", e.Message);
        Assert.Contains("12 elements", e.Message);

        e = Assert.Throws<ArgumentException>(() => new Softmax(2).Forward(Tensor.Zeros(new[] { 4, 3 })));
        Assert.Contains("Softmax(dim=2)", e.Message);
        Assert.Contains("(4, 3)", e.Message);
    }

    [Fact]
    public void Modules_print_their_arguments_like_pytorch()
    {
        var model = new Sequential(new Flatten(), new Linear(4, 3), new LeakyReLU(0.2), new Dropout(0.25), new LogSoftmax(1));
        string text = model.ToString();
        Assert.Contains("(0): Flatten(start_dim=1, end_dim=-1)", text);
        Assert.Contains("(2): LeakyReLU(negative_slope=0.2)", text);
        Assert.Contains("(3): Dropout(p=0.25)", text);
        Assert.Contains("(4): LogSoftmax(dim=1)", text);
    }
}
