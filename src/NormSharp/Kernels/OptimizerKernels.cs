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

/// <summary>The scalars of one Keras SGD update (keras.optimizers.SGD), in the parameter's element type.</summary>
internal readonly record struct KerasSgdScalars<T>(T LearningRate, T Momentum, T DecayFactor, bool Nesterov);

/// <summary>The scalars of one Keras RMSprop update (keras.optimizers.RMSprop), in the parameter's element type.</summary>
internal readonly record struct RmsPropScalars<T>(T LearningRate, T Rho, T Momentum, T Epsilon, T DecayFactor, bool Centered);

/// <summary>
/// Keras's update rules that have no PyTorch counterpart, each written once on a <see cref="Vector{T}"/> block and run
/// by one driver (<see cref="Run{T, TRule}"/>) that handles the last partial block through padded stack buffers.
/// Every rule starts with Keras's decoupled weight decay p ← p − p·λ·lr, given as the factor 1 − λ·lr.
/// </summary>
internal static class KerasOptimizerKernels
{
    /// <summary>One update of a block: parameter, gradient and up to three state blocks (empty when unused).</summary>
    internal interface IRule<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        void Apply(Span<T> parameter, ReadOnlySpan<T> gradient, Span<T> state0, Span<T> state1, Span<T> state2);
    }

    /// <summary>keras.optimizers.SGD: v ← μv − lr·g, then p ← p + v, or p ← p + μv − lr·g with Nesterov; without
    /// momentum p ← p − lr·g. The learning rate enters the velocity (torch.optim.SGD multiplies the buffer by it
    /// instead, which differs once the rate changes). State 0 is the velocity.</summary>
    internal readonly struct SgdRule<T>(KerasSgdScalars<T> s) : IRule<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public void Apply(Span<T> parameter, ReadOnlySpan<T> gradient, Span<T> velocity, Span<T> unused1, Span<T> unused2)
        {
            Vector<T> p = new Vector<T>(parameter) * s.DecayFactor, step = new Vector<T>(gradient) * s.LearningRate;
            if (velocity.IsEmpty) p -= step;
            else
            {
                Vector<T> v = new Vector<T>(velocity) * s.Momentum - step;
                v.CopyTo(velocity);
                p += s.Nesterov ? v * s.Momentum - step : v;
            }
            p.CopyTo(parameter);
        }
    }

    /// <summary>keras.optimizers.RMSprop: velocity ← ρ·velocity + (1 − ρ)·g²; centred, ḡ ← ρ·ḡ + (1 − ρ)·g and the
    /// denominator is velocity − ḡ² + ε, else velocity + ε (ε inside the square root, unlike torch.optim.RMSprop);
    /// increment = lr·g/√denominator; with momentum μ, m ← μm + increment and p ← p − m, else p ← p − increment.
    /// States: velocity, momentum (empty without), average gradient (empty unless centred).</summary>
    internal readonly struct RmsPropRule<T>(RmsPropScalars<T> s) : IRule<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public void Apply(Span<T> parameter, ReadOnlySpan<T> gradient, Span<T> velocity, Span<T> momentum, Span<T> averageGradient)
        {
            Vector<T> p = new Vector<T>(parameter) * s.DecayFactor, g = new(gradient);
            Vector<T> v = new Vector<T>(velocity) * s.Rho + g * g * (T.One - s.Rho);
            v.CopyTo(velocity);
            Vector<T> denominator = v + new Vector<T>(s.Epsilon);
            if (s.Centered)
            {
                Vector<T> average = new Vector<T>(averageGradient) * s.Rho + g * (T.One - s.Rho);
                average.CopyTo(averageGradient);
                denominator -= average * average;
            }
            Vector<T> increment = g * s.LearningRate / Vector.SquareRoot(denominator);
            if (!momentum.IsEmpty)
            {
                increment = new Vector<T>(momentum) * s.Momentum + increment;
                increment.CopyTo(momentum);
            }
            (p - increment).CopyTo(parameter);
        }
    }

    /// <summary>Runs <paramref name="rule"/> on every whole block in place, then on the last partial block copied
    /// into zero-padded stack buffers (padding lanes are never copied back). Unused states are empty spans.</summary>
    public static void Run<T, TRule>(TRule rule, Span<T> parameter, ReadOnlySpan<T> gradient, Span<T> state0, Span<T> state1, Span<T> state2)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TRule : IRule<T>
    {
        int width = Vector<T>.Count, n = parameter.Length, i = 0;
        for (; i <= n - width; i += width)
            rule.Apply(parameter.Slice(i, width), gradient.Slice(i, width), Block(state0, i, width), Block(state1, i, width), Block(state2, i, width));
        if (i == n) return;
        int rest = n - i;
        Span<T> padded = stackalloc T[5 * width];
        padded.Clear();
        Span<T> p = padded[..width], g = padded.Slice(width, width);
        Span<T> s0 = state0.IsEmpty ? default : padded.Slice(2 * width, width);
        Span<T> s1 = state1.IsEmpty ? default : padded.Slice(3 * width, width);
        Span<T> s2 = state2.IsEmpty ? default : padded.Slice(4 * width, width);
        parameter[i..].CopyTo(p);
        gradient[i..].CopyTo(g);
        if (!s0.IsEmpty) state0[i..].CopyTo(s0);
        if (!s1.IsEmpty) state1[i..].CopyTo(s1);
        if (!s2.IsEmpty) state2[i..].CopyTo(s2);
        rule.Apply(p, g, s0, s1, s2);
        p[..rest].CopyTo(parameter[i..]);
        if (!s0.IsEmpty) s0[..rest].CopyTo(state0[i..]);
        if (!s1.IsEmpty) s1[..rest].CopyTo(state1[i..]);
        if (!s2.IsEmpty) s2[..rest].CopyTo(state2[i..]);
    }

    private static Span<T> Block<T>(Span<T> state, int start, int width) => state.IsEmpty ? default : state.Slice(start, width);
}
