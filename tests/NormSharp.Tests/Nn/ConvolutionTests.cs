using NormSharp.Nn;
using NormSharp.Tests.Testing;

namespace NormSharp.Tests.Nn;

public class ConvolutionTests
{
    // x = 1..9 as a 1×1×3×3 image and the 2×2 kernel [[1, 2], [3, 4]] are the hand-computed examples below.
    private static Tensor Image3x3() => Tensor.FromArray(new float[] { 1, 2, 3, 4, 5, 6, 7, 8, 9 }, 1, 1, 3, 3);

    private static Conv2d Conv2x2(Size2? stride = null, ConvPadding padding = default, Size2? dilation = null, float bias = 0)
    {
        var conv = new Conv2d(1, 1, 2, stride, padding, dilation);
        conv.Weight.CopyFrom(new float[] { 1, 2, 3, 4 });
        conv.Bias!.CopyFrom(new[] { bias });
        return conv;
    }

    [Fact]
    public void Forward_matches_hand_computed_values()
    {
        // y[0,0] = 1·1 + 2·2 + 3·4 + 4·5 = 37, and so on, plus the bias 0.5.
        Tensor y = Conv2x2(bias: 0.5f).Forward(Image3x3());
        Assert.Equal(new[] { 1, 1, 2, 2 }, y.Shape);
        Assert.Equal(new float[] { 37.5f, 47.5f, 67.5f, 77.5f }, y.ToArray());
    }

    [Fact]
    public void Stride_2_with_padding_1_reads_zeros_outside_the_image()
    {
        // Windows start at (−1, −1), (−1, 1), (1, −1), (1, 1): e.g. the first sees only x[0,0]·w[1,1] = 4.
        Tensor y = Conv2x2(stride: 2, padding: 1).Forward(Image3x3());
        Assert.Equal(new[] { 1, 1, 2, 2 }, y.Shape);
        Assert.Equal(new float[] { 4, 18, 36, 77 }, y.ToArray());
    }

    [Fact]
    public void Dilation_2_spreads_the_kernel_taps()
    {
        // Taps at (0,0), (0,2), (2,0), (2,2): 1·1 + 3·2 + 7·3 + 9·4 = 64.
        Tensor y = Conv2x2(dilation: 2).Forward(Image3x3());
        Assert.Equal(new[] { 1, 1, 1, 1 }, y.Shape);
        Assert.Equal(new float[] { 64 }, y.ToArray());
    }

    [Fact]
    public void Same_padding_with_an_even_kernel_pads_only_the_bottom_and_right()
    {
        // The total padding 1 goes after the image (PyTorch's rule), so the top-left outputs equal the valid ones.
        Tensor y = Conv2x2(padding: "same").Forward(Image3x3());
        Assert.Equal(new[] { 1, 1, 3, 3 }, y.Shape);
        Assert.Equal(new float[] { 37, 47, 21, 67, 77, 33, 23, 26, 9 }, y.ToArray());
    }

    [Fact]
    public void Same_padding_keeps_the_size_and_equals_explicit_padding_for_odd_kernels()
    {
        var same = new Conv2d(3, 4, 3, padding: "same", dilation: 2, generator: new RandomGenerator(1));
        var explicitPad = new Conv2d(3, 4, 3, padding: 2, dilation: 2);
        explicitPad.LoadStateDict(same.StateDict());
        Tensor x = Tensor.Normal(new[] { 2, 3, 7, 6 }, generator: new RandomGenerator(2));
        Tensor y = same.Forward(x);
        Assert.Equal(new[] { 2, 4, 7, 6 }, y.Shape);
        Assert.Equal(explicitPad.Forward(x).ToArray(), y.ToArray());
    }

