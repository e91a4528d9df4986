using NormSharp.Nn;
using NormSharp.Tests.Testing;

namespace NormSharp.Tests.Nn;

public class PoolingTests
{
    // A 4×4 image with a distinct maximum in every window used below.
    private static Tensor Image4x4() => Tensor.FromArray(new float[]
    {
        1, 5, 2, 0,
        3, 4, 8, 1,
        0, 2, 6, 7,
        9, 1, 3, 4,
    }, 1, 1, 4, 4);

    private static Tensor Counting(int size) => Tensor.FromArray(Enumerable.Range(1, size * size).Select(v => (float)v).ToArray(), 1, 1, size, size);

    [Fact]
    public void Max_pool_takes_the_largest_value_of_each_window()
    {
        Tensor y = new MaxPool2d(2).Forward(Image4x4());
        Assert.Equal(new[] { 1, 1, 2, 2 }, y.Shape);
        Assert.Equal(new float[] { 5, 8, 9, 7 }, y.ToArray());
    }

    [Fact]
    public void Max_pool_padding_is_never_chosen()
    {
        // Windows of 3 with stride 2 start at −1 and 1 on each axis.
        Tensor y = new MaxPool2d(3, stride: 2, padding: 1).Forward(-Image4x4());
        Assert.Equal(new[] { 1, 1, 2, 2 }, y.Shape);
        Assert.Equal(new float[] { -1, 0, 0, -1 }, y.ToArray());
        Assert.Equal(new float[] { 5, 8, 9, 8 }, new MaxPool2d(3, stride: 2, padding: 1).Forward(Image4x4()).ToArray());
    }

    [Fact]
    public void Max_pool_with_dilation_2_reads_every_other_value()
    {
        // (0,0) reads x[0,0], x[0,2], x[2,0], x[2,2] = 1, 2, 0, 6.
        Tensor y = new MaxPool2d(2, stride: 1, dilation: 2).Forward(Image4x4());
        Assert.Equal(new float[] { 6, 7, 9, 4 }, y.ToArray());
    }

    [Fact]
    public void Ceil_mode_adds_the_partial_window_at_the_edge()
    {
        Assert.Equal(new float[] { 7, 9, 17, 19 }, new MaxPool2d(2).Forward(Counting(5)).ToArray());
        Tensor y = new MaxPool2d(2, ceilMode: true).Forward(Counting(5));
        Assert.Equal(new[] { 1, 1, 3, 3 }, y.Shape);
        Assert.Equal(new float[] { 7, 9, 10, 17, 19, 20, 22, 24, 25 }, y.ToArray());
    }

    [Fact]
    public void Ceil_mode_drops_a_window_that_would_start_in_the_padding()
    {
        // (5 + 2·1 − 2)/2 rounds up to 3, i.e. 4 windows, but the fourth would start at 6 = H + pad, so PyTorch drops it.
        Tensor y = new MaxPool2d(2, stride: 2, padding: 1, ceilMode: true).Forward(Counting(5));
        Assert.Equal(new[] { 1, 1, 3, 3 }, y.Shape);
        Assert.Equal(new float[] { 1, 3, 5, 11, 13, 15, 21, 23, 25 }, y.ToArray());
    }

    [Fact]
    public void Max_pool_gradient_goes_to_the_first_maximum_on_ties()
    {
        var x = Tensor.Ones(new[] { 1, 1, 2, 2 });
        x.RequiresGrad = true;
        new MaxPool2d(2).Forward(x).Sum().Backward();
        Assert.Equal(new float[] { 1, 0, 0, 0 }, x.Grad!.ToArray());
    }

    [Fact]
    public void Max_pool_gradient_accumulates_where_overlapping_windows_share_a_maximum()
    {
        var x = Tensor.FromArray(new float[] { 0, 0, 0, 0, 9, 0, 0, 0, 0 }, 1, 1, 3, 3);
        x.RequiresGrad = true;
        new MaxPool2d(2, stride: 1).Forward(x).Sum().Backward();
        Assert.Equal(new float[] { 0, 0, 0, 0, 4, 0, 0, 0, 0 }, x.Grad!.ToArray());
    }

