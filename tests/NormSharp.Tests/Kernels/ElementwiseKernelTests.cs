using NormSharp.Kernels;
using NormSharp.Optim;

namespace NormSharp.Tests.Kernels;

/// <summary>The element-wise kernels at each vector width: the point-wise driver's head, body and tail at every offset
/// and length (in place too), the sigmoid against float64, the softmax family's row maximum, and the optimizer
/// updates' width-generic rules and their split over threads.</summary>
[Collection("Parallelism")]
public class ElementwiseKernelTests
{
    public static TheoryData<int> Widths => VectorWidths.All;

    [Theory]
    [MemberData(nameof(Widths))]
    public void Pointwise_map_matches_the_scalar_form_at_every_offset_and_length_and_touches_nothing_else(int bits) =>
        VectorWidths.Run(bits, new MapAtEveryOffset(inPlace: false));

    [Theory]
    [MemberData(nameof(Widths))]
    public void Pointwise_map_in_place_matches_the_scalar_form_at_every_offset_and_length(int bits) =>
        VectorWidths.Run(bits, new MapAtEveryOffset(inPlace: true));

    [Theory]
    [MemberData(nameof(Widths))]
    public void Relu_mask_passes_the_gradient_exactly_where_the_output_is_not_at_most_zero_at_every_length(int bits) =>
        VectorWidths.Run(bits, new ReluAtEveryLength());

    private readonly struct ReluAtEveryLength : IWidthCase
    {
        public void Run<TFloat, TDouble>()
            where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>
        {
            // Positives, negatives, both zeros and NaN (whose gradient passes, as PyTorch's threshold_backward does).
            float[] pattern = { 1.5f, -2f, 0f, -0f, float.NaN, 3f, -1e-30f, 1e-30f, 7f };
            for (int length = 0; length <= 200; length += length < 140 ? 1 : 29)
            {
                float[] x = Enumerable.Range(0, length).Select(i => pattern[i * 7 % pattern.Length] * (1 + i)).ToArray();
                float[] dy = Enumerable.Range(0, length).Select(i => 0.5f + i).ToArray();
                float[] y = new float[length], dx = Enumerable.Repeat(-999f, length).ToArray();
                ulong[] kept = new ulong[(length + 63) / 64];
                ActivationKernels.Relu<float, TFloat>(x, y, kept);
                ActivationKernels.ReluGradient<float, TFloat>(kept, dy, dx);
                for (int i = 0; i < length; i++)
                {
                    bool passes = !(x[i] <= 0);
                    Assert.True(passes ? x[i].Equals(y[i]) : y[i] == 0 && !float.IsNegative(y[i]), $"{TFloat.Count} lanes, length {length}, y[{i}] = {y[i]} for x = {x[i]}");
                    Assert.True((passes ? dy[i] : 0) == dx[i], $"{TFloat.Count} lanes, length {length}, dx[{i}] = {dx[i]} for x = {x[i]}");
                }
                double[] wide = x.Select(v => (double)v).ToArray(), wideY = new double[length], wideDx = new double[length];
                ActivationKernels.Relu<double, TDouble>(wide, wideY, kept);
                ActivationKernels.ReluGradient<double, TDouble>(kept, dy.Select(v => (double)v).ToArray(), wideDx);
                for (int i = 0; i < length; i++) Assert.True((x[i] <= 0 ? 0 : dy[i]) == wideDx[i], $"float64, {TDouble.Count} lanes, length {length}, dx[{i}]");
            }
        }
    }

