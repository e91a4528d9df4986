using NormSharp.Kernels;

namespace NormSharp.Tests.Kernels;

/// <summary>A test body written once for every vector width: <typeparamref name="TFloat"/> holds float32 lanes and
/// <typeparamref name="TDouble"/> float64 lanes of the same width.</summary>
internal interface IWidthCase
{
    void Run<TFloat, TDouble>()
        where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>;
}

/// <summary>Runs a test body at 128, 256 or 512 bits whatever the machine has (a width it lacks runs in software,
/// with the same results), so that every width's code paths are checked on every machine.</summary>
internal static class VectorWidths
{
    public static TheoryData<int> All => new() { 128, 256, 512 };

    public static void Run<TCase>(int bits, TCase test) where TCase : IWidthCase
    {
        switch (bits)
        {
            case 128: test.Run<Simd128<float>, Simd128<double>>(); break;
            case 256: test.Run<Simd256<float>, Simd256<double>>(); break;
            case 512: test.Run<Simd512<float>, Simd512<double>>(); break;
            default: throw new ArgumentOutOfRangeException(nameof(bits), bits, "128, 256 or 512");
        }
    }
}

/// <summary>The SIMD layer of the normalization kernels on its own, at each vector width: the write driver's head and
/// tail at every offset and length (in place too), the run reductions with partial last vectors, and the column
/// statistics against the float64 formulas.</summary>
public class NormalizationSimdTests
{
    public static TheoryData<int> Widths => VectorWidths.All;

    public static TheoryData<int, bool> WidthsAndStreaming => new() { { 128, false }, { 256, false }, { 512, false }, { 128, true }, { 256, true }, { 512, true } };

    [Theory]
    [MemberData(nameof(WidthsAndStreaming))]
    public void Write_matches_the_scalar_formula_at_every_offset_and_length_and_touches_nothing_else(int bits, bool streaming) =>
        VectorWidths.Run(bits, new WriteAtEveryOffset(streaming, inPlace: false));

    [Theory]
    [MemberData(nameof(WidthsAndStreaming))]
    public void Write_in_place_matches_the_scalar_formula_at_every_offset_and_length(int bits, bool streaming) =>
        VectorWidths.Run(bits, new WriteAtEveryOffset(streaming, inPlace: true));