    [Theory]
    [InlineData(3, 3, 1, 1, 0, 0, 1, 1, true)]
    [InlineData(3, 3, 2, 2, 1, 1, 1, 1, true)]
    [InlineData(3, 2, 2, 1, 0, 1, 2, 1, false)]
    [InlineData(1, 1, 1, 1, 0, 0, 1, 1, true)]
    [InlineData(1, 1, 2, 2, 0, 0, 1, 1, false)]
    [InlineData(2, 3, 3, 2, 2, 1, 2, 3, true)]
    public void Forward_matches_the_definition_on_random_inputs(int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, bool bias)
    {
        var layer = (Conv2d)new Conv2d(3, 5, (kh, kw), (sh, sw), (ph, pw), (dh, dw), bias, new RandomGenerator(3)).To(DType.Float64);
        Tensor x = GradCheck.Random(4, 2, 3, 9, 8);
        Tensor y = layer.Forward(x);
        double[] expected = Reference.Conv2d(x, layer.Weight, layer.Bias, (sh, sw), (ph, ph), (pw, pw), (dh, dw), y.Size(2), y.Size(3));
        Assert.Equal(2, y.Size(0));
        Assert.Equal(5, y.Size(1));
        Assert.Equal((9 + 2 * ph - dh * (kh - 1) - 1) / sh + 1, y.Size(2));
        Assert.Equal((8 + 2 * pw - dw * (kw - 1) - 1) / sw + 1, y.Size(3));
        TensorAssert.Close(expected, y, rtol: 1e-12, atol: 1e-12);
    }

    [Fact]
    public void Unbatched_input_gives_an_unbatched_output()
    {
        var conv = new Conv2d(2, 3, 3, padding: 1, generator: new RandomGenerator(5));
        Tensor x = Tensor.Normal(new[] { 2, 5, 4 }, generator: new RandomGenerator(6));
        Tensor y = conv.Forward(x);
        Assert.Equal(new[] { 3, 5, 4 }, y.Shape);
        Assert.Equal(conv.Forward(x.Unsqueeze(0)).ToArray(), y.ToArray());
    }

    [Fact]
    public void Default_initialization_is_uniform_within_one_over_sqrt_fan_in()
    {
        // fan_in = 4·3·3 = 36, so weight and bias lie in ±1/6.
        var conv = new Conv2d(4, 50, 3, generator: new RandomGenerator(7));
        Assert.Equal(new[] { 50, 4, 3, 3 }, conv.Weight.Shape);
        float[] w = conv.Weight.ToArray();
        Assert.All(w, v => Assert.InRange(v, -1f / 6, 1f / 6));
        Assert.True(w.Max() > 0.16f && w.Min() < -0.16f);
        Assert.All(conv.Bias!.ToArray(), v => Assert.InRange(v, -1f / 6, 1f / 6));
    }

    [Fact]
    public void Images_grouped_into_shared_products_with_a_one_image_remainder_match_the_definition()
    {
        // 8 channels, 3×3, 36×36: two images fill the column budget, so a batch of 3 runs as a pair and a single image.
        var layer = (Conv2d)new Conv2d(8, 3, 3, padding: 1, generator: new RandomGenerator(21)).To(DType.Float64);
        Tensor x = GradCheck.Random(22, 3, 8, 36, 36);
        Assert.Equal(2, NormSharp.Kernels.Convolution.ImagesPerGemm(new NormSharp.Kernels.ConvGeometry(3, 8, 3,
            new NormSharp.Kernels.WindowAxis(36, 36, 3, 1, 1, 1), new NormSharp.Kernels.WindowAxis(36, 36, 3, 1, 1, 1))));
        x.RequiresGrad = true;
        Tensor y = layer.Forward(x);
        TensorAssert.Close(Reference.Conv2d(x, layer.Weight, layer.Bias, (1, 1), (1, 1), (1, 1), (1, 1), 36, 36), y, rtol: 1e-12, atol: 1e-12);

        // The convolution is linear in x and in W, so the gradients must satisfy ⟨dx, v⟩ = ⟨dy, W⋆v⟩ and
        // ⟨dW, V⟩ = ⟨dy, V⋆x⟩ (bias-free products) for any directions v, V.
        Tensor dy = GradCheck.Random(23, 3, 3, 36, 36);
        y.Backward(dy);
        Tensor v = GradCheck.Random(24, 3, 8, 36, 36), directionW = GradCheck.Random(25, 3, 8, 3, 3);
        double Dot(Tensor a, Tensor b) => a.ToDoubleArray().Zip(b.ToDoubleArray(), (p, q) => p * q).Sum();
        using (Tensor.NoGrad())
        {
            Assert.Equal(Dot(dy, Functional.Conv2d(v, layer.Weight, null, padding: 1)), Dot(x.Grad!, v), 1e-9);
            Assert.Equal(Dot(dy, Functional.Conv2d(x, directionW, null, padding: 1)), Dot(layer.Weight.Grad!, directionW), 1e-9);
        }
    }

