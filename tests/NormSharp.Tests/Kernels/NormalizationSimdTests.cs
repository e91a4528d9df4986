using NormSharp.Kernels;

namespace NormSharp.Tests.Kernels;

/// <summary>The SIMD layer of the normalization kernels on its own: the write driver's masked, aligned head and tail
/// at every offset and length, the run reductions with partial last vectors, and the column statistics against the
/// float64 formulas.</summary>
public class NormalizationSimdTests
{
    public static TheoryData<bool> Streaming => new() { false, true };

    [Theory]
    [MemberData(nameof(Streaming))]
    public void Write_matches_the_scalar_formula_at_every_offset_and_length_and_touches_nothing_else(bool streaming)
    {
        float[] x = Enumerable.Range(0, 200).Select(i => 0.37f * i - 11).ToArray();
        for (int offset = 0; offset < 16; offset++)
            for (int length = 0; length <= 70; length++)
            {
                float[] y = Enumerable.Repeat(-999f, 100).ToArray();
                var op = new ShiftScale<float, Uniform<float>>(x.AsSpan(offset, length), new(1.5f), new(0.25f), new(-2f));
                NormalizationSimd.Write(y.AsSpan(offset, length), op, streaming);
                for (int i = 0; i < y.Length; i++)
                {
                    float expected = i >= offset && i < offset + length ? MathF.FusedMultiplyAdd(x[i] - 1.5f, 0.25f, -2f) : -999f;
                    Assert.True(expected == y[i], $"offset {offset}, length {length}, element {i}: {y[i]} instead of {expected}");
                }
            }
    }

    [Fact]
    public void Write_in_float64_matches_the_scalar_formula_with_per_element_coefficients()
    {
        double[] x = Enumerable.Range(0, 60).Select(i => Math.Sin(i) * 100).ToArray(), a = x.Select(v => v / 7).ToArray();
        for (int offset = 0; offset < 8; offset++)
            for (int length = 0; length <= 40; length++)
            {
                double[] y = new double[60];
                var op = new ShiftScale<double, PerElement<double>>(x.AsSpan(offset, length), new(a.AsSpan(offset, length)), new(x.AsSpan(offset, length)), new(a.AsSpan(offset, length)));
                NormalizationSimd.Write(y.AsSpan(offset, length), op);
                for (int i = 0; i < length; i++)
                    Assert.Equal(Math.FusedMultiplyAdd(x[offset + i] - a[offset + i], x[offset + i], a[offset + i]), y[offset + i]);
            }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(15)]
    [InlineData(16)]
    [InlineData(17)]
    [InlineData(49)]
    [InlineData(300)]
    public void Run_sums_with_partial_last_vectors_match_float64(int length)
    {
        // Three runs of `length` elements, 2·length + 5 apart: a group of BatchNorm's channel.
        var runs = new Runs(3, 3, length, 2 * length + 5);
        var random = new Random(length);
        float[] a = Enumerable.Range(0, 3 + 3 * (2 * length + 5)).Select(_ => (float)random.NextDouble() * 4 - 1).ToArray();
        float[] b = a.Select(v => v * 0.5f + 1).ToArray();
        double sum = 0, centered = 0, products = 0;
        for (int r = 0; r < runs.Count; r++)
            for (int i = runs.Start(r); i < runs.Start(r) + length; i++)
            {
                sum += a[i];
                centered += a[i] - 0.75;
                products += (a[i] - 0.75) * (b[i] - 1.25);
            }
        Assert.Equal(sum, NormalizationSimd.Sum<float>(a, runs), 1e-4);
        var (s, p) = NormalizationSimd.CenteredSums<float>(a, 0.75f, b, 1.25f, runs);
        Assert.Equal(centered, s, 1e-4);
        Assert.Equal(products, p, 1e-4);
        var (_, squares) = NormalizationSimd.CenteredSums<float>(a, 0.75f, a, 0.75f, runs);
        Assert.Equal(Enumerable.Range(0, runs.Count).Sum(r => a.Skip(runs.Start(r)).Take(length).Sum(v => (v - 0.75) * (v - 0.75))), squares, 1e-4);
    }

    [Theory]
    [InlineData(1, 5)]
    [InlineData(17, 16)]
    [InlineData(33, 37)]
    [InlineData(40, 100)]
    [InlineData(3, 256)]
    public void Column_mean_and_m2_match_the_float64_two_pass_formula(int rows, int columns)
    {
        // The columns of a strip inside a wider matrix: stride 2·columns + 3, strip starting at column 2.
        int stride = 2 * columns + 3;
        var random = new Random(rows * 1000 + columns);
        float[] x = Enumerable.Range(0, rows * stride).Select(_ => (float)(1e4 + random.NextDouble() * 2 - 1)).ToArray();
        double[] mean = new double[columns], m2 = new double[columns];
        NormalizationSimd.ColumnMeanAndM2<float>(x.AsSpan(2), rows, stride, mean, m2);
        for (int j = 0; j < columns; j++)
        {
            double[] column = Enumerable.Range(0, rows).Select(n => (double)x[2 + n * stride + j]).ToArray();
            double expectedMean = column.Average(), expectedM2 = column.Sum(v => (v - expectedMean) * (v - expectedMean));
            Assert.Equal(expectedMean, mean[j], 1e-9 * 1e4);
            Assert.True(Math.Abs(expectedM2 - m2[j]) <= 1e-5 * Math.Max(expectedM2, 1e-3), $"column {j}: M2 {m2[j]} instead of {expectedM2}");
        }
    }

    [Fact]
    public void Column_mean_and_m2_of_constant_columns_are_exact()
    {
        int rows = 37, columns = 21;
        float[] x = Enumerable.Range(0, rows * columns).Select(i => 12345.678f + i % columns).ToArray();
        double[] mean = new double[columns], m2 = new double[columns];
        NormalizationSimd.ColumnMeanAndM2<float>(x, rows, columns, mean, m2);
        for (int j = 0; j < columns; j++)
        {
            Assert.Equal((double)(12345.678f + j), mean[j]);
            Assert.Equal(0, m2[j]);
        }
    }

    [Theory]
    [InlineData(7, 5)]
    [InlineData(20, 37)]
    [InlineData(18, 70)]
    public void Column_centered_sums_match_float64(int rows, int columns)
    {
        int stride = columns + 1;
        var random = new Random(columns);
        float[] a = Enumerable.Range(0, rows * stride).Select(_ => (float)random.NextDouble() - 0.5f).ToArray();
        float[] b = Enumerable.Range(0, rows * stride).Select(_ => (float)random.NextDouble() * 3).ToArray();
        float[] center = Enumerable.Range(0, columns).Select(j => 1.5f + 0.01f * j).ToArray();
        double[] sum = new double[columns], products = new double[columns];
        NormalizationSimd.ColumnCenteredSums(a, new Uniform<float>(0), b, new PerElement<float>(center), rows, stride, sum, products);
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
