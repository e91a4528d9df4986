using System.Numerics;
using System.Runtime.CompilerServices;

namespace NormSharp.Kernels;

/// <summary>Elementary functions written once against <see cref="ISimdVector{TSelf, T}"/>, for the kernels whose
/// time is spent in them (softmax and cross-entropy are mostly exponentials). They work in the element type:
/// TensorPrimitives.Exp computes a float32 exponential in float64 lanes, twice the vectors for the same answer to
/// within an ulp.</summary>
internal static class SimdMath
{
    /// <summary>
    /// e^x for x ≤ 0 (a softmax's x − max, a log-probability): 0 where e^x is below the smallest normal number,
    /// 1 at 0, NaN for NaN. x = n·ln 2 + r with n = round(x/ln 2) and r taken in two steps (Cody &amp; Waite 1980,
    /// so r keeps its digits), e^r from a polynomial on |r| ≤ ln 2 / 2 — float32: Cephes expf's minimax
    /// polynomial (Moshier 1989), within 2 ulp; float64: Taylor to r¹², within a few ulp — and e^x = e^r·2ⁿ by
    /// adding n to the exponent.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector ExpOfNonPositive<T, TVector>(TVector x) where T : unmanaged, IFloatingPointIeee754<T> where TVector : struct, ISimdVector<TVector, T>
    {
        bool single = typeof(T) == typeof(float);
        // Below e^-86.6 (float32) or e^-707 (float64) 2ⁿ·e^r would leave the normal numbers: those lanes (−∞
        // included) are replaced by 0 at the end, so whatever the steps make of them does not matter, and x needs no
        // clamping (a NaN stays NaN through every step).
        TVector lowest = TVector.Create(T.CreateTruncating(single ? -86.6 : -707.0));
        // Adding and subtracting 1.5·2^(mantissa bits) rounds to the nearest whole number.
        TVector rounding = TVector.Create(T.CreateTruncating(single ? 12582912.0 : 6755399441055744.0));
        TVector n = TVector.MultiplyAdd(x, TVector.Create(T.CreateTruncating(1.4426950408889634)), rounding) - rounding;
        TVector r = TVector.MultiplyAdd(n, TVector.Create(T.CreateTruncating(single ? -0.693359375 : -6.93147180369123816490e-01)), x);
        r = TVector.MultiplyAdd(n, TVector.Create(T.CreateTruncating(single ? 2.12194440e-4 : -1.90821492927058770002e-10)), r);
        TVector p = single ? SinglePolynomial<T, TVector>(r) : DoublePolynomial<T, TVector>(r);
        return TVector.ConditionalSelect(TVector.LessThan(x, lowest), TVector.Zero, TVector.MultiplyByPowerOfTwo(p, n));
    }

    /// <summary>Cephes expf: e^r ≈ 1 + r + r²·P(r) with P of degree 5.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVector SinglePolynomial<T, TVector>(TVector r) where T : unmanaged, IFloatingPointIeee754<T> where TVector : struct, ISimdVector<TVector, T>
    {
        TVector p = TVector.Create(T.CreateTruncating(1.9875691500e-4));
        p = TVector.MultiplyAdd(p, r, TVector.Create(T.CreateTruncating(1.3981999507e-3)));
        p = TVector.MultiplyAdd(p, r, TVector.Create(T.CreateTruncating(8.3334519073e-3)));
        p = TVector.MultiplyAdd(p, r, TVector.Create(T.CreateTruncating(4.1665795894e-2)));
        p = TVector.MultiplyAdd(p, r, TVector.Create(T.CreateTruncating(1.6666665459e-1)));
        p = TVector.MultiplyAdd(p, r, TVector.Create(T.CreateTruncating(5.0000001201e-1)));
        return TVector.MultiplyAdd(p, r * r, r) + TVector.Create(T.One);
    }

    /// <summary>1/k! for k = 12 down to 0.</summary>
    private static readonly double[] InverseFactorials = Enumerable.Range(0, 13).Reverse()
        .Select(k => 1 / Enumerable.Range(1, k).Aggregate(1.0, (product, i) => product * i)).ToArray();

    /// <summary>e^r ≈ Σ_{k ≤ 12} r^k / k!: the first omitted term is below 2·10⁻¹⁶ of e^r for |r| ≤ ln 2 / 2.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVector DoublePolynomial<T, TVector>(TVector r) where T : unmanaged, IFloatingPointIeee754<T> where TVector : struct, ISimdVector<TVector, T>
    {
        TVector p = TVector.Create(T.CreateTruncating(InverseFactorials[0]));
        for (int k = 1; k < InverseFactorials.Length; k++) p = TVector.MultiplyAdd(p, r, TVector.Create(T.CreateTruncating(InverseFactorials[k])));
        return p;
    }
}
