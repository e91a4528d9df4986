using NormSharp.Tests.Testing;

namespace NormSharp.Tests.Tensors;

public class TensorTests
{
    [Fact]
    public void FromArray_keeps_values_and_shape()
    {
        var t = Tensor.FromArray(new float[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        Assert.Equal(new[] { 2, 3 }, t.Shape);
        Assert.Equal(new float[] { 1, 2, 3, 4, 5, 6 }, t.ToArray());
    }

    [Fact]
    public void FromArray_rejects_wrong_length_naming_both_sizes()
    {
        var e = Assert.Throws<ArgumentException>(() => Tensor.FromArray(new float[5], 2, 3));
        Assert.Contains("(2, 3)", e.Message);
        Assert.Contains("5", e.Message);
    }

    [Fact]
    public void Broadcasting_add_matches_hand_computed_values()
    {
        var a = Tensor.FromArray(new float[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        var b = Tensor.FromArray(new float[] { 10, 20, 30 }, 3);
        var c = Tensor.FromArray(new float[] { 100, 200 }, 2, 1);
        Assert.Equal(new float[] { 11, 22, 33, 14, 25, 36 }, (a + b).ToArray());
        Assert.Equal(new float[] { 101, 102, 103, 204, 205, 206 }, (a + c).ToArray());
        Assert.Equal(new float[] { 90, 80, 70, 190, 180, 170 }, (c - b).ToArray());
    }

    [Fact]
    public void Incompatible_broadcast_names_both_shapes()
    {
        var e = Assert.Throws<ArgumentException>(() => Tensor.Zeros(new[] { 2, 3 }) * Tensor.Zeros(new[] { 4 }));
        Assert.Contains("(2, 3)", e.Message);
        Assert.Contains("(4,)", e.Message);
    }

    [Fact]
    public void Transpose_is_a_view_and_contiguous_copies_in_transposed_order()
    {
        var a = Tensor.FromArray(new float[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        var t = a.Transpose();
        Assert.False(t.IsContiguous);
        Assert.Equal(new[] { 3, 2 }, t.Shape);
        Assert.Equal(new float[] { 1, 4, 2, 5, 3, 6 }, t.ToArray());
        Assert.Equal(new float[] { 1, 4, 2, 5, 3, 6 }, t.Reshape(6).ToArray());
    }

    [Fact]
    public void Reshape_infers_minus_one_and_shares_storage()
    {
        var a = Tensor.FromArray(new float[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        var r = a.Reshape(-1, 2);
        Assert.Equal(new[] { 3, 2 }, r.Shape);
        a.CopyFrom(new float[] { 6, 5, 4, 3, 2, 1 });
        Assert.Equal(new float[] { 6, 5, 4, 3, 2, 1 }, r.ToArray());
        Assert.Throws<ArgumentException>(() => a.Reshape(4, -1));
    }

    [Fact]
    public void Reshape_to_sizes_whose_product_wraps_around_a_long_is_refused()
    {
        // 2147418113 × 1718039348 × 5 = 2^64 + 4: a long product says 4, the sizes of the 4-element tensor.
        var four = Tensor.Zeros(new[] { 1, 4 });
        Assert.Contains("cannot reshape 4 elements", Assert.Throws<ArgumentException>(() => four.Reshape(1, 2147418113, 1718039348, 5)).Message);
        Assert.Throws<ArgumentException>(() => four.Reshape(-1, 2147418113, 1718039348, 5));
        Assert.Contains("do not fill", Assert.Throws<ArgumentException>(() => new NormSharp.Nn.Reshape(2147418113, 1718039348, 5).Forward(four)).Message);
        Assert.Throws<ArgumentException>(() => Tensor.Zeros(new[] { 2147418113, 1718039348, 5 }));
    }

    [Fact]
    public void Reductions_along_axes()
    {
        var a = Tensor.FromArray(new float[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        Assert.Equal(new float[] { 5, 7, 9 }, a.Sum(0).ToArray());
        Assert.Equal(new float[] { 6, 15 }, a.Sum(1).ToArray());
        Assert.Equal(new[] { 2, 1 }, a.Sum(1, keepDim: true).Shape);
        Assert.Equal(21.0, a.Sum().Item());
        Assert.Equal(3.5, a.Mean().Item(), 6);
        Assert.Equal(new float[] { 3, 6 }, a.Max(1).ToArray());
        Assert.Equal(new[] { 0, 0 }, (a * -1).ArgMax(1));
        Assert.Equal(new[] { 2, 2 }, a.ArgMax(1));
    }

    [Fact]
    public void MatMul_matches_hand_computed_product()
    {
        var a = Tensor.FromArray(new float[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        var b = Tensor.FromArray(new float[] { 7, 8, 9, 10, 11, 12 }, 3, 2);
        Assert.Equal(new float[] { 58, 64, 139, 154 }, a.MatMul(b).ToArray());
        var e = Assert.Throws<ArgumentException>(() => a.MatMul(a));
        Assert.Contains("(2, 3)", e.Message);
    }

    [Fact]
    public void Same_seed_gives_same_values()
    {
        var a = Tensor.Normal(new[] { 100 }, generator: new RandomGenerator(7)).ToArray();
        var b = Tensor.Normal(new[] { 100 }, generator: new RandomGenerator(7)).ToArray();
        var c = Tensor.Normal(new[] { 100 }, generator: new RandomGenerator(8)).ToArray();
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.InRange(a.Average(), -0.3, 0.3);
    }

    [Fact]
    public void Scope_returns_buffers_and_rejects_use_after_dispose()
    {
        Tensor kept, dropped;
        using (var scope = TensorScope.Begin())
        {
            dropped = Tensor.Ones(new[] { 1000 });
            kept = scope.Keep(dropped * 2.0);
        }
        Assert.Equal(2f, kept.ToArray()[999]);
        Assert.Throws<ObjectDisposedException>(() => dropped.ToArray());
    }

    [Fact]
    public void Narrow_and_concat_round_trip()
    {
        var a = Tensor.FromArray(new float[] { 1, 2, 3, 4, 5, 6 }, 3, 2);
        var top = a.Narrow(0, 0, 1);
        var rest = a.Narrow(0, 1, 2);
        Assert.Equal(new float[] { 3, 4, 5, 6 }, rest.ToArray());
        Assert.Equal(a.ToArray(), Tensor.Concat(new[] { top, rest }).ToArray());
        Assert.Equal(new float[] { 1, 3, 5, 2, 4, 6 }, Tensor.Concat(new[] { a.Narrow(1, 0, 1).Reshape(1, 3), a.Narrow(1, 1, 1).Reshape(1, 3) }, 1).Reshape(6).ToArray());
    }
}
