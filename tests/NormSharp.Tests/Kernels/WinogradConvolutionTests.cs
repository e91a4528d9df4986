using System.Runtime.Intrinsics;
using NormSharp.Kernels;

namespace NormSharp.Tests.Kernels;

/// <summary>The float32 Winograd F(2×2, 3×3) forward (Convolution.Winograd.cs) at every vector width, against the
/// float64 im2col path (itself checked against finite differences and the definition) on the same data.</summary>
public class WinogradConvolutionTests
{
    internal static ConvGeometry Geometry(int batch, int inChannels, int outChannels, int height, int width, int padding) =>
        new(batch, inChannels, outChannels, Axis(height, padding), Axis(width, padding));

    private static WindowAxis Axis(int input, int padding) => new(input, input + 2 * padding - 2, 3, 1, padding, 1);

    /// <summary>Random input, weight and bias for <paramref name="g"/>, uniform in [−1, 1).</summary>
    internal static (float[] Input, float[] Weight, float[] Bias) RandomOperands(ConvGeometry g, int seed)
    {
        var random = new Random(seed);
        float[] Values(int count) => Enumerable.Range(0, count).Select(_ => (float)(2 * random.NextDouble() - 1)).ToArray();
        return (Values(g.Batch * g.InChannels * g.InPlane), Values(g.OutChannels * g.PatchSize), Values(g.OutChannels));
    }

    internal static float[] RunWinograd<TVec>(ConvGeometry g, float[] input, float[] weight, float[] bias)
        where TVec : struct, ISimdVector<TVec, float>
    {
        var output = new float[g.Batch * g.OutChannels * g.OutPlane];
        Convolution.ForwardWinograd<TVec>(g, input, weight, bias, output);
        return output;
    }

