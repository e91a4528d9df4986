using NormSharp.Kernels;
using NormSharp.Nn;
using NormSharp.Tests.Testing;

namespace NormSharp.Tests.Kernels;

/// <summary>The float32 implicit GEMM (Convolution.Implicit.cs) that runs "same"-size unit-stride convolutions and
/// their input and weight gradients, checked against the float64 im2col path (itself checked against finite differences and
/// the definition) on the same weights and data.</summary>
public class ImplicitConvolutionTests
{
    /// <summary>Runs a float32 layer and its float64 copy forward and backward and compares y, dx, dW and db.</summary>
    internal static void AssertFloat32MatchesFloat64(Func<Module> create, int[] inputShape, int seed)
    {
        Module single = create(), wide = create().To(DType.Float64);
        Tensor x64 = GradCheck.Random(seed, inputShape), x32 = x64.To(DType.Float32);
        x64.RequiresGrad = true;
        x32.RequiresGrad = true;
        Tensor y64 = wide.Forward(x64), y32 = single.Forward(x32);
        Tensor dy = GradCheck.Random(seed + 1, y64.Shape);
        y64.Backward(dy);
        y32.Backward(dy.To(DType.Float32));
        TensorAssert.Close(y64.ToDoubleArray(), y32, rtol: 1e-4, atol: 1e-4);
        TensorAssert.Close(x64.Grad!.ToDoubleArray(), x32.Grad!, rtol: 1e-4, atol: 1e-4);
        foreach (var (p64, p32) in wide.Parameters().Zip(single.Parameters()))
            TensorAssert.Close(p64.Grad!.ToDoubleArray(), p32.Grad!, rtol: 1e-4, atol: 1e-3);
    }

    [Theory]
    // 13 images of 7×7 (one group on one thread, 7 + 6 images on two): most tiles straddle two images; 13 output
    // channels leave a one-row panel.
    [InlineData(3, 13, 7, 3, 13)]
    // 25 channels leave a one-row panel; the input gradient's patch is 25·9 = 225 rows into 40 channels.
    [InlineData(40, 25, 6, 3, 2)]
    // A patch of 72·9 = 648 rows and the bias's run in two depth blocks, the bias's row in the second; the weight
    // pass's third 32-channel block holds 8 channels.
    [InlineData(72, 20, 5, 3, 3)]
    // The input gradient's patch of 72·9 = 648 rows (the weight read turned, straight into the panels) in two depth
    // blocks, into 20 channels (one panel of 12 rows and one of 8).
    [InlineData(20, 72, 5, 3, 3)]
    // A 30×30 plane (900 positions) is a group of its own, with a partial last tile.
    [InlineData(2, 5, 30, 5, 1)]
    // Even kernels: "same" pads 0 before and 1 after (2×2), or 1 and 2 (4×4); the input gradient mirrors them.
    [InlineData(3, 4, 9, 2, 3)]
    [InlineData(2, 3, 8, 4, 2)]
    // Patches of at most 16 rows take the weight pass of register-blocked dot products: one channel, 3×3, over more
    // images than the weight pass has groups and with 7 output channels (a partial block); a 4×4 patch of 16 rows
    // with 36 positions (two whole vectors and a tail of 4 at 512 bits); and a 23×23 plane (529 positions: two spans and
    // a one-position tail at 512 bits) into 9 output channels (a full block of 8 and a partial one).
    [InlineData(1, 7, 12, 3, 21)]
    [InlineData(1, 5, 6, 4, 3)]
    [InlineData(1, 9, 23, 3, 5)]
    // Deep patches on at least 22 channels take the weight pass's implicit GEMM: 44 channels fill one 32-channel block
    // and part of a second, so the batch is one group whose 33 images of 32×32 are staged one at a time, each in two
    // depth blocks of 512 positions (dy transposed into the panels image by image); 24 channels, one block, are
    // summed in groups of images; an even kernel has its centre tap at (1, 1).
    [InlineData(44, 5, 32, 3, 33)]
    [InlineData(24, 3, 8, 4, 2)]
    // At 512 bits the shifted tile (Convolution.Tile.cs): a 5×5 forward on 20 channels (patch 500 and the bias's row)
    // into 16 outputs, panels of 12 and 4 rows, and its input gradient into 20 (12 and 8 rows); the input gradient
    // of 44 channels on 7×7 (odd, so not Winograd) in panels of 12, 12, 12 and 8 rows, the weight pass's columns
    // split over two channel blocks.
    [InlineData(20, 16, 7, 5, 3)]
    [InlineData(44, 16, 7, 3, 5)]
    public void Same_size_convolution_in_float32_matches_float64(int inChannels, int outChannels, int side, int kernel, int batch)
    {
        Assert.True(Convolution.RunsImplicitly<float>(new ConvGeometry(batch, inChannels, outChannels,
            new WindowAxis(side, side, kernel, 1, (kernel - 1) / 2, 1), new WindowAxis(side, side, kernel, 1, (kernel - 1) / 2, 1))));
        AssertFloat32MatchesFloat64(() => new Conv2d(inChannels, outChannels, kernel, padding: "same", generator: new RandomGenerator(31)),
            [batch, inChannels, side, side], seed: 32);
    }