    private readonly struct MapAtEveryOffset(bool inPlace) : IWidthCase
    {
        public void Run<TFloat, TDouble>()
            where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>
        {
            float[] x = Enumerable.Range(0, 120).Select(i => 0.37f * i - 11).ToArray(), dy = x.Select(v => 2 - v).ToArray();
            var op = new ActivationKernels.LeakyReluBackward<float>(0.3f);
            for (int offset = 0; offset < 16; offset++)
                for (int length = 0; length <= 70; length++)
                {
                    float[] y = inPlace ? (float[])x.Clone() : Enumerable.Repeat(-999f, 100).ToArray();
                    ReadOnlySpan<float> input = inPlace ? y.AsSpan(offset, length) : x.AsSpan(offset, length);
                    Pointwise.Map<float, ActivationKernels.LeakyReluBackward<float>, TFloat>(op, input, dy.AsSpan(offset, length), y.AsSpan(offset, length));
                    for (int i = 0; i < 100; i++)
                    {
                        float untouched = inPlace ? x[i] : -999f;
                        float expected = i >= offset && i < offset + length ? op.Invoke(x[i], dy[i]) : untouched;
                        Assert.True(expected == y[i], $"{TFloat.Count} lanes, offset {offset}, length {length}, element {i}: {y[i]} instead of {expected}");
                    }
                }
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Sigmoid_is_within_three_ulp_of_float64_and_exact_at_the_extremes(int bits) => VectorWidths.Run(bits, new SigmoidAccuracy());

    private readonly struct SigmoidAccuracy : IWidthCase
    {
        public void Run<TFloat, TDouble>()
            where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>
        {
            // −90 to 90 (σ underflows below about −87 and is 1 above 17), densely near 0, plus the special values.
            float[] x = Enumerable.Range(-100_000, 200_001).Select(i => (float)(90 * Math.Sign(i) * Math.Pow(Math.Abs(i) / 100_000.0, 2)))
                .Concat(new[] { float.NegativeInfinity, float.PositiveInfinity, float.NaN, -0f, float.MaxValue, float.MinValue }).ToArray();
            float[] y = new float[x.Length];
            Pointwise.Map<float, ActivationKernels.Sigmoid<float>, TFloat>(default, x, y);
            double worst = 0;
            for (int i = 0; i < x.Length; i++)
            {
                double exact = 1 / (1 + Math.Exp(-(double)x[i]));
                if (double.IsNaN(exact)) { Assert.True(float.IsNaN(y[i]), $"σ(NaN) = {y[i]}"); continue; }
                float expected = (float)exact;
                // Below x = −86.6 the vector exponential gives 0, and σ, then below 2.6e-38, is 0.
                if (x[i] < -86.6f) { Assert.Equal(0f, y[i]); continue; }
                worst = Math.Max(worst, Math.Abs(y[i] - exact) / (MathF.BitIncrement(expected) - expected));
            }
            Assert.True(worst <= 3, $"float32 sigmoid: {worst:F2} ulp");
            Assert.Equal(new[] { 0f, 1f, float.NaN, 0.5f, 1f, 0f }, y[^6..]);

            double[] wide = { -700, -30, -1e-300, 0, 1e-300, 0.5, 30, 700 }, wideOut = new double[wide.Length];
            Pointwise.Map<double, ActivationKernels.Sigmoid<double>, TDouble>(default, wide, wideOut);
            for (int i = 0; i < wide.Length; i++)
                Assert.Equal(1 / (1 + Math.Exp(-wide[i])), wideOut[i], 1e-15 * (1 / (1 + Math.Exp(-wide[i]))));
        }
    }

    public static TheoryData<int, int> WidthsAndRowLengths => new()
    {
        { 128, 1 }, { 128, 3 }, { 128, 4 }, { 128, 9 }, { 128, 12 }, { 128, 1000 },
        { 256, 1 }, { 256, 7 }, { 256, 8 }, { 256, 17 }, { 256, 24 }, { 256, 1000 },
        { 512, 1 }, { 512, 15 }, { 512, 16 }, { 512, 33 }, { 512, 48 }, { 512, 1000 },
    };

    [Theory]
    [MemberData(nameof(WidthsAndRowLengths))]
    public void Row_max_finds_the_largest_element_wherever_it_lies(int bits, int length) => VectorWidths.Run(bits, new RowMaximum(length));

    private readonly struct RowMaximum(int length) : IWidthCase
    {
        public void Run<TFloat, TDouble>()
            where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>
        {
            var random = new Random(length);
            for (int at = 0; at < length; at++)
            {
                float[] x = Enumerable.Range(0, length).Select(_ => -100 * random.NextSingle()).ToArray();
                x[at] = 7.5f;
                Assert.Equal(7.5f, ActivationKernels.RowMax<float, TFloat>(x));
                double[] wide = x.Select(v => (double)v - 1e-3).ToArray();
                Assert.Equal(7.5 - 1e-3, ActivationKernels.RowMax<double, TDouble>(wide));
            }
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Optimizer_rules_give_the_same_bits_at_every_width_with_partial_last_vectors(int bits) => VectorWidths.Run(bits, new RulesAgainstScalar());

    private readonly struct RulesAgainstScalar : IWidthCase
    {
        public void Run<TFloat, TDouble>()
            where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>
        {
            // 37 elements: whole vectors and a partial last one at every width. The reference is the same rule on
            // 128-bit vectors, one element at a time (every lane of a padded vector holds the same element).
            var adam = new OptimizerKernels.AdamRule<float>(new AdamScalars<float>(1e-2f, 0.3f, 0.1f, 0.999f, 1e-8f, 0.01f, 0.99f, Decoupled: false, AmsGrad: true));
            var random = new Random(37);
            float[] Values() => Enumerable.Range(0, 37).Select(_ => random.NextSingle() * 2 - 1).ToArray();
            float[] p = Values(), g = Values(), m = Values(), v = Values().Select(Math.Abs).ToArray(), vMax = v.Select(e => e * 1.5f).ToArray();
            float[] p2 = (float[])p.Clone(), m2 = (float[])m.Clone(), v2 = (float[])v.Clone(), vMax2 = (float[])vMax.Clone();
            OptimizerKernels.Update<float, OptimizerKernels.AdamRule<float>, TFloat>(adam, p, g, m, v, vMax);
            for (int i = 0; i < p2.Length; i++)
                OptimizerKernels.Update<float, OptimizerKernels.AdamRule<float>, Simd128<float>>(adam, p2.AsSpan(i, 1), g.AsSpan(i, 1), m2.AsSpan(i, 1), v2.AsSpan(i, 1), vMax2.AsSpan(i, 1));
            Assert.Equal(p2, p);
            Assert.Equal(m2, m);
            Assert.Equal(v2, v);
            Assert.Equal(vMax2, vMax);
        }
    }

    [Theory]
    [InlineData(100_003)] // odd: the last thread's part ends with a partial vector
    [InlineData(1 << 17)]
    public void Adam_on_two_threads_gives_the_bits_of_one_thread(int length)
    {
        float[] Step(int threads)
        {
            int saved = Parallelism.ThreadCount;
            Parallelism.ThreadCount = threads;
            try
            {
                Tensor p = Tensor.Normal(new[] { length }, generator: new RandomGenerator(4));
                p.RequiresGrad = true;
                var adam = new Adam(new[] { p }, weightDecay: 0.01, amsGrad: true);
                for (int step = 0; step < 3; step++)
                {
                    p.Grad = Tensor.Normal(new[] { length }, generator: new RandomGenerator(5 + (ulong)step));
                    adam.Step();
                }
                return p.ToArray();
            }
            finally { Parallelism.ThreadCount = saved; }
        }
        Assert.Equal(Step(1), Step(2));
    }

    [Fact]
    public void Full_on_two_threads_fills_every_element()
    {
        int saved = Parallelism.ThreadCount;
        Parallelism.ThreadCount = 2;
        try
        {
            float[] ones = Tensor.Ones(new[] { 3, 100_001 }).ToArray();
            Assert.All(ones, v => Assert.Equal(1f, v));
            Assert.Equal(300_003, ones.Length);
        }
        finally { Parallelism.ThreadCount = saved; }
    }
}