    /// <summary>(batch, in channels, out channels, height, width, padding). The seed CNN's conv2 (32 → 64, 14×14: 49
    /// tiles an image, five images a group, the last group three) and conv3 (64 → 128, 7×7: 16 tiles an image, 8
    /// images a group for the products' 1 MiB, the last group four; the last tile row and column are cut to one output); odd sizes: 17 and 19 channels (no whole vectors), odd and unequal sides, no padding (the
    /// input gradient's convolution pads 2), one image; padding 2 (output wider than the input; the input gradient's
    /// convolution pads 0) and a 3×3 image whose output is a single tile; output rows of 16 tiles (exactly one
    /// 512-bit vector of tiles, two of 256 bits, four of 128 bits: no cut store) and of 17 tiles whose last has one
    /// column (whole vectors, then one tile cut by the output's border).</summary>
    public static readonly TheoryData<int, int, int, int, int, int> Shapes = new()
    {
        { 13, 32, 64, 14, 14, 1 },
        { 20, 64, 128, 7, 7, 1 },
        { 1, 17, 19, 9, 11, 1 },
        { 3, 20, 16, 11, 7, 0 },
        { 2, 16, 23, 13, 5, 0 },
        { 2, 18, 16, 6, 5, 2 },
        { 4, 16, 16, 3, 3, 1 },
        { 1, 16, 16, 4, 32, 1 },
        { 2, 17, 16, 5, 33, 1 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Winograd_forward_matches_the_float64_convolution_at_every_width(int batch, int inChannels, int outChannels, int height, int width, int padding)
    {
        ConvGeometry g = Geometry(batch, inChannels, outChannels, height, width, padding);
        Assert.True(Convolution.HasWinogradShape<float>(g));
        var (input, weight, bias) = RandomOperands(g, seed: 41);
        var expected = new double[g.Batch * g.OutChannels * g.OutPlane];
        Convolution.Forward<double>(g, Array.ConvertAll(input, v => (double)v), Array.ConvertAll(weight, v => (double)v),
            Array.ConvertAll(bias, v => (double)v), expected);
        AssertClose(expected, RunWinograd<Simd512<float>>(g, input, weight, bias));
        AssertClose(expected, RunWinograd<Simd256<float>>(g, input, weight, bias));
        AssertClose(expected, RunWinograd<Simd128<float>>(g, input, weight, bias));
        // Without a bias, the outputs are the products alone.
        float[] unbiased = new float[expected.Length];
        Convolution.ForwardWinograd(g, input, weight, default, unbiased);
        for (int i = 0; i < expected.Length; i++) expected[i] -= bias[i / g.OutPlane % g.OutChannels];
        AssertClose(expected, unbiased);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Winograd_input_gradient_matches_the_float64_convolution(int batch, int inChannels, int outChannels, int height, int width, int padding)
    {
        ConvGeometry g = Geometry(batch, inChannels, outChannels, height, width, padding);
        Assert.NotNull(Convolution.InputGradientGeometry(g));
        var random = new Random(43);
        float[] dy = Enumerable.Range(0, g.Batch * g.OutChannels * g.OutPlane).Select(_ => (float)(2 * random.NextDouble() - 1)).ToArray();
        var (_, weight, _) = RandomOperands(g, seed: 44);
        float[] bias = Enumerable.Range(0, g.InChannels).Select(i => 0.1f * i).ToArray();
        var expected = new double[g.Batch * g.InChannels * g.InPlane];
        Convolution.BackwardData<double>(g, Array.ConvertAll(dy, v => (double)v), Array.ConvertAll(weight, v => (double)v),
            Array.ConvertAll(bias, v => (double)v), expected);
        var actual = new float[expected.Length];
        Convolution.BackwardDataWinograd(g, dy, weight, bias, actual);
        AssertClose(expected, actual);
    }

    [Fact]
    public void An_input_gradient_whose_padding_exceeds_two_has_no_Winograd_convolution() =>
        Assert.Null(Convolution.InputGradientGeometry(Geometry(2, 32, 32, 8, 8, 3)));

    /// <summary>Within what F(2×2, 3×3) costs in float32: its transforms add and subtract up to 4 terms before and
    /// after the channel sums, so errors are a few units in the last place of the sum of |terms| (≤ 9·InChannels).</summary>
    private static void AssertClose(double[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = expected.Max(Math.Abs);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5 * Math.Max(scale, 1),
                $"Output {i}: expected {expected[i]}, got {actual[i]} (largest output {scale}).");
    }

    [Fact]
    public void Forwards_run_as_Winograd_at_every_width_but_at_512_bits_input_gradients_only_where_the_tiles_cover_dx_exactly()
    {
        ConvGeometry conv2 = Geometry(128, 32, 64, 14, 14, 1), conv3 = Geometry(128, 64, 128, 7, 7, 1), odd = Geometry(128, 32, 32, 14, 13, 1);
        Assert.True(Convolution.RunsWinograd<float>(conv2));
        Assert.True(Convolution.RunsWinograd<float>(conv3));
        Assert.True(Convolution.RunsWinograd<float>(odd));
        Assert.True(Convolution.InputGradientRunsWinograd<float>(conv2));
        Assert.Equal(!Vector512.IsHardwareAccelerated, Convolution.InputGradientRunsWinograd<float>(conv3));
        Assert.Equal(!Vector512.IsHardwareAccelerated, Convolution.InputGradientRunsWinograd<float>(odd));
    }

    [Fact]
    public void First_layers_strided_and_dilated_convolutions_do_not_have_the_Winograd_shape()
    {
        ConvGeometry seedConv1 = Geometry(128, 1, 32, 28, 28, 1);
        Assert.False(Convolution.HasWinogradShape<float>(seedConv1));
        Assert.False(Convolution.HasWinogradShape<float>(Geometry(2, 15, 32, 8, 8, 1)));
        Assert.False(Convolution.HasWinogradShape<double>(Geometry(2, 32, 32, 8, 8, 1)));
        ConvGeometry g = Geometry(2, 32, 32, 8, 8, 1);
        Assert.False(Convolution.HasWinogradShape<float>(g with { Rows = g.Rows with { Stride = 2, Output = 4 } }));
        Assert.False(Convolution.HasWinogradShape<float>(g with { Cols = g.Cols with { Dilation = 2, Output = 6 } }));
        Assert.True(Convolution.HasWinogradShape<float>(g));
    }
}

/// <summary>The Winograd forward at several thread counts; in the collection that runs alone, because it changes
/// <see cref="Parallelism.ThreadCount"/> for the whole process.</summary>
[Collection("Parallelism")]
public class WinogradConvolutionThreadTests
{
    [Fact]
    public void Winograd_forward_gives_the_same_bits_on_every_run_and_thread_count()
    {
        // 13 images of 14×14: three groups (five, five and three images), cut differently by 1, 2 and 3 threads.
        ConvGeometry g = WinogradConvolutionTests.Geometry(13, 32, 24, 14, 14, 1);
        var (input, weight, bias) = WinogradConvolutionTests.RandomOperands(g, seed: 42);
        int saved = Parallelism.ThreadCount;
        try
        {
            Parallelism.ThreadCount = 1;
            float[] reference = WinogradConvolutionTests.RunWinograd<Simd256<float>>(g, input, weight, bias);
            foreach (int threads in new[] { 1, 2, 3 })
            {
                Parallelism.ThreadCount = threads;
                Assert.Equal(reference, WinogradConvolutionTests.RunWinograd<Simd256<float>>(g, input, weight, bias));
            }
        }
        finally { Parallelism.ThreadCount = saved; }
    }
}