    [Theory]
    // At 512 bits the input gradient of a batch of whole 32-image chunks runs across images
    // (Convolution.AcrossImages.cs): 16 output channels into 20 (panels of 12 and 8 rows) on 7×7, where the border
    // positions skip the taps that read padding; a 5×5 kernel on 5×5, whose every position skips some rows and
    // columns of taps; an even 4×4 kernel ("same" pads 1 before and 2 after, the gradient mirrors them); two chunks
    // (64 images) of 3×3.
    [InlineData(20, 16, 7, 3, 32)]
    [InlineData(16, 24, 5, 5, 32)]
    [InlineData(24, 16, 6, 4, 32)]
    [InlineData(16, 16, 3, 3, 64)]
    // So does the weight pass of two 32-channel blocks over whole chunks of 16 images: 44 channels (a second block of
    // 12 and zero padding) on 7×7; 48 channels under a 5×5 kernel on 5×5 over two chunks; an even 4×4 kernel; a 5×5
    // kernel on a 2×2 image, whose taps two rows or columns away read only padding and leave their columns of dW zero.
    [InlineData(44, 12, 7, 3, 16)]
    [InlineData(48, 8, 5, 5, 32)]
    [InlineData(48, 8, 6, 4, 16)]
    [InlineData(44, 4, 2, 5, 16)]
    public void Gradients_across_images_match_float64(int inChannels, int outChannels, int side, int kernel, int batch) =>
        AssertFloat32MatchesFloat64(() => new Conv2d(inChannels, outChannels, kernel, padding: "same", generator: new RandomGenerator(41)),
            [batch, inChannels, side, side], seed: 42);

    [Fact]
    public void Transposed_convolution_across_images_adds_its_bias() =>
        // Its forward is the convolution's input gradient: across images at 512 bits, with the bias starting each sum.
        AssertFloat32MatchesFloat64(() => new ConvTranspose2d(16, 12, 3, padding: 1, generator: new RandomGenerator(43)), [32, 16, 7, 7], seed: 44);

    [Fact]
    public void Same_size_transposed_convolution_in_float32_matches_float64() =>
        // Its forward is the convolution's input gradient, which runs implicitly; its input gradient is the forward.
        AssertFloat32MatchesFloat64(() => new ConvTranspose2d(6, 14, 3, padding: 1, generator: new RandomGenerator(33)), [11, 6, 7, 7], seed: 34);

    [Fact]
    public void Padding_wider_than_the_image_reads_zeros_in_float32_and_float64()
    {
        // A 5×5 kernel with padding 2 on a 2×2 image: the taps two rows away read only padding.
        var layer = new Conv2d(2, 3, 5, padding: 2, generator: new RandomGenerator(35));
        Tensor x = GradCheck.Random(36, 2, 2, 2, 2);
        double[] expected = NormSharp.Tests.Nn.Reference.Conv2d(x, layer.Weight.To(DType.Float64), layer.Bias!.To(DType.Float64), (1, 1), (2, 2), (2, 2), (1, 1), 2, 2);
        TensorAssert.Close(expected, layer.Forward(x.To(DType.Float32)), rtol: 1e-5, atol: 1e-5);
        TensorAssert.Close(expected, layer.To(DType.Float64).Forward(x), rtol: 1e-12, atol: 1e-12);
        AssertFloat32MatchesFloat64(() => new Conv2d(2, 3, 5, padding: 2, generator: new RandomGenerator(35)), [2, 2, 2, 2], seed: 37);
    }