    private readonly struct WriteAtEveryOffset(bool streaming, bool inPlace) : IWidthCase
    {
        public void Run<TFloat, TDouble>()
            where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>
        {
            float[] x = Enumerable.Range(0, 200).Select(i => 0.37f * i - 11).ToArray();
            for (int offset = 0; offset < 16; offset++)
                for (int length = 0; length <= 70; length++)
                {
                    float[] y = inPlace ? (float[])x.Clone() : Enumerable.Repeat(-999f, 100).ToArray();
                    ReadOnlySpan<float> input = inPlace ? y.AsSpan(offset, length) : x.AsSpan(offset, length);
                    var op = new ShiftScale<float, Uniform<float>>(input, new(1.5f), new(0.25f), new(-2f));
                    NormalizationSimd.Write<float, ShiftScale<float, Uniform<float>>, TFloat>(y.AsSpan(offset, length), op, streaming);
                    for (int i = 0; i < (inPlace ? 100 : y.Length); i++)
                    {
                        float untouched = inPlace ? x[i] : -999f;
                        float expected = i >= offset && i < offset + length ? float.MultiplyAddEstimate(x[i] - 1.5f, 0.25f, -2f) : untouched;
                        Assert.True(expected == y[i], $"{TFloat.Count} lanes, offset {offset}, length {length}, element {i}: {y[i]} instead of {expected}");
                    }
                }
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Shift_scale_run_matches_the_scalar_formula_at_every_offset_and_length_in_place_too(int bits) =>
        VectorWidths.Run(bits, new ShiftScaleRunAtEveryOffset());

    private readonly struct ShiftScaleRunAtEveryOffset : IWidthCase
    {
        public void Run<TFloat, TDouble>()
            where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>
        {
            float[] x = Enumerable.Range(0, 200).Select(i => 0.37f * i - 11).ToArray();
            foreach (bool inPlace in new[] { false, true })
                for (int offset = 0; offset < 16; offset++)
                    for (int length = 0; length <= 70; length++)
                    {
                        float[] y = inPlace ? (float[])x.Clone() : Enumerable.Repeat(-999f, 100).ToArray();
                        ReadOnlySpan<float> input = inPlace ? y.AsSpan(offset, length) : x.AsSpan(offset, length);
                        NormalizationSimd.ShiftScaleRun<float, TFloat>(input, y.AsSpan(offset, length), 1.5f, 0.25f, -2f);
                        for (int i = 0; i < 100; i++)
                        {
                            float untouched = inPlace ? x[i] : -999f;
                            float expected = i >= offset && i < offset + length ? float.MultiplyAddEstimate(x[i] - 1.5f, 0.25f, -2f) : untouched;
                            Assert.True(expected == y[i], $"{TFloat.Count} lanes, in place {inPlace}, offset {offset}, length {length}, element {i}: {y[i]} instead of {expected}");
                        }
                    }
        }
    }

    public static TheoryData<int, int> WidthsAndColumns => new()
    {
        { 128, 3 }, { 128, 4 }, { 128, 13 }, { 256, 7 }, { 256, 8 }, { 256, 21 }, { 512, 15 }, { 512, 16 }, { 512, 40 }, { 512, 64 },
    };

    [Theory]
    [MemberData(nameof(WidthsAndColumns))]
    public void Row_blocks_match_the_scalar_formulas_for_every_row_count_in_place_too(int bits, int columns) =>
        VectorWidths.Run(bits, new RowBlocks(columns));

    private readonly struct RowBlocks(int columns) : IWidthCase
    {
        public void Run<TFloat, TDouble>()
            where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>
        {
            const int maxRows = 10;
            float[] x = Enumerable.Range(0, maxRows * columns).Select(i => MathF.Sin(i) * 30 + 5).ToArray();
            float[] dy = Enumerable.Range(0, maxRows * columns).Select(i => MathF.Cos(0.7f * i)).ToArray();
            float[] c = Enumerable.Range(0, columns).Select(j => 4.5f + j / 8f).ToArray(), s = c.Select(v => 0.1f * v).ToArray();
            float[] b = c.Select(v => -v / 3).ToArray(), a = c.Select(v => 1 / v).ToArray();
            // Every offset of the output within a 64-byte line, so that the aligned stores start at every place.
            for (int rows = 0; rows <= maxRows; rows++)
                for (int offset = 0; offset < 16; offset++)
                    foreach (bool inPlace in new[] { false, true })
                    {
                        int length = rows * columns;
                        float[] y = new float[offset + length], dx = new float[offset + length];
                        if (inPlace)
                        {
                            x.AsSpan(0, length).CopyTo(y.AsSpan(offset));
                            dy.AsSpan(0, length).CopyTo(dx.AsSpan(offset));
                        }
                        Span<float> outY = y.AsSpan(offset), outDx = dx.AsSpan(offset);
                        NormalizationSimd.WriteRows<float, ShiftScaleColumns<float>, TFloat>(outY, outY.Length / columns, columns, columns, new(inPlace ? outY : x.AsSpan(0, length), c, s, b));
                        NormalizationSimd.WriteRows<float, GradientColumns<float>, TFloat>(outDx, outDx.Length / columns, columns, columns, new(inPlace ? outDx : dy.AsSpan(0, length), x.AsSpan(0, length), a, c, s, b));
                        for (int i = 0; i < length; i++)
                        {
                            int j = i % columns;
                            float expectedY = float.MultiplyAddEstimate(x[i] - c[j], s[j], b[j]);
                            float expectedDx = float.MultiplyAddEstimate(dy[i], a[j], float.MultiplyAddEstimate(x[i] - c[j], s[j], b[j]));
                            Assert.True(expectedY == outY[i] && expectedDx == outDx[i],
                                $"{TFloat.Count} lanes, {rows} rows, offset {offset}, in place {inPlace}, element {i}: y {outY[i]} dx {outDx[i]} instead of {expectedY} and {expectedDx}");
                        }
                    }
        }
    }

    public static TheoryData<int, int, int, int> WidthsAndStrips => new()
    {
        // bits, stride, first column, strip width: strides that are multiples of the vector (aligned stores) and not,
        // strips narrower than a vector, and a strip that ends the row.
        { 128, 24, 5, 11 }, { 128, 26, 0, 3 }, { 256, 64, 3, 40 }, { 256, 37, 10, 27 }, { 512, 96, 7, 33 }, { 512, 96, 80, 16 }, { 512, 50, 1, 9 },
    };

    [Theory]
    [MemberData(nameof(WidthsAndStrips))]
    public void A_strip_of_columns_is_written_with_the_scalar_formulas_and_the_columns_beside_it_untouched(int bits, int stride, int first, int width) =>
        VectorWidths.Run(bits, new Strip(stride, first, width));

    private readonly struct Strip(int stride, int first, int width) : IWidthCase
    {
        public void Run<TFloat, TDouble>()
            where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>
        {
            const int rows = 9;
            float[] x = Enumerable.Range(0, rows * stride).Select(i => MathF.Sin(i) * 30 + 5).ToArray();
            float[] c = Enumerable.Range(0, width).Select(j => 4.5f + j / 8f).ToArray(), s = c.Select(v => 0.1f * v).ToArray();
            float[] b = c.Select(v => -v / 3).ToArray();
            for (int offset = 0; offset < 16; offset++)
            {
                float[] y = Enumerable.Repeat(-7f, offset + rows * stride).ToArray();
                Span<float> strip = y.AsSpan(offset + first);
                NormalizationSimd.WriteRows<float, ShiftScaleColumns<float>, TFloat>(strip, rows, stride, width, new(x.AsSpan(first), c, s, b));
                for (int i = 0; i < rows * stride; i++)
                {
                    int j = i % stride - first;
                    float expected = j >= 0 && j < width ? float.MultiplyAddEstimate(x[i] - c[j], s[j], b[j]) : -7f;
                    Assert.True(expected == y[offset + i], $"{TFloat.Count} lanes, offset {offset}, element {i}: {y[offset + i]} instead of {expected}");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Write_in_float64_matches_the_scalar_formula_with_per_element_coefficients(int bits) =>
        VectorWidths.Run(bits, new WriteFloat64());

    private readonly struct WriteFloat64 : IWidthCase
    {
        public void Run<TFloat, TDouble>()
            where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>
        {
            double[] x = Enumerable.Range(0, 60).Select(i => Math.Sin(i) * 100).ToArray(), a = x.Select(v => v / 7).ToArray();
            for (int offset = 0; offset < 8; offset++)
                for (int length = 0; length <= 40; length++)
                {
                    double[] y = new double[60];
                    var op = new ShiftScale<double, PerElement<double>>(x.AsSpan(offset, length), new(a.AsSpan(offset, length)), new(x.AsSpan(offset, length)), new(a.AsSpan(offset, length)));
                    NormalizationSimd.Write<double, ShiftScale<double, PerElement<double>>, TDouble>(y.AsSpan(offset, length), op);
                    for (int i = 0; i < length; i++)
                        Assert.Equal(double.MultiplyAddEstimate(x[offset + i] - a[offset + i], x[offset + i], a[offset + i]), y[offset + i]);
                }
        }
    }

    public static TheoryData<int, int> WidthsAndRunLengths => new()
    {
        { 128, 1 }, { 128, 3 }, { 128, 4 }, { 128, 5 }, { 128, 67 }, { 128, 300 },
        { 256, 1 }, { 256, 7 }, { 256, 8 }, { 256, 9 }, { 256, 49 }, { 256, 300 },
        { 512, 1 }, { 512, 15 }, { 512, 16 }, { 512, 17 }, { 512, 49 }, { 512, 300 },
    };

    [Theory]
    [MemberData(nameof(WidthsAndRunLengths))]
    public void Run_sums_with_partial_last_vectors_match_float64(int bits, int length) => VectorWidths.Run(bits, new RunSums(length));

    private readonly struct RunSums(int length) : IWidthCase
    {
        public void Run<TFloat, TDouble>()
            where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>
        {
            // Three runs of `length` elements, 2·length + 5 apart: a group of BatchNorm's channel.
            var runs = new Runs(3, 3, length, 2 * length + 5);
            var random = new Random(length);
            float[] a = Enumerable.Range(0, 3 + 3 * (2 * length + 5)).Select(_ => (float)random.NextDouble() * 4 - 1).ToArray();
            float[] b = a.Select(v => v * 0.5f + 1).ToArray();
            double centered = 0, products = 0, squares = 0;
            for (int r = 0; r < runs.Count; r++)
                for (int i = runs.Start(r); i < runs.Start(r) + length; i++)
                {
                    centered += a[i] - 0.75;
                    products += (a[i] - 0.75) * (b[i] - 1.25);
                    squares += (a[i] - 0.75) * (a[i] - 0.75);
                }
            var (s, p) = NormalizationSimd.CenteredSums<float, TFloat, TDouble>(a, 0.75f, b, 1.25f, runs);
            Assert.Equal(centered, s, 1e-4);
            Assert.Equal(products, p, 1e-4);
            Assert.Equal(squares, NormalizationSimd.CenteredSums<float, TFloat, TDouble>(a, 0.75f, a, 0.75f, runs).SumOfProducts, 1e-4);
        }
    }

    public static TheoryData<int, int, int> WidthsSegmentsAndLengths => new()
    {
        { 128, 1, 3 }, { 128, 5, 4 }, { 128, 8, 49 }, { 256, 1, 196 }, { 256, 3, 7 }, { 256, 8, 196 }, { 256, 2, 200 },
        { 512, 8, 196 }, { 512, 4, 15 }, { 512, 3, 16 }, { 512, 2, 300 },
    };

    [Theory]
    [MemberData(nameof(WidthsSegmentsAndLengths))]
    public void Segment_gradient_sums_and_dx_match_float64_for_each_channel_of_a_group(int bits, int segments, int length) =>
        VectorWidths.Run(bits, new SegmentGradient(segments, length));

    private readonly struct SegmentGradient(int segments, int length) : IWidthCase
    {
        public void Run<TFloat, TDouble>()
            where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>
        {
            var random = new Random(segments * 1000 + length);
            int count = segments * length;
            float[] dy = Enumerable.Range(0, count).Select(_ => random.NextSingle() - 0.5f).ToArray();
            float[] x = Enumerable.Range(0, count).Select(_ => random.NextSingle() * 3 + 100).ToArray();
            float[] a = Enumerable.Range(0, segments).Select(_ => random.NextSingle() + 0.5f).ToArray();
            double[] sumDy = new double[segments], sumDyCentered = new double[segments];
            NormalizationSimd.SegmentGradientSums<float, TFloat, TDouble>(dy, x, 101.5f, length, sumDy, sumDyCentered);
            // One element past the group on each side shows that nothing outside it is written.
            float[] dx = Enumerable.Repeat(-999f, count + 2).ToArray();
            NormalizationSimd.SegmentGradient<float, TFloat>(dy, x, dx.AsSpan(1, count), length, a, 101.5f, -0.75f, 0.25f);
            for (int s = 0; s < segments; s++)
            {
                double expectedDy = 0, expectedDyCentered = 0;
                for (int i = s * length; i < (s + 1) * length; i++)
                {
                    expectedDy += dy[i];
                    expectedDyCentered += dy[i] * (x[i] - 101.5);
                    Assert.Equal(dy[i] * a[s] + (x[i] - 101.5) * -0.75 + 0.25, dx[i + 1], 1e-5);
                }
                Assert.Equal(expectedDy, sumDy[s], 1e-5);
                Assert.Equal(expectedDyCentered, sumDyCentered[s], 1e-5);
            }
            Assert.Equal(-999f, dx[0]);
            Assert.Equal(-999f, dx[^1]);
        }
    }

    [Theory]
    [MemberData(nameof(WidthsSegmentsAndLengths))]
    public void Segment_shift_scale_matches_the_scalar_formula_per_channel_and_touches_nothing_else(int bits, int segments, int length) =>
        VectorWidths.Run(bits, new SegmentShiftScale(segments, length));

    private readonly struct SegmentShiftScale(int segments, int length) : IWidthCase
    {
        public void Run<TFloat, TDouble>()
            where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>
        {
            var random = new Random(segments * 1000 + length + 7);
            int count = segments * length;
            float[] x = Enumerable.Range(0, count).Select(_ => random.NextSingle() * 3 + 100).ToArray();
            float[] scale = Enumerable.Range(0, segments).Select(_ => random.NextSingle() + 0.5f).ToArray();
            float[] shift = Enumerable.Range(0, segments).Select(_ => random.NextSingle() - 0.5f).ToArray();
            float[] y = Enumerable.Repeat(-999f, count + 2).ToArray();
            NormalizationSimd.SegmentShiftScale<float, TFloat>(x, y.AsSpan(1, count), length, 101.5f, scale, shift);
            for (int s = 0; s < segments; s++)
                for (int i = s * length; i < (s + 1) * length; i++)
                    Assert.Equal((x[i] - 101.5) * scale[s] + shift[s], y[i + 1], 1e-5);
            Assert.Equal(-999f, y[0]);
            Assert.Equal(-999f, y[^1]);
        }
    }

    [Theory]
    [InlineData(8, 196)]
    [InlineData(3, 15)]
    [InlineData(2, 300)]
    public void Segment_shift_scale_at_the_widest_width_has_the_bits_of_the_256_bit_loop(int segments, int length)
    {
        // Each element is one fused multiply-add, so the width AVX-512 machines now take (512 bits) must not change
        // GroupNorm's output; without fused multiply-add (128 bits) there is no 256-bit loop to compare with.
        if (!System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated || !System.Runtime.Intrinsics.X86.Fma.IsSupported) return;
        var random = new Random(segments * 31 + length);
        int count = segments * length;
        float[] x = Enumerable.Range(0, count).Select(_ => random.NextSingle() * 3 + 100).ToArray();
        float[] scale = Enumerable.Range(0, segments).Select(_ => random.NextSingle() + 0.5f).ToArray();
        float[] shift = Enumerable.Range(0, segments).Select(_ => random.NextSingle() - 0.5f).ToArray();
        float[] widest = new float[count], narrow = new float[count];
        NormalizationSimd.SegmentShiftScale<float>(x, widest, length, 101.5f, scale, shift);
        NormalizationSimd.SegmentShiftScale<float, Simd256<float>>(x, narrow, length, 101.5f, scale, shift);
        Assert.Equal(narrow.Select(BitConverter.SingleToInt32Bits), widest.Select(BitConverter.SingleToInt32Bits));
        Assert.Equal((x[count - 1] - 101.5f) * scale[^1] + shift[^1], widest[^1], 1e-4);
    }

    public static TheoryData<int, int> WidthsAndSpanLengths => new()
    {
        { 128, 3 }, { 128, 67 }, { 128, 2047 }, { 256, 7 }, { 256, 300 }, { 256, 2047 }, { 512, 15 }, { 512, 300 }, { 512, 2047 },
    };

    [Theory]
    [MemberData(nameof(WidthsAndSpanLengths))]
    public void Centered_squares_of_one_span_have_the_bits_of_the_general_sums(int bits, int length) => VectorWidths.Run(bits, new SpanSquares(length));

    private readonly struct SpanSquares(int length) : IWidthCase
    {
        public void Run<TFloat, TDouble>()
            where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>
        {
            // Values far from the centre, so that the float32 partial sums round and a different order would show.
            var random = new Random(length);
            float[] x = Enumerable.Range(0, length + 1).Select(_ => (float)random.NextDouble() * 40 + 100).ToArray();
            var (sum, squares) = NormalizationSimd.CenteredSums<float, TFloat, TDouble>(x, 101.3f, x, 101.3f, new Runs(1, 1, length, 0));
            var (spanSum, spanSquares) = NormalizationSimd.CenteredSquares<float, TFloat, TDouble>(x.AsSpan(1, length), 101.3f);
            Assert.Equal(sum, spanSum);
            Assert.Equal(squares, spanSquares);
            double expected = x.Skip(1).Sum(v => (v - 101.3) * (v - 101.3));
            Assert.Equal(expected, spanSquares, expected * 1e-5);
        }
    }

    public static TheoryData<int, int> WidthsAndRowLengths => new() { { 128, 3 }, { 128, 70 }, { 256, 7 }, { 256, 70 }, { 512, 15 }, { 512, 70 }, { 512, 768 } };

    [Theory]
    [MemberData(nameof(WidthsAndRowLengths))]
    public void Row_gradient_sums_and_column_sums_match_float64(int bits, int length) => VectorWidths.Run(bits, new RowGradient(length));

    private readonly struct RowGradient(int length) : IWidthCase
    {
        public void Run<TFloat, TDouble>()
            where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>
        {
            var random = new Random(length);
            float[] dy = Enumerable.Range(0, length).Select(_ => random.NextSingle() - 0.5f).ToArray();
            float[] x = Enumerable.Range(0, length).Select(_ => random.NextSingle() * 3).ToArray();
            float[] gamma = Enumerable.Range(0, length).Select(_ => random.NextSingle() + 0.5f).ToArray();
            float[] columnDy = Enumerable.Repeat(0.5f, length).ToArray(), columnDyXhat = Enumerable.Repeat(-0.25f, length).ToArray();
            var (sumG, sumGXhat) = NormalizationSimd.RowGradientSums<float, PerElement<float>, TFloat, TDouble>(dy, x, new PerElement<float>(gamma),
                1.5f, 2f, 0.125f, columnDy, columnDyXhat);
            double expectedG = 0, expectedGXhat = 0;
            for (int i = 0; i < length; i++)
            {
                double xhat = (x[i] - 1.5) * 2 + 0.125, g = (double)dy[i] * gamma[i];
                expectedG += g;
                expectedGXhat += g * xhat;
                Assert.Equal(0.5 + dy[i], columnDy[i], 1e-6);
                Assert.Equal(-0.25 + dy[i] * xhat, columnDyXhat[i], 1e-5);
            }
            Assert.Equal(expectedG, sumG, 1e-4);
            Assert.Equal(expectedGXhat, sumGXhat, 1e-4);
            double[] total = Enumerable.Repeat(1.0, length).ToArray();
            NormalizationSimd.AddWidened<float, TFloat, TDouble>(columnDy, total);
            for (int i = 0; i < length; i++) Assert.Equal(1.0 + columnDy[i], total[i]);
        }
    }

    [Theory]
    [MemberData(nameof(WidthsAndRowLengths))]
    public void Row_pair_gradient_sums_equal_two_single_row_calls_exactly(int bits, int length) => VectorWidths.Run(bits, new RowPairGradient(length));

    private readonly struct RowPairGradient(int length) : IWidthCase
    {
        public void Run<TFloat, TDouble>()
            where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>
        {
            var random = new Random(length + 1);
            int count = length;
            float[] Values(float scale, float offset) => Enumerable.Range(0, count).Select(_ => random.NextSingle() * scale + offset).ToArray();
            float[] dy0 = Values(1, -0.5f), dy1 = Values(2, -1), x0 = Values(3, 0), x1 = Values(1, 4), gamma = Values(1, 0.5f);
            float[] pairDy = Values(1, 0), pairDyXhat = Values(1, -0.5f);
            float[] singleDy = (float[])pairDy.Clone(), singleDyXhat = (float[])pairDyXhat.Clone();
            var (g0, gx0, g1, gx1) = NormalizationSimd.RowPairGradientSums<float, PerElement<float>, TFloat, TDouble>(dy0, x0, 1.5f, 2f, 0.125f,
                dy1, x1, 4.5f, 0.75f, -0.25f, new PerElement<float>(gamma), pairDy, pairDyXhat);
            var (e0, ex0) = NormalizationSimd.RowGradientSums<float, PerElement<float>, TFloat, TDouble>(dy0, x0, new PerElement<float>(gamma),
                1.5f, 2f, 0.125f, singleDy, singleDyXhat);
            var (e1, ex1) = NormalizationSimd.RowGradientSums<float, PerElement<float>, TFloat, TDouble>(dy1, x1, new PerElement<float>(gamma),
                4.5f, 0.75f, -0.25f, singleDy, singleDyXhat);
            Assert.Equal((e0, ex0, e1, ex1), (g0, gx0, g1, gx1));
            Assert.Equal(singleDy, pairDy);
            Assert.Equal(singleDyXhat, pairDyXhat);
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Wide_sum_of_a_short_span_matches_float64_and_is_exact_for_equal_values(int bits) => VectorWidths.Run(bits, new WideSum());

    private readonly struct WideSum : IWidthCase
    {
        public void Run<TFloat, TDouble>()
            where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>
        {
            var random = new Random(3);
            for (int length = 1; length <= 20; length++)
            {
                float[] values = Enumerable.Range(0, length).Select(_ => random.NextSingle() * 100 - 30).ToArray();
                Assert.Equal(values.Sum(v => (double)v), NormalizationSimd.WideSum<float, TFloat, TDouble>(values), 1e-9);
                float[] equal = Enumerable.Repeat(12345.678f, length).ToArray();
                Assert.Equal(length * (double)12345.678f, NormalizationSimd.WideSum<float, TFloat, TDouble>(equal));
            }
        }
    }

    public static TheoryData<int, int, int> WidthsAndColumnStrips => new()
    {
        { 128, 1, 3 }, { 128, 17, 5 }, { 128, 33, 37 },
        { 256, 1, 5 }, { 256, 17, 16 }, { 256, 40, 100 },
        { 512, 1, 5 }, { 512, 17, 16 }, { 512, 33, 37 }, { 512, 40, 100 }, { 512, 3, 256 },
    };

    [Theory]
    [MemberData(nameof(WidthsAndColumnStrips))]
    public void Column_mean_and_m2_match_the_float64_two_pass_formula(int bits, int rows, int columns) =>
        VectorWidths.Run(bits, new ColumnMeanAndM2(rows, columns));

    private readonly struct ColumnMeanAndM2(int rows, int columns) : IWidthCase
    {
        public void Run<TFloat, TDouble>()
            where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>
        {
            // The columns of a strip inside a wider matrix: stride 2·columns + 3, strip starting at column 2.
            int stride = 2 * columns + 3;
            var random = new Random(rows * 1000 + columns);
            float[] x = Enumerable.Range(0, rows * stride).Select(_ => (float)(1e4 + random.NextDouble() * 2 - 1)).ToArray();
            double[] mean = new double[columns], m2 = new double[columns];
            NormalizationSimd.ColumnMeanAndM2<float, TFloat, TDouble>(x.AsSpan(2), rows, stride, mean, m2);
            for (int j = 0; j < columns; j++)
            {
                double[] column = Enumerable.Range(0, rows).Select(n => (double)x[2 + n * stride + j]).ToArray();
                double expectedMean = column.Average(), expectedM2 = column.Sum(v => (v - expectedMean) * (v - expectedMean));
                Assert.Equal(expectedMean, mean[j], 1e-9 * 1e4);
                Assert.True(Math.Abs(expectedM2 - m2[j]) <= 1e-5 * Math.Max(expectedM2, 1e-3), $"column {j}: M2 {m2[j]} instead of {expectedM2}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Column_mean_and_m2_of_constant_columns_are_exact(int bits) => VectorWidths.Run(bits, new ConstantColumns());

    private readonly struct ConstantColumns : IWidthCase
    {
        public void Run<TFloat, TDouble>()
            where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>
        {
            int rows = 37, columns = 21;
            float[] x = Enumerable.Range(0, rows * columns).Select(i => 12345.678f + i % columns).ToArray();
            double[] mean = new double[columns], m2 = new double[columns];
            NormalizationSimd.ColumnMeanAndM2<float, TFloat, TDouble>(x, rows, columns, mean, m2);
            for (int j = 0; j < columns; j++)
            {
                Assert.Equal((double)(12345.678f + j), mean[j]);
                Assert.Equal(0, m2[j]);
            }
        }
    }

    public static TheoryData<int, int, int> WidthsAndCenteredStrips => new()
    {
        { 128, 7, 3 }, { 128, 20, 37 }, { 256, 7, 5 }, { 256, 18, 70 }, { 512, 7, 5 }, { 512, 20, 37 }, { 512, 18, 70 },
    };

    [Theory]
    [MemberData(nameof(WidthsAndCenteredStrips))]
    public void Column_centered_sums_match_float64(int bits, int rows, int columns) => VectorWidths.Run(bits, new ColumnCenteredSums(rows, columns));

    private readonly struct ColumnCenteredSums(int rows, int columns) : IWidthCase
    {
        public void Run<TFloat, TDouble>()
            where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>
        {
            int stride = columns + 1;
            var random = new Random(columns);
            float[] a = Enumerable.Range(0, rows * stride).Select(_ => (float)random.NextDouble() - 0.5f).ToArray();
            float[] b = Enumerable.Range(0, rows * stride).Select(_ => (float)random.NextDouble() * 3).ToArray();
            float[] center = Enumerable.Range(0, columns).Select(j => 1.5f + 0.01f * j).ToArray();
            double[] sum = new double[columns], products = new double[columns];
            NormalizationSimd.ColumnCenteredSums<float, Uniform<float>, PerElement<float>, TFloat, TDouble>(a, new(0), b, new(center), rows, stride, sum, products);
            for (int j = 0; j < columns; j++)
            {
                double s = 0, p = 0;
                for (int n = 0; n < rows; n++)
                {
                    s += a[n * stride + j];
                    p += a[n * stride + j] * ((double)b[n * stride + j] - center[j]);
                }
                Assert.Equal(s, sum[j], 1e-5);
                Assert.Equal(p, products[j], 1e-5);
            }
        }
    }

    [Theory]
    [MemberData(nameof(WidthsAndStreaming))]
    public void Run_writers_match_the_scalar_formulas_at_every_offset_and_length_in_place_too(int bits, bool streaming) =>
        VectorWidths.Run(bits, new RunWritersAtEveryOffset(streaming));

    /// <summary>ShiftScaleRun and GradientRun with and without streaming stores: every offset within a cache line and
    /// every length up to four lines and a half (partial lines at both ends, runs with no whole line, runs shorter than
    /// a vector), out of place and in place (y = x; dx = dy and dx = x), each element equal to the scalar formula and
    /// nothing outside the run touched.</summary>
    private readonly struct RunWritersAtEveryOffset(bool streaming) : IWidthCase
    {
        private enum Place { Apart, OverFirstInput, OverSecondInput }

        public void Run<TFloat, TDouble>()
            where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>
        {
            float[] x = Enumerable.Range(0, 100).Select(i => 0.37f * i - 11).ToArray();
            float[] dy = Enumerable.Range(0, 100).Select(i => MathF.Cos(0.7f * i)).ToArray();
            foreach (Place place in Enum.GetValues<Place>())
                for (int offset = 0; offset < 16; offset++)
                    for (int length = 0; length <= 70; length++)
                    {
                        float[] y = place == Place.Apart ? Enumerable.Repeat(-999f, 100).ToArray() : (float[])x.Clone();
                        NormalizationSimd.ShiftScaleRun<float, TFloat>(place == Place.Apart ? x.AsSpan(offset, length) : y.AsSpan(offset, length),
                            y.AsSpan(offset, length), 1.5f, 0.25f, -2f, streaming);
                        float[] dx = place switch { Place.Apart => Enumerable.Repeat(-999f, 100).ToArray(), Place.OverFirstInput => (float[])dy.Clone(), _ => (float[])x.Clone() };
                        ReadOnlySpan<float> dyIn = place == Place.OverFirstInput ? dx.AsSpan(offset, length) : dy.AsSpan(offset, length);
                        ReadOnlySpan<float> xIn = place == Place.OverSecondInput ? dx.AsSpan(offset, length) : x.AsSpan(offset, length);
                        NormalizationSimd.GradientRun<float, TFloat>(dyIn, xIn, dx.AsSpan(offset, length), 0.75f, 1.5f, 0.25f, -2f, streaming);
                        for (int i = 0; i < 100; i++)
                        {
                            bool inside = i >= offset && i < offset + length;
                            float expectedY = inside ? float.MultiplyAddEstimate(x[i] - 1.5f, 0.25f, -2f) : place == Place.Apart ? -999f : x[i];
                            float expectedDx = inside ? float.MultiplyAddEstimate(dy[i], 0.75f, float.MultiplyAddEstimate(x[i] - 1.5f, 0.25f, -2f))
                                : place switch { Place.Apart => -999f, Place.OverFirstInput => dy[i], _ => x[i] };
                            Assert.True(expectedY == y[i], $"{TFloat.Count} lanes, {place}, offset {offset}, length {length}, element {i}: y {y[i]} instead of {expectedY}");
                            Assert.True(expectedDx == dx[i], $"{TFloat.Count} lanes, {place}, offset {offset}, length {length}, element {i}: dx {dx[i]} instead of {expectedDx}");
                        }
                    }
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Centered_squares_of_a_long_span_with_a_large_mean_match_float64_for_every_tail_length(int bits) =>
        VectorWidths.Run(bits, new LongSpanSquares());

    /// <summary>CenteredSquares over tens of thousands of values near 1e4 (many float32 blocks, 32 vectors each at 128
    /// bits) and every tail length: the sums about a centre near the mean keep the float64 results' digits, which
    /// plain float32 running sums of that many terms would lose.</summary>
    private readonly struct LongSpanSquares : IWidthCase
    {
        public void Run<TFloat, TDouble>()
            where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>
        {
            var random = new Random(7);
            float[] x = Enumerable.Range(0, 40_017).Select(_ => (float)(1e4 + random.NextDouble() * 2 - 1)).ToArray();
            for (int length = 40_000; length <= x.Length; length++)
            {
                var (sum, squares) = NormalizationSimd.CenteredSquares<float, TFloat, TDouble>(x.AsSpan(0, length), 1e4f);
                double expectedSum = 0, expectedSquares = 0;
                for (int i = 0; i < length; i++)
                {
                    double d = (double)x[i] - 1e4;
                    expectedSum += d;
                    expectedSquares += d * d;
                }
                Assert.Equal(expectedSum, sum, 1e-2);
                Assert.Equal(expectedSquares, squares, expectedSquares * 1e-6);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Run_sums_about_a_zero_centre_have_the_bits_of_the_centred_loop_for_every_tail_length(int bits) =>
        VectorWidths.Run(bits, new ZeroCentreSums());

    /// <summary>CenteredSums with a centre of zero for its first input (the backward pass's Σ dy, whose loop skips
    /// that subtraction) against the centred loop on the same values shifted by 4: the values are multiples of 2⁻¹⁰,
    /// so a + 4 and (a + 4) − 4 = a are exact and the centred loop adds the very same vectors. Every tail length of
    /// three runs, and float64 sums for scale.</summary>
    private readonly struct ZeroCentreSums : IWidthCase
    {
        public void Run<TFloat, TDouble>()
            where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>
        {
            var random = new Random(11);
            for (int length = 200; length <= 200 + 2 * TFloat.Count; length++)
            {
                var runs = new Runs(2, 3, length, length + 9);
                float[] dy = Enumerable.Range(0, 2 + 3 * (length + 9)).Select(_ => random.Next(-1024, 3072) / 1024f).ToArray();
                float[] shifted = dy.Select(v => v + 4).ToArray();
                float[] x = dy.Select(v => v * 0.5f + 1.5f).ToArray();
                var (sum, products) = NormalizationSimd.CenteredSums<float, TFloat, TDouble>(dy, 0f, x, 1.25f, runs);
                var (centredSum, centredProducts) = NormalizationSimd.CenteredSums<float, TFloat, TDouble>(shifted, 4f, x, 1.25f, runs);
                Assert.Equal(BitConverter.DoubleToInt64Bits(centredSum), BitConverter.DoubleToInt64Bits(sum));
                Assert.Equal(BitConverter.DoubleToInt64Bits(centredProducts), BitConverter.DoubleToInt64Bits(products));
                double expectedSum = 0, expectedProducts = 0;
                for (int r = 0; r < runs.Count; r++)
                    for (int i = runs.Start(r); i < runs.Start(r) + length; i++)
                    {
                        expectedSum += dy[i];
                        expectedProducts += dy[i] * ((double)x[i] - 1.25);
                    }
                Assert.Equal(expectedSum, sum, 1e-4);
                Assert.Equal(expectedProducts, products, 1e-4);
            }
        }
    }
}