    // ---- gradients ------------------------------------------------------------------------------------------------

    [Fact] public void Backward_matches_finite_differences() => GradCheck.CheckModule(new Conv2d(3, 4, 3), GradCheck.Random(1, 2, 3, 6, 5));
    [Fact] public void Backward_with_stride_2_and_padding_1_matches_finite_differences() => GradCheck.CheckModule(new Conv2d(2, 3, 3, stride: 2, padding: 1), GradCheck.Random(2, 2, 2, 7, 6));
    [Fact] public void Backward_with_dilation_2_matches_finite_differences() => GradCheck.CheckModule(new Conv2d(2, 3, 3, dilation: 2, padding: 1), GradCheck.Random(3, 2, 2, 7, 7));
    [Fact] public void Backward_without_bias_matches_finite_differences() => GradCheck.CheckModule(new Conv2d(2, 3, (2, 3), stride: (2, 1), bias: false), GradCheck.Random(4, 2, 2, 6, 6));
    [Fact] public void Backward_with_same_padding_and_an_even_kernel_matches_finite_differences() => GradCheck.CheckModule(new Conv2d(2, 2, 2, padding: "same"), GradCheck.Random(5, 2, 2, 5, 4));
    [Fact] public void Backward_of_a_pointwise_convolution_matches_finite_differences() => GradCheck.CheckModule(new Conv2d(3, 2, 1), GradCheck.Random(6, 2, 3, 4, 3));
    [Fact] public void Backward_of_an_unbatched_input_matches_finite_differences() => GradCheck.CheckModule(new Conv2d(2, 2, 3, padding: 1), GradCheck.Random(7, 2, 4, 4));
    [Fact] public void Backward_over_a_batch_larger_than_the_weight_gradient_groups_matches_finite_differences() => GradCheck.CheckModule(new Conv2d(1, 2, 2, stride: 2), GradCheck.Random(8, 21, 1, 4, 4));

    [Fact] public void Transposed_backward_matches_finite_differences() => GradCheck.CheckModule(new ConvTranspose2d(3, 2, 3), GradCheck.Random(11, 2, 3, 4, 3));
    [Fact] public void Transposed_backward_with_stride_2_padding_1_and_output_padding_1_matches_finite_differences() => GradCheck.CheckModule(new ConvTranspose2d(2, 3, 3, stride: 2, padding: 1, outputPadding: 1), GradCheck.Random(12, 2, 2, 3, 4));
    [Fact] public void Transposed_backward_with_dilation_2_matches_finite_differences() => GradCheck.CheckModule(new ConvTranspose2d(2, 2, 2, dilation: 2, outputPadding: 1), GradCheck.Random(13, 2, 2, 3, 3));
    [Fact] public void Transposed_backward_without_bias_matches_finite_differences() => GradCheck.CheckModule(new ConvTranspose2d(2, 3, (3, 2), stride: (1, 2), padding: (1, 0), bias: false), GradCheck.Random(14, 2, 2, 3, 3));

    // ---- transposed convolution -----------------------------------------------------------------------------------