    [Fact]
    public void Strided_dilated_and_pointwise_convolutions_keep_the_im2col_path()
    {
        var rows = new WindowAxis(8, 8, 3, 1, 1, 1);
        Assert.False(Convolution.RunsImplicitly<double>(new ConvGeometry(2, 3, 4, rows, rows)));
        Assert.False(Convolution.RunsImplicitly<float>(new ConvGeometry(2, 3, 4, rows with { Output = 4, Stride = 2 }, rows)));
        Assert.False(Convolution.RunsImplicitly<float>(new ConvGeometry(2, 3, 4, rows, rows with { Dilation = 2, PadBefore = 2 })));
        var pointwise = new WindowAxis(8, 8, 1, 1, 0, 1);
        Assert.False(Convolution.RunsImplicitly<float>(new ConvGeometry(2, 3, 4, pointwise, pointwise)));
    }
}

/// <summary>The implicit forward at several thread counts; in the collection that runs alone, because it changes
/// <see cref="Parallelism.ThreadCount"/> for the whole process.</summary>
[Collection("Parallelism")]
public class ImplicitConvolutionChunkTests
{
    [Theory]
    // 4 images of 10×10 (400 positions, 13 tiles, the last of 16): the two threads' tile runs (6 and 7 tiles) start
    // mid-image, so a chunk's first and last positions read taps staged from the positions around it.
    [InlineData(4, 10, 2)]
    // A 40×40 plane (1,600 positions) spans four chunks of 512 positions; chunks start at different places in the
    // image, so each reads the masks from its own place on.
    [InlineData(1, 40, 1)]
    [InlineData(3, 40, 2)]
    // 37 images of 7×7 at three threads: tiles straddle up to two image boundaries.
    [InlineData(37, 7, 3)]
    public void Forward_and_input_gradient_match_float64_whatever_chunk_and_thread_cut_the_positions(int batch, int side, int threads)
    {
        int saved = Parallelism.ThreadCount;
        try
        {
            Parallelism.ThreadCount = threads;
            ImplicitConvolutionTests.AssertFloat32MatchesFloat64(() => new Conv2d(9, 14, 3, padding: "same", generator: new RandomGenerator(38)), [batch, 9, side, side], seed: 39);
        }
        finally { Parallelism.ThreadCount = saved; }
    }
}

/// <summary>The input and weight gradients across images (Convolution.AcrossImages.cs, at 512 bits) at several thread counts; in
/// the collection that runs alone, because it changes <see cref="Parallelism.ThreadCount"/> for the whole process.</summary>
[Collection("Parallelism")]
public class AcrossImagesChunkTests
{
    [Fact]
    public void Gradients_are_the_same_bits_on_one_two_and_three_threads()
    {
        // 96 images of 7×7: the input gradient's three chunks of 32 images split 2 + 1 on two threads and one each on
        // three; the weight pass's 18 column blocks (2 channel blocks × 9 taps) 9 + 9 and 6 + 6 + 6.
        var layer = new Conv2d(44, 16, 3, padding: "same", generator: new RandomGenerator(45));
        Tensor x = GradCheck.Random(46, 96, 44, 7, 7).To(DType.Float32), dy = GradCheck.Random(47, 96, 16, 7, 7).To(DType.Float32);
        int saved = Parallelism.ThreadCount;
        try
        {
            float[][]? first = null;
            foreach (int threads in new[] { 1, 2, 3 })
            {
                Parallelism.ThreadCount = threads;
                Tensor input = x.Detach();
                input.RequiresGrad = true;
                layer.ZeroGrad();
                layer.Forward(input).Backward(dy);
                float[][] gradients = [input.Grad!.ToArray(), layer.Weight.Grad!.ToArray(), layer.Bias!.Grad!.ToArray()];
                if (first is null) first = gradients;
                else for (int i = 0; i < gradients.Length; i++) Assert.Equal(first[i], gradients[i]);
            }
        }
        finally { Parallelism.ThreadCount = saved; }
    }
}

