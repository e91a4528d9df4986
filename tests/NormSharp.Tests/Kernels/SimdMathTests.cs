using NormSharp.Kernels;

namespace NormSharp.Tests.Kernels;

/// <summary>The width-generic exponential of the softmax family against Math.Exp, at each vector width.</summary>
public class SimdMathTests
{
    public static TheoryData<int> Widths => VectorWidths.All;

    [Theory]
    [MemberData(nameof(Widths))]
    public void Exp_of_non_positive_values_is_within_two_ulp_in_float32_and_a_few_in_float64(int bits) => VectorWidths.Run(bits, new ExpAccuracy());

    private readonly struct ExpAccuracy : IWidthCase
    {
        public void Run<TFloat, TDouble>()
            where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>
        {
            double worstSingle = 0, worstDouble = 0;
            for (int i = 0; i <= 200_000; i++)
            {
                // 0 down to −86.5, where float32's e^x is still a normal number, densely near 0.
                double x = -86.5 * Math.Pow(i / 200_000.0, 2);
                float single = TFloat.Sum(TFloat.ConditionalSelect(TFloat.LanesFrom(1), TFloat.Zero, SimdMath.ExpOfNonPositive<float, TFloat>(TFloat.Create((float)x))));
                double exact = Math.Exp((float)x);
                worstSingle = Math.Max(worstSingle, Math.Abs(single - exact) / (MathF.BitIncrement((float)exact) - (float)exact));
                double wide = TDouble.Sum(TDouble.ConditionalSelect(TDouble.LanesFrom(1), TDouble.Zero, SimdMath.ExpOfNonPositive<double, TDouble>(TDouble.Create(x * 8))));
                worstDouble = Math.Max(worstDouble, Math.Abs(wide - Math.Exp(x * 8)) / (Math.BitIncrement(Math.Exp(x * 8)) - Math.Exp(x * 8)));
            }
            Assert.True(worstSingle <= 2, $"float32: {worstSingle:F2} ulp");
            Assert.True(worstDouble <= 4, $"float64: {worstDouble:F2} ulp");
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Exp_of_zero_is_one_and_of_minus_infinity_and_values_below_the_normal_range_is_zero(int bits) => VectorWidths.Run(bits, new ExpEdges());

    private readonly struct ExpEdges : IWidthCase
    {
        public void Run<TFloat, TDouble>()
            where TFloat : struct, IWideningVector<TFloat, float, TDouble> where TDouble : struct, IWideningVector<TDouble, double, TDouble>
        {
            foreach (var (x, expected) in new[] { (0f, 1f), (-0f, 1f), (float.NegativeInfinity, 0f), (-1000f, 0f), (-87.5f, 0f) })
                Assert.Equal(expected * TFloat.Count, TFloat.Sum(SimdMath.ExpOfNonPositive<float, TFloat>(TFloat.Create(x))));
            Assert.True(float.IsNaN(TFloat.Sum(SimdMath.ExpOfNonPositive<float, TFloat>(TFloat.Create(float.NaN)))));
            foreach (var (x, expected) in new[] { (0.0, 1.0), (double.NegativeInfinity, 0.0), (-1e4, 0.0) })
                Assert.Equal(expected * TDouble.Count, TDouble.Sum(SimdMath.ExpOfNonPositive<double, TDouble>(TDouble.Create(x))));
            Assert.True(double.IsNaN(TDouble.Sum(SimdMath.ExpOfNonPositive<double, TDouble>(TDouble.Create(double.NaN)))));
        }
    }
}