    private static ConvTranspose2d Transposed2x2(Size2? stride = null, Size2 outputPadding = default)
    {
        var layer = new ConvTranspose2d(1, 1, 2, stride, outputPadding: outputPadding);
        layer.Weight.CopyFrom(new float[] { 1, 2, 3, 4 });
        layer.Bias!.CopyFrom(new float[] { 0 });
        return layer;
    }

    [Fact]
    public void Transposed_forward_scatters_each_input_times_the_kernel()
    {
        // Each input value stamps the kernel [[1, 2], [3, 4]] at its position; overlaps add.
        Tensor y = Transposed2x2().Forward(Tensor.FromArray(new float[] { 1, 2, 3, 4 }, 1, 1, 2, 2));
        Assert.Equal(new[] { 1, 1, 3, 3 }, y.Shape);
        Assert.Equal(new float[] { 1, 4, 4, 6, 20, 16, 9, 24, 16 }, y.ToArray());
    }

    [Fact]
    public void Transposed_stride_2_places_stamps_apart_and_output_padding_adds_a_row_and_column()
    {
        Tensor x = Tensor.FromArray(new float[] { 1, 2, 3, 4 }, 1, 1, 2, 2);
        Tensor y = Transposed2x2(stride: 2).Forward(x);
        Assert.Equal(new[] { 1, 1, 4, 4 }, y.Shape);
        Assert.Equal(new float[] { 1, 2, 2, 4, 3, 4, 6, 8, 3, 6, 4, 8, 9, 12, 12, 16 }, y.ToArray());

        Tensor padded = Transposed2x2(stride: 2, outputPadding: 1).Forward(x);
        Assert.Equal(new[] { 1, 1, 5, 5 }, padded.Shape);
        float[] values = padded.ToArray();
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) Assert.Equal(y.ToArray()[i * 4 + j], values[i * 5 + j]);
        Assert.All(Enumerable.Range(0, 5).Select(k => values[4 * 5 + k]).Concat(Enumerable.Range(0, 5).Select(k => values[k * 5 + 4])), v => Assert.Equal(0f, v));
    }

    [Theory]
    [InlineData(1, 0, 0, 1)]
    [InlineData(2, 1, 1, 1)]
    [InlineData(2, 0, 1, 2)]
    [InlineData(3, 2, 2, 1)]
    public void Transposed_forward_matches_the_definition_on_random_inputs(int stride, int padding, int outputPadding, int dilation)
    {
        var layer = (ConvTranspose2d)new ConvTranspose2d(3, 2, 3, stride, padding, outputPadding, dilation, generator: new RandomGenerator(15)).To(DType.Float64);
        Tensor x = GradCheck.Random(16, 2, 3, 4, 5);
        Tensor y = layer.Forward(x);
        Assert.Equal(new[] { 2, 2, (4 - 1) * stride - 2 * padding + dilation * 2 + outputPadding + 1, (5 - 1) * stride - 2 * padding + dilation * 2 + outputPadding + 1 }, y.Shape);
        TensorAssert.Close(Reference.ConvTranspose2d(x, layer.Weight, layer.Bias, stride, padding, dilation, y.Size(2), y.Size(3)), y, rtol: 1e-12, atol: 1e-12);
    }

    [Theory]
    [InlineData(7, 0)]
    [InlineData(8, 1)]
    public void Transposed_forward_equals_the_input_gradient_of_conv2d_with_the_same_weight(int size, int outputPadding)
    {
        var conv = (Conv2d)new Conv2d(3, 4, 3, stride: 2, padding: 1, bias: false, generator: new RandomGenerator(17)).To(DType.Float64);
        Tensor x = GradCheck.Random(18, 2, 3, size, size);
        x.RequiresGrad = true;
        Tensor y = conv.Forward(x);
        Tensor dy = GradCheck.Random(19, y.Shape);
        y.Backward(dy);
        Tensor transposed = Functional.ConvTranspose2d(dy, conv.Weight, stride: 2, padding: 1, outputPadding: outputPadding);
        Assert.Equal(x.Shape, transposed.Shape);
        TensorAssert.Close(x.Grad!.ToDoubleArray(), transposed, rtol: 1e-12, atol: 1e-12);
    }

    // ---- errors ---------------------------------------------------------------------------------------------------

    [Fact]
    public void Wrong_channel_count_names_the_layer_and_both_shapes()
    {
        var e = Assert.Throws<ArgumentException>(() => new Conv2d(1, 32, 3, padding: "same").Forward(Tensor.Zeros(new[] { 8, 3, 28, 28 })));
        Assert.Contains("Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1), padding=same)", e.Message);
        Assert.Contains("(N, 1, H, W)", e.Message);
        Assert.Contains("(8, 3, 28, 28)", e.Message);
    }

    [Fact]
    public void Wrong_rank_names_the_layer_and_the_shape()
    {
        var e = Assert.Throws<ArgumentException>(() => new Conv2d(1, 32, 3, bias: false).Forward(Tensor.Zeros(new[] { 8, 784 })));
        Assert.Contains("Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1), bias=False)", e.Message);
        Assert.Contains("(8, 784)", e.Message);
        var t = Assert.Throws<ArgumentException>(() => new ConvTranspose2d(4, 2, 2, stride: 2).Forward(Tensor.Zeros(new[] { 1, 2, 5, 5 })));
        Assert.Contains("ConvTranspose2d(4, 2, kernel_size=(2, 2), stride=(2, 2))", t.Message);
        Assert.Contains("(N, 4, H, W)", t.Message);
        Assert.Contains("(1, 2, 5, 5)", t.Message);
    }

    [Fact]
    public void Kernel_larger_than_the_padded_input_is_rejected_with_both_sizes()
    {
        var e = Assert.Throws<ArgumentException>(() => new Conv2d(1, 1, 5, padding: 1).Forward(Tensor.Zeros(new[] { 1, 1, 2, 3 })));
        Assert.Contains("padded input (4 × 5)", e.Message);
        Assert.Contains("dilated kernel (5 × 5)", e.Message);
        Assert.Contains("(1, 1, 2, 3)", e.Message);
    }

    [Fact]
    public void Invalid_hyper_parameters_are_rejected_with_the_layer_description()
    {
        Assert.Contains("stride must be positive, got (0, 0)", Assert.Throws<ArgumentException>(() => new Conv2d(1, 2, 3, stride: 0)).Message);
        Assert.Contains("padding='same' is not supported for strided convolutions", Assert.Throws<ArgumentException>(() => new Conv2d(1, 2, 3, stride: 2, padding: "same")).Message);
        Assert.Contains("padding must be non-negative, got (-1, 0)", Assert.Throws<ArgumentException>(() => new Conv2d(1, 2, 3, padding: (-1, 0))).Message);
        Assert.Contains("kernel_size must be positive, got (3, -1)", Assert.Throws<ArgumentException>(() => new Conv2d(1, 2, (3, -1))).Message);
        Assert.Contains("dilation must be positive", Assert.Throws<ArgumentException>(() => new Conv2d(1, 2, 3, dilation: 0)).Message);
        Assert.Contains("in_channels and out_channels must be positive, got 0 and 2", Assert.Throws<ArgumentException>(() => new Conv2d(0, 2, 3)).Message);
        Assert.Contains("should be one of ('valid', 'same')", Assert.Throws<ArgumentException>(() => new Conv2d(1, 2, 3, padding: "full")).Message);
        var op = Assert.Throws<ArgumentException>(() => new ConvTranspose2d(1, 2, 3, stride: 2, outputPadding: 2));
        Assert.Contains("ConvTranspose2d(1, 2, kernel_size=(3, 3), stride=(2, 2), output_padding=(2, 2))", op.Message);
        Assert.Contains("output_padding must be non-negative and smaller than either the stride or the dilation", op.Message);
        Assert.Contains("stride must be positive", Assert.Throws<ArgumentException>(() => Functional.Conv2d(Tensor.Zeros(new[] { 1, 1, 4, 4 }), Tensor.Zeros(new[] { 1, 1, 2, 2 }), stride: (1, 0))).Message);
    }

    [Fact]
    public void Mismatched_bias_or_element_type_is_rejected()
    {
        var x = Tensor.Zeros(new[] { 1, 2, 4, 4 });
        var w = Tensor.Zeros(new[] { 3, 2, 2, 2 });
        Assert.Contains("the bias must have shape (3,), got (2,)", Assert.Throws<ArgumentException>(() => Functional.Conv2d(x, w, Tensor.Zeros(new[] { 2 }))).Message);
        Assert.Contains("convert the module with To()", Assert.Throws<ArgumentException>(() => Functional.Conv2d(x, w.To(DType.Float64))).Message);
    }

    [Fact]
    public void ToString_matches_pytorch()
    {
        Assert.Equal("Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1), padding=same)", new Conv2d(1, 32, 3, padding: "same").ToString());
        Assert.Equal("Conv2d(3, 8, kernel_size=(3, 5), stride=(2, 1), padding=(1, 2), dilation=(2, 2), bias=False)", new Conv2d(3, 8, (3, 5), (2, 1), (1, 2), 2, bias: false).ToString());
        Assert.Equal("Conv2d(2, 2, kernel_size=(1, 1), stride=(1, 1), padding=valid)", new Conv2d(2, 2, 1, padding: "valid").ToString());
        Assert.Equal("ConvTranspose2d(8, 4, kernel_size=(2, 2), stride=(2, 2), output_padding=(1, 1))", new ConvTranspose2d(8, 4, 2, 2, outputPadding: 1).ToString());
        Assert.Equal(new[] { 8, 4, 2, 2 }, new ConvTranspose2d(8, 4, 2).Weight.Shape);
    }
}