    [Fact]
    public void Two_by_two_max_pool_matches_a_window_scan_on_ties_nans_and_odd_sizes()
    {
        // Small integers make ties common; NaNs test PyTorch's rule (a NaN wins; of two NaNs the later one).
        int[] shape = { 2, 3, 7, 6 };
        var random = new Random(5);
        float[] values = new float[shape.Aggregate(1, (a, b) => a * b)];
        for (int i = 0; i < values.Length; i++) values[i] = random.Next(10) == 0 ? float.NaN : random.Next(4);
        var x = Tensor.FromArray(values, shape);
        x.RequiresGrad = true;
        Tensor y = new MaxPool2d(2).Forward(x);
        float[] dy = Enumerable.Range(1, y.Length).Select(v => (float)v).ToArray();
        y.Backward(Tensor.FromArray(dy, y.Shape));

        var expectedY = new List<float>();
        var expectedDx = new float[values.Length];
        int o = 0;
        for (int plane = 0; plane < 6; plane++)
            for (int oh = 0; oh < 3; oh++)
                for (int ow = 0; ow < 3; ow++, o++)
                {
                    int best = -1;
                    float max = float.NegativeInfinity;
                    foreach (var (i, j) in new[] { (0, 0), (0, 1), (1, 0), (1, 1) })
                    {
                        int index = plane * 42 + (2 * oh + i) * 6 + 2 * ow + j;
                        if (best < 0 || values[index] > max || float.IsNaN(values[index])) { max = values[index]; best = index; }
                    }
                    expectedY.Add(max);
                    expectedDx[best] += dy[o];
                }
        Assert.Equal(expectedY.ToArray(), y.ToArray());
        Assert.Equal(expectedDx, x.Grad!.ToArray());
    }

