using System.Numerics;
using System.Runtime.CompilerServices;

namespace NormSharp.Kernels;

/// <summary>The scalars of one SGD update, in the parameter's element type.</summary>
internal readonly record struct SgdScalars<T>(T LearningRate, T Momentum, T Dampening, T WeightDecay, bool Nesterov);

/// <summary>The scalars of one Adam(W) update: bias corrections are folded in by the caller, in double precision,
/// exactly where PyTorch computes them in Python floats.</summary>
internal readonly record struct AdamScalars<T>(T StepSize, T BiasCorrection2Sqrt, T Beta1Weight, T Beta2, T Epsilon,
    T WeightDecay, T DecoupledDecayFactor, bool Decoupled, bool AmsGrad);

/// <summary>
/// Fused optimizer updates: one pass over parameter, gradient and state. The arithmetic of each is written once, on
/// one <see cref="Vector{T}"/> block; the last partial block is copied into padded stack buffers so it runs the same
/// code (padding lanes are never copied back).
/// </summary>
internal static class OptimizerKernels
{
    /// <summary>
    /// torch.optim.SGD: d = g + λp; with momentum μ, b = d on the first step, else b = μb + (1 − τ)d, and d = d + μb
    /// (Nesterov) or d = b; then p = p − lr·d. <paramref name="momentumBuffer"/> is empty when μ = 0.
    /// </summary>
    public static void Sgd<T>(Span<T> parameter, ReadOnlySpan<T> gradient, Span<T> momentumBuffer, SgdScalars<T> s, bool firstStep)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        bool hasMomentum = !momentumBuffer.IsEmpty;
        int width = Vector<T>.Count, n = parameter.Length, i = 0;
        for (; i <= n - width; i += width)
            SgdBlock(parameter.Slice(i, width), gradient.Slice(i, width), hasMomentum ? momentumBuffer.Slice(i, width) : default, s, firstStep);
        if (i == n) return;
        int rest = n - i;
        Span<T> padded = stackalloc T[3 * width];
        padded.Clear();
        Span<T> p = padded[..width], g = padded.Slice(width, width), b = hasMomentum ? padded.Slice(2 * width, width) : default;
        parameter[i..].CopyTo(p);
        gradient[i..].CopyTo(g);
        if (hasMomentum) momentumBuffer[i..].CopyTo(b);
        SgdBlock(p, g, b, s, firstStep);
        p[..rest].CopyTo(parameter[i..]);
        if (hasMomentum) b[..rest].CopyTo(momentumBuffer[i..]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SgdBlock<T>(Span<T> parameter, ReadOnlySpan<T> gradient, Span<T> momentumBuffer, SgdScalars<T> s, bool firstStep)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Vector<T> p = new(parameter), d = new(gradient);
        if (s.WeightDecay != T.Zero) d += p * s.WeightDecay;
        if (!momentumBuffer.IsEmpty)
        {
            Vector<T> b = firstStep ? d : new Vector<T>(momentumBuffer) * s.Momentum + d * (T.One - s.Dampening);
            b.CopyTo(momentumBuffer);
            d = s.Nesterov ? d + b * s.Momentum : b;
        }
        (p - d * s.LearningRate).CopyTo(parameter);
    }

    /// <summary>
    /// torch.optim.Adam / AdamW (Kingma &amp; Ba 2015, Alg. 1; Loshchilov &amp; Hutter 2019 for the decoupled decay):
    /// p = p·(1 − lr·λ) (AdamW) or g = g + λp (Adam); m = lerp(m, g, 1 − β1); v = β2·v + (1 − β2)·g²;
    /// v̂ = max(v̂, v) with AMSGrad, else v; p = p − stepSize·m / (√v̂ / √(1 − β2ᵗ) + ε), stepSize = lr / (1 − β1ᵗ).
    /// <paramref name="maxExpAvgSq"/> is empty without AMSGrad.
    /// </summary>
    public static void Adam<T>(Span<T> parameter, ReadOnlySpan<T> gradient, Span<T> expAvg, Span<T> expAvgSq, Span<T> maxExpAvgSq, AdamScalars<T> s)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int width = Vector<T>.Count, n = parameter.Length, i = 0;
        for (; i <= n - width; i += width)
            AdamBlock(parameter.Slice(i, width), gradient.Slice(i, width), expAvg.Slice(i, width), expAvgSq.Slice(i, width), s.AmsGrad ? maxExpAvgSq.Slice(i, width) : default, s);
        if (i == n) return;
        int rest = n - i;
        Span<T> padded = stackalloc T[5 * width];
        padded.Clear();
        Span<T> p = padded[..width], g = padded.Slice(width, width), m = padded.Slice(2 * width, width), v = padded.Slice(3 * width, width);
        Span<T> vMax = s.AmsGrad ? padded.Slice(4 * width, width) : default;
        parameter[i..].CopyTo(p);
        gradient[i..].CopyTo(g);
        expAvg[i..].CopyTo(m);
        expAvgSq[i..].CopyTo(v);
        if (s.AmsGrad) maxExpAvgSq[i..].CopyTo(vMax);
        AdamBlock(p, g, m, v, vMax, s);
        p[..rest].CopyTo(parameter[i..]);
        m[..rest].CopyTo(expAvg[i..]);
        v[..rest].CopyTo(expAvgSq[i..]);
        if (s.AmsGrad) vMax[..rest].CopyTo(maxExpAvgSq[i..]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AdamBlock<T>(Span<T> parameter, ReadOnlySpan<T> gradient, Span<T> expAvg, Span<T> expAvgSq, Span<T> maxExpAvgSq, AdamScalars<T> s)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Vector<T> p = new(parameter), g = new(gradient);
        if (s.WeightDecay != T.Zero)
        {
            if (s.Decoupled) p *= s.DecoupledDecayFactor;
            else g += p * s.WeightDecay;
        }
        // PyTorch's lerp picks the form that is exact at the nearer end point.
        Vector<T> m = new(expAvg);
        m = T.Abs(s.Beta1Weight) < T.CreateChecked(0.5) ? m + (g - m) * s.Beta1Weight : g - (g - m) * (T.One - s.Beta1Weight);
        Vector<T> v = new Vector<T>(expAvgSq) * s.Beta2 + g * g * (T.One - s.Beta2);
        m.CopyTo(expAvg);
        v.CopyTo(expAvgSq);
        if (s.AmsGrad)
        {
            v = Vector.Max(new Vector<T>(maxExpAvgSq), v);
            v.CopyTo(maxExpAvgSq);
        }
        Vector<T> denominator = Vector.SquareRoot(v) / s.BiasCorrection2Sqrt + new Vector<T>(s.Epsilon);
        (p - m / denominator * s.StepSize).CopyTo(parameter);
    }
}