/// <summary>Convolutions written straight from their definitions (independent of the im2col kernels), in float64.</summary>
internal static class Reference
{
    /// <summary>y[n,o,i,j] = b[o] + Σ_{c,p,q} w[o,c,p,q]·x[n,c,i·sh − top + p·dh, j·sw − left + q·dw] (zero outside).</summary>
    public static double[] Conv2d(Tensor input, Tensor weight, Tensor? bias, (int H, int W) stride, (int Top, int Bottom) rowPad, (int Left, int Right) colPad, (int H, int W) dilation, int outH, int outW)
    {
        double[] x = input.ToDoubleArray(), w = weight.ToDoubleArray();
        double[]? b = bias?.ToDoubleArray();
        int n = input.Size(0), cin = input.Size(1), h = input.Size(2), wd = input.Size(3);
        int cout = weight.Size(0), kh = weight.Size(2), kw = weight.Size(3);
        var y = new double[n * cout * outH * outW];
        for (int b0 = 0; b0 < n; b0++)
            for (int o = 0; o < cout; o++)
                for (int i = 0; i < outH; i++)
                    for (int j = 0; j < outW; j++)
                    {
                        double sum = b?[o] ?? 0;
                        for (int c = 0; c < cin; c++)
                            for (int p = 0; p < kh; p++)
                                for (int q = 0; q < kw; q++)
                                {
                                    int r = i * stride.H - rowPad.Top + p * dilation.H, s = j * stride.W - colPad.Left + q * dilation.W;
                                    if (r >= 0 && r < h && s >= 0 && s < wd)
                                        sum += w[((o * cin + c) * kh + p) * kw + q] * x[((b0 * cin + c) * h + r) * wd + s];
                                }
                        y[((b0 * cout + o) * outH + i) * outW + j] = sum;
                    }
        return y;
    }