public class ConvolutionWorkspaceTests
{
    // 4096 channels × 3×3 taps × 300×300 strided outputs: one image's column matrix has 3.3·10⁹ elements, past int.
    private static readonly ConvGeometry Huge = new(2, 4096, 8, new WindowAxis(600, 300, 3, 2, 1, 1), new WindowAxis(600, 300, 3, 2, 1, 1));

    [Fact]
    public void A_column_matrix_past_int_range_takes_one_image_per_gemm() => Assert.Equal(1, Convolution.ImagesPerGemm(Huge));

    [Fact]
    public void A_column_matrix_larger_than_an_array_is_rejected_with_its_size()
    {
        var error = Assert.Throws<NotSupportedException>(() => Convolution.Forward<float>(Huge, default, default, default, default));
        Assert.Contains("column matrix needs 3317760000 elements", error.Message);
        Assert.Contains("4096 input and 8 output channels", error.Message);
    }
}

/// <summary>The small-patch weight pass (Convolution.WeightDots.cs) at every vector width and register block, whatever
/// this machine accelerates, against the float64 im2col weight pass.</summary>
public class WeightDotTests
{
    [Theory]
    // The seed CNN's conv1 (1 → 32 channels, 28×28): its blocks fill exactly, 784 positions in two spans.
    [InlineData(1, 32, 28, 3, 3)]
    // 9 output channels (a partial block of either shape); 529 positions, a tail of one at every width.
    [InlineData(1, 9, 23, 3, 4)]
    // Two channels of a 2×2 kernel: 8 patch rows (a partial block of 3), 5×5 planes shorter than one 512-bit span.
    [InlineData(2, 4, 5, 2, 3)]
    public void Every_width_and_register_block_matches_float64(int inChannels, int outChannels, int side, int kernel, int batch)
    {
        var axis = new WindowAxis(side, side, kernel, 1, (kernel - 1) / 2, 1);
        var g = new ConvGeometry(batch, inChannels, outChannels, axis, axis);
        var random = new Random(41);
        double[] x = Enumerable.Range(0, batch * inChannels * side * side).Select(_ => random.NextDouble() * 2 - 1).ToArray();
        double[] dy = Enumerable.Range(0, batch * outChannels * side * side).Select(_ => random.NextDouble() * 2 - 1).ToArray();
        double[] dw = new double[outChannels * g.PatchSize], db = new double[outChannels];
        Convolution.BackwardWeight<double>(g, x, dy, dw, db);
        float[] x32 = x.Select(v => (float)v).ToArray(), dy32 = dy.Select(v => (float)v).ToArray();
        AssertMatches<Simd512<float>, Convolution.DotBlock8x3>(g, x32, dy32, dw, db);
        AssertMatches<Simd256<float>, Convolution.DotBlock8x3>(g, x32, dy32, dw, db);
        AssertMatches<Simd512<float>, Convolution.DotBlock3x3>(g, x32, dy32, dw, db);
        AssertMatches<Simd256<float>, Convolution.DotBlock3x3>(g, x32, dy32, dw, db);
        AssertMatches<Simd128<float>, Convolution.DotBlock3x3>(g, x32, dy32, dw, db);
    }

    /// <summary>Runs every group at one width and block and checks the groups' partial sums, added up, against dW and db.</summary>
    private static unsafe void AssertMatches<TVector, TBlock>(ConvGeometry g, float[] x, float[] dy, double[] dw, double[] db)
        where TVector : struct, ISimdVector<TVector, float> where TBlock : struct, Convolution.IDotBlock
    {
        int groups = Math.Min(g.Batch, 16), weightLength = g.OutChannels * g.PatchSize, sumLength = weightLength + g.OutChannels;
        float[] partials = new float[groups * sumLength];
        fixed (float* xs = x, dys = dy, sums = partials)
            new Convolution.WeightDotGroups(g, xs, dys, sums, groups).Run<TVector, TBlock>(0, groups);
        double[] total = new double[sumLength];
        for (int group = 0; group < groups; group++)
            for (int i = 0; i < sumLength; i++) total[i] += partials[group * sumLength + i];
        TensorAssert.Close(dw.Concat(db).ToArray(), total, rtol: 1e-4, atol: 1e-4);
    }
}
