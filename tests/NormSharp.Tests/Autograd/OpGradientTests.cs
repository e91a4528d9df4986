using NormSharp.Tests.Testing;

namespace NormSharp.Tests.Autograd;

/// <summary>Every tensor operation's backward against central finite differences in float64.</summary>
public class OpGradientTests
{
    private static Tensor R(int seed, params int[] shape) => GradCheck.Random(seed, shape);

    [Fact] public void Add_with_broadcast_backward_matches_finite_differences() => GradCheck.Check(t => t[0] + t[1], R(1, 3, 4), R(2, 4));
    [Fact] public void Subtract_with_broadcast_backward_matches_finite_differences() => GradCheck.Check(t => t[0] - t[1], R(1, 2, 1, 3), R(2, 4, 1));
    [Fact] public void Multiply_backward_matches_finite_differences() => GradCheck.Check(t => t[0] * t[1], R(1, 3, 4), R(2, 3, 1));
    [Fact] public void Divide_backward_matches_finite_differences() => GradCheck.Check(t => t[0] / (t[1].Exp() + 0.5), R(1, 3, 4), R(2, 4));
    [Fact] public void Scalar_arithmetic_backward_matches_finite_differences() => GradCheck.Check(t => (-(t[0] * 3.0) + 2.0) / 4.0 - 1.0, R(1, 5));
    [Fact] public void Exp_log_sqrt_pow_backward_matches_finite_differences() => GradCheck.Check(t => (t[0].Exp() + 1.0).Log().Sqrt().Pow(3.0), R(1, 2, 3));
    [Fact] public void Abs_and_square_backward_matches_finite_differences() => GradCheck.Check(t => t[0].Abs() + t[0].Square(), R(3, 7));
    [Fact] public void Sum_and_mean_backward_matches_finite_differences() => GradCheck.Check(t => t[0].Sum(1, keepDim: true) * t[0].Mean(0) + t[0].Mean(new[] { 0, 2 }, keepDim: true), R(1, 2, 3, 4));
    [Fact] public void Max_backward_matches_finite_differences() => GradCheck.Check(t => t[0].Max(1), R(4, 3, 5));
    [Fact] public void MatMul_backward_matches_finite_differences() => GradCheck.Check(t => t[0].MatMul(t[1]), R(1, 3, 4), R(2, 4, 5));
    [Fact] public void Batched_matmul_backward_matches_finite_differences() => GradCheck.Check(t => t[0].MatMul(t[1]), R(1, 2, 3, 4), R(2, 2, 4, 2));
    [Fact] public void Views_backward_matches_finite_differences() => GradCheck.Check(t => t[0].Transpose(0, 2).Reshape(4, -1).Narrow(1, 1, 3).Flatten().Unsqueeze(0), R(1, 2, 3, 4));
    [Fact] public void Permute_backward_matches_finite_differences() => GradCheck.Check(t => t[0].Permute(2, 0, 1) * t[1], R(1, 2, 3, 4), R(2, 4, 2, 3));
    [Fact] public void Concat_backward_matches_finite_differences() => GradCheck.Check(t => Tensor.Concat(new[] { t[0], t[1] }, 1), R(1, 2, 3), R(2, 2, 2));
    [Fact] public void ExpandTo_backward_matches_finite_differences() => GradCheck.Check(t => t[0].ExpandTo(new[] { 3, 2, 4 }), R(1, 2, 1));

    [Fact]
    public void Broken_backward_is_detected()
    {
        // A deliberately wrong gradient (the forward of x², the backward of x) must fail the check.
        var x = R(1, 5);
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => GradCheck.Check(t => t[0].Square().Detach() + t[0] * 1.0, x));
    }

    [Fact]
    public void Gradients_accumulate_across_backward_passes_like_pytorch()
    {
        var x = Tensor.FromArray(new double[] { 1, 2, 3 });
        x.RequiresGrad = true;
        (x * x).Sum().Backward();
        (x * x).Sum().Backward();
        Assert.Equal(new double[] { 4, 8, 12 }, x.Grad!.ToDoubleArray());
    }

    [Fact]
    public void Shared_subexpression_receives_the_sum_of_both_paths()
    {
        var x = Tensor.FromArray(new double[] { 2 });
        x.RequiresGrad = true;
        var y = x * 3.0;
        (y * y + y).Sum().Backward(); // d/dx (9x² + 3x) = 18x + 3
        Assert.Equal(39.0, x.Grad!.Item(), 12);
    }

    [Fact]
    public void Second_backward_through_freed_graph_throws_and_retain_graph_allows_it()
    {
        var x = Tensor.FromArray(new double[] { 1, 2 });
        x.RequiresGrad = true;
        var loss = (x * x).Sum();
        loss.Backward(retainGraph: true);
        loss.Backward();
        Assert.Equal(new double[] { 4, 8 }, x.Grad!.ToDoubleArray());
        Assert.Throws<InvalidOperationException>(() => loss.Backward());
    }

    [Fact]
    public void NoGrad_scope_records_nothing()
    {
        var x = Tensor.FromArray(new double[] { 1, 2 });
        x.RequiresGrad = true;
        Tensor y;
        using (Tensor.NoGrad()) y = x * 2.0;
        Assert.False(y.RequiresGrad);
        Assert.True((x * 2.0).RequiresGrad);
    }

    [Fact]
    public void Backward_of_a_non_scalar_without_gradient_explains_why()
    {
        var x = Tensor.FromArray(new double[] { 1, 2 });
        x.RequiresGrad = true;
        var e = Assert.Throws<InvalidOperationException>(() => (x * 2.0).Backward());
        Assert.Contains("one-element", e.Message);
    }
}