    /// <summary>y[n,o,i·s − pad + p·d, j·s − pad + q·d] += x[n,c,i,j]·w[c,o,p,q] (positions outside the output
    /// dropped), plus b[o].</summary>
    public static double[] ConvTranspose2d(Tensor input, Tensor weight, Tensor? bias, int stride, int padding, int dilation, int outH, int outW)
    {
        double[] x = input.ToDoubleArray(), w = weight.ToDoubleArray();
        double[]? b = bias?.ToDoubleArray();
        int n = input.Size(0), cin = input.Size(1), h = input.Size(2), wd = input.Size(3);
        int cout = weight.Size(1), kh = weight.Size(2), kw = weight.Size(3);
        var y = new double[n * cout * outH * outW];
        for (int b0 = 0; b0 < n; b0++)
            for (int o = 0; o < cout; o++)
                for (int k = 0; k < outH * outW; k++) y[(b0 * cout + o) * outH * outW + k] = b?[o] ?? 0;
        for (int b0 = 0; b0 < n; b0++)
            for (int c = 0; c < cin; c++)
                for (int i = 0; i < h; i++)
                    for (int j = 0; j < wd; j++)
                        for (int o = 0; o < cout; o++)
                            for (int p = 0; p < kh; p++)
                                for (int q = 0; q < kw; q++)
                                {
                                    int r = i * stride - padding + p * dilation, s = j * stride - padding + q * dilation;
                                    if (r >= 0 && r < outH && s >= 0 && s < outW)
                                        y[((b0 * cout + o) * outH + r) * outW + s] += x[((b0 * cin + c) * h + i) * wd + j] * w[((c * cout + o) * kh + p) * kw + q];
                                }
        return y;
    }
}