    [Theory]
    [InlineData(28, 28, 2, 2, 0)]
    [InlineData(14, 14, 2, 2, 0)]
    [InlineData(7, 9, 2, 2, 0)]
    [InlineData(9, 8, 3, 2, 1)]
    public void Relu_then_max_pool_without_gradient_gives_the_two_layers_values_bit_for_bit(int height, int width, int kernel, int stride, int padding)
    {
        // Sequential runs the pair as one pooling floored at zero when no gradient is recorded.
        var random = new Random(11);
        float[] pool = { -3, -1, -0f, 0, 0.5f, 2, float.NaN };
        float[] values = Enumerable.Range(0, 2 * 3 * height * width).Select(_ => pool[random.Next(pool.Length)]).ToArray();
        Tensor x = Tensor.FromArray(values, 2, 3, height, width);
        var layers = new Sequential(new ReLU(), new MaxPool2d(kernel, stride: stride, padding: padding));

        Tensor separate = layers[1].Forward(layers[0].Forward(x));
        Tensor together;
        using (Tensor.NoGrad()) together = layers.Forward(x);
        Assert.Equal(separate.Shape, together.Shape);
        Assert.Equal(separate.ToArray().Select(BitConverter.SingleToInt32Bits), together.ToArray().Select(BitConverter.SingleToInt32Bits));
        Assert.Equal(separate.ToArray().Select(BitConverter.SingleToInt32Bits), layers.Forward(x).ToArray().Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public void Relu_then_max_pool_records_the_gradient_through_both_when_one_is_needed()
    {
        var x = Tensor.FromArray(new float[] { -1, 2, -3, -4, 5, -6, -7, -8, 1, 1, 1, 1, -2, -1, -3, -4 }, 1, 1, 4, 4);
        x.RequiresGrad = true;
        new Sequential(new ReLU(), new MaxPool2d(2)).Forward(x).Sum().Backward();
        // Windows after the ReLU: {0, 2, 5, 0} → 5 at 4; {0, 0, 0, 0} → the first, at 2, where the ReLU passes no
        // gradient; {1, 1, 0, 0} → the first 1, at 8; {1, 1, 0, 0} → at 10.
        Assert.Equal(new float[] { 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0 }, x.Grad!.ToArray());
    }

    [Fact]
    public void Max_pool_propagates_nan()
    {
        Tensor y = new MaxPool2d(2).Forward(Tensor.FromArray(new[] { 1f, float.NaN, 3f, 2f }, 1, 1, 2, 2));
        Assert.True(float.IsNaN(y.ToArray()[0]));
    }

    [Fact]
    public void Average_pool_takes_the_mean_of_each_window()
    {
        Tensor y = new AvgPool2d(2).Forward(Image4x4());
        Assert.Equal(new float[] { 13 / 4f, 11 / 4f, 12 / 4f, 20 / 4f }, y.ToArray());
    }

    [Fact]
    public void Average_pool_counts_padding_in_the_divisor_unless_told_not_to()
    {
        // Corner window covers 1, 2, 4, 5 (sum 12) of 9 positions; edge window 1..6 (sum 21); centre 1..9 (sum 45).
        Tensor include = new AvgPool2d(3, stride: 1, padding: 1).Forward(Counting(3));
        TensorAssert.Close(new float[] { 12 / 9f, 21 / 9f, 16 / 9f, 27 / 9f, 45 / 9f, 33 / 9f, 24 / 9f, 39 / 9f, 28 / 9f }, include);
        Tensor exclude = new AvgPool2d(3, stride: 1, padding: 1, countIncludePad: false).Forward(Counting(3));
        TensorAssert.Close(new float[] { 12 / 4f, 21 / 6f, 16 / 4f, 27 / 6f, 45 / 9f, 33 / 6f, 24 / 4f, 39 / 6f, 28 / 4f }, exclude);
    }

    [Fact]
    public void Average_pool_in_ceil_mode_divides_partial_windows_by_their_size()
    {
        // Windows (rows × cols): 2×2, 2×1, 1×2, 1×1 over 1..9.
        Tensor y = new AvgPool2d(2, ceilMode: true).Forward(Counting(3));
        Assert.Equal(new[] { 1, 1, 2, 2 }, y.Shape);
        Assert.Equal(new float[] { 3, 4.5f, 7.5f, 9 }, y.ToArray());
    }

    [Fact]
    public void Unbatched_input_gives_an_unbatched_output()
    {
        Tensor x = Tensor.Normal(new[] { 3, 6, 6 }, generator: new RandomGenerator(1));
        Assert.Equal(new[] { 3, 3, 3 }, new MaxPool2d(2).Forward(x).Shape);
        Assert.Equal(new AvgPool2d(2).Forward(x.Unsqueeze(0)).ToArray(), new AvgPool2d(2).Forward(x).ToArray());
    }

    // ---- gradients ------------------------------------------------------------------------------------------------

    [Fact] public void Max_pool_backward_matches_finite_differences() => GradCheck.CheckModule(new MaxPool2d(2), GradCheck.Random(1, 2, 3, 4, 6));
    [Fact] public void Max_pool_backward_with_stride_2_and_padding_1_matches_finite_differences() => GradCheck.CheckModule(new MaxPool2d(3, stride: 2, padding: 1), GradCheck.Random(2, 2, 2, 5, 6));
    [Fact] public void Max_pool_backward_with_dilation_2_matches_finite_differences() => GradCheck.CheckModule(new MaxPool2d(2, stride: 1, dilation: 2), GradCheck.Random(3, 1, 2, 5, 5));
    [Fact] public void Max_pool_backward_in_ceil_mode_matches_finite_differences() => GradCheck.CheckModule(new MaxPool2d((3, 2), stride: 2, ceilMode: true), GradCheck.Random(4, 2, 2, 6, 5));
    [Fact] public void Average_pool_backward_matches_finite_differences() => GradCheck.CheckModule(new AvgPool2d(2), GradCheck.Random(5, 2, 3, 4, 6));
    [Fact] public void Average_pool_backward_with_padding_excluded_matches_finite_differences() => GradCheck.CheckModule(new AvgPool2d(3, stride: 2, padding: 1, countIncludePad: false), GradCheck.Random(6, 2, 2, 5, 6));
    [Fact] public void Average_pool_backward_in_ceil_mode_with_padding_matches_finite_differences() => GradCheck.CheckModule(new AvgPool2d(3, stride: 2, padding: 1, ceilMode: true), GradCheck.Random(7, 1, 2, 6, 5));

    // ---- errors ---------------------------------------------------------------------------------------------------

    [Fact]
    public void Wrong_rank_names_the_layer_and_the_shape()
    {
        var e = Assert.Throws<ArgumentException>(() => new MaxPool2d(2).Forward(Tensor.Zeros(new[] { 8, 784 })));
        Assert.Contains("MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1), ceil_mode=False)", e.Message);
        Assert.Contains("(N, C, H, W)", e.Message);
        Assert.Contains("(8, 784)", e.Message);
    }

    [Fact]
    public void Input_smaller_than_the_window_is_rejected()
    {
        var e = Assert.Throws<ArgumentException>(() => new AvgPool2d(3).Forward(Tensor.Zeros(new[] { 1, 1, 2, 5 })));
        Assert.Contains("AvgPool2d(kernel_size=(3, 3), stride=(3, 3), padding=(0, 0), ceil_mode=False, count_include_pad=True)", e.Message);
        Assert.Contains("(1, 1, 2, 5)", e.Message);
    }

    [Fact]
    public void Invalid_hyper_parameters_are_rejected_with_the_layer_description()
    {
        Assert.Contains("stride must be positive, got (0, 0)", Assert.Throws<ArgumentException>(() => new MaxPool2d(2, stride: 0)).Message);
        Assert.Contains("kernel_size must be positive, got (-2, -2)", Assert.Throws<ArgumentException>(() => new AvgPool2d(-2)).Message);
        Assert.Contains("dilation must be positive", Assert.Throws<ArgumentException>(() => new MaxPool2d(2, dilation: 0)).Message);
        var pad = Assert.Throws<ArgumentException>(() => new MaxPool2d(3, padding: 2));
        Assert.Contains("MaxPool2d(kernel_size=(3, 3)", pad.Message);
        Assert.Contains("at most half of the kernel size, got padding=(2, 2)", pad.Message);
        Assert.Contains("padding must be non-negative", Assert.Throws<ArgumentException>(() => new AvgPool2d(2, padding: (0, -1))).Message);
    }

    [Fact]
    public void ToString_matches_pytorch()
    {
        Assert.Equal("MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1), ceil_mode=False)", new MaxPool2d(2).ToString());
        Assert.Equal("AvgPool2d(kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), ceil_mode=True, count_include_pad=False)", new AvgPool2d(3, 1, 1, ceilMode: true, countIncludePad: false).ToString());
    }
}