/// <summary>Convolution results at different thread counts; in the collection that runs alone, because it changes
/// <see cref="Parallelism.ThreadCount"/> for the whole process.</summary>
[Collection("Parallelism")]
public class ConvolutionThreadingTests
{
    // 37 images of 10×10 in float32 (the implicit GEMM): 116 forward tiles, cut at different places at one and three
    // threads, tiles that straddle images, and a weight pass in 16 groups; one input channel takes the register-blocked dot products for dW, 24 the
    // implicit GEMM (14 output channels leave a two-row panel), 44 the implicit GEMM in one group whose 18 column
    // blocks (two channel blocks × 9 taps) the threads split, three and five im2col + GEMM.
    [Theory]
    [InlineData(24, 14)]
    [InlineData(44, 16)]
    [InlineData(3, 8)]
    [InlineData(1, 6)]
    [InlineData(5, 14)]
    public void Result_does_not_depend_on_the_thread_count(int inChannels, int outChannels)
    {
        var conv = new Conv2d(inChannels, outChannels, 3, padding: 1, generator: new RandomGenerator(8));
        Tensor x = Tensor.Normal(new[] { 37, inChannels, 10, 10 }, generator: new RandomGenerator(9));
        Tensor dy = Tensor.Normal(new[] { 37, outChannels, 10, 10 }, generator: new RandomGenerator(10));
        int saved = Parallelism.ThreadCount;
        try
        {
            (float[] Y, float[] Dw, float[] Db, float[] Dx) Run(int threads)
            {
                Parallelism.ThreadCount = threads;
                conv.ZeroGrad();
                Tensor input = x.Detach();
                input.RequiresGrad = true;
                Tensor y = conv.Forward(input);
                y.Backward(dy);
                return (y.ToArray(), conv.Weight.Grad!.ToArray(), conv.Bias!.Grad!.ToArray(), input.Grad!.ToArray());
            }
            var one = Run(1);
            var three = Run(3);
            Assert.Equal(one.Y, three.Y);
            Assert.Equal(one.Dw, three.Dw);
            Assert.Equal(one.Db, three.Db);
            Assert.Equal(one.Dx, three.Dx);
        }
        finally { Parallelism.ThreadCount = saved; }
    }
}
