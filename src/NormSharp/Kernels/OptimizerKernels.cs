using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace NormSharp.Kernels;

/// <summary>One optimizer's update of a vector of parameters from their gradients and up to three state vectors
/// (moments, velocities), written once for any vector width. The states that the rule does not use are zero and not
/// stored.</summary>
internal interface IUpdateRule<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>Returns the updated parameters and updates the states the rule uses in place.</summary>
    TVector Apply<TVector>(TVector parameter, TVector gradient, ref TVector state0, ref TVector state1, ref TVector state2)
        where TVector : struct, ISimdVector<TVector, T>;
}

/// <summary>The scalars of one SGD update, in the parameter's element type.</summary>
internal readonly record struct SgdScalars<T>(T LearningRate, T Momentum, T Dampening, T WeightDecay, bool Nesterov);

/// <summary>The scalars of one Adam(W) update: bias corrections are folded in by the caller, in double precision,
/// exactly where PyTorch computes them in Python floats.</summary>
internal readonly record struct AdamScalars<T>(T StepSize, T BiasCorrection2Sqrt, T Beta1Weight, T Beta2, T Epsilon,
    T WeightDecay, T DecoupledDecayFactor, bool Decoupled, bool AmsGrad);

/// <summary>The scalars of one Keras SGD update (keras.optimizers.SGD), in the parameter's element type.</summary>
internal readonly record struct KerasSgdScalars<T>(T LearningRate, T Momentum, T DecayFactor, bool Nesterov);

/// <summary>The scalars of one Keras RMSprop update (keras.optimizers.RMSprop), in the parameter's element type.</summary>
internal readonly record struct RmsPropScalars<T>(T LearningRate, T Rho, T Momentum, T Epsilon, T DecayFactor, bool Centered);

/// <summary>
/// Fused optimizer updates: one pass over parameter, gradient and state. Each rule's arithmetic is written once, on
/// one vector of any width (<see cref="IUpdateRule{T}"/>), and <see cref="Update{T, TRule}"/> runs it at the widest
/// width the machine has; the last partial vector is copied into padded stack buffers so it runs the same code
/// (padding lanes are never copied back). No rule fuses a multiply and an add, so every width gives the same bits.
/// </summary>
internal static class OptimizerKernels
{
    /// <summary>
    /// torch.optim.SGD: d = g + λp; with momentum μ (state 0, the buffer), b = d on the first step, else
    /// b = μb + (1 − τ)d, and d = d + μb (Nesterov) or d = b; then p = p − lr·d.
    /// </summary>
    internal readonly struct SgdRule<T>(SgdScalars<T> s, bool firstStep) : IUpdateRule<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public TVector Apply<TVector>(TVector p, TVector d, ref TVector buffer, ref TVector unused1, ref TVector unused2)
            where TVector : struct, ISimdVector<TVector, T>
        {
            if (s.WeightDecay != T.Zero) d += p * TVector.Create(s.WeightDecay);
            if (s.Momentum != T.Zero)
            {
                buffer = firstStep ? d : buffer * TVector.Create(s.Momentum) + d * TVector.Create(T.One - s.Dampening);
                d = s.Nesterov ? d + buffer * TVector.Create(s.Momentum) : buffer;
            }
            return p - d * TVector.Create(s.LearningRate);
        }
    }

    /// <summary>
    /// torch.optim.Adam / AdamW (Kingma &amp; Ba 2015, Alg. 1; Loshchilov &amp; Hutter 2019 for the decoupled decay):
    /// p = p·(1 − lr·λ) (AdamW) or g = g + λp (Adam); m = lerp(m, g, 1 − β1); v = β2·v + (1 − β2)·g²;
    /// v̂ = max(v̂, v) with AMSGrad, else v; p = p − stepSize·m / (√v̂ / √(1 − β2ᵗ) + ε), stepSize = lr / (1 − β1ᵗ).
    /// States: m, v, and v̂ with AMSGrad.
    /// </summary>
    internal readonly struct AdamRule<T>(AdamScalars<T> s) : IUpdateRule<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public TVector Apply<TVector>(TVector p, TVector g, ref TVector m, ref TVector v, ref TVector vMax)
            where TVector : struct, ISimdVector<TVector, T>
        {
            if (s.WeightDecay != T.Zero)
            {
                if (s.Decoupled) p *= TVector.Create(s.DecoupledDecayFactor);
                else g += p * TVector.Create(s.WeightDecay);
            }
            // PyTorch's lerp picks the form that is exact at the nearer end point.
            m = T.Abs(s.Beta1Weight) < T.CreateChecked(0.5) ? m + (g - m) * TVector.Create(s.Beta1Weight) : g - (g - m) * TVector.Create(T.One - s.Beta1Weight);
            v = v * TVector.Create(s.Beta2) + g * g * TVector.Create(T.One - s.Beta2);
            TVector second = v;
            if (s.AmsGrad) second = vMax = TVector.Max(vMax, v);
            TVector denominator = TVector.Sqrt(second) / TVector.Create(s.BiasCorrection2Sqrt) + TVector.Create(s.Epsilon);
            return p - m / denominator * TVector.Create(s.StepSize);
        }
    }

    /// <summary>keras.optimizers.SGD: v ← μv − lr·g, then p ← p + v, or p ← p + μv − lr·g with Nesterov; without
    /// momentum p ← p − lr·g. The learning rate enters the velocity (torch.optim.SGD multiplies the buffer by it
    /// instead, which differs once the rate changes). Keras's decoupled decay first: p ← p·(1 − λ·lr). State 0 is the
    /// velocity.</summary>
    internal readonly struct KerasSgdRule<T>(KerasSgdScalars<T> s) : IUpdateRule<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public TVector Apply<TVector>(TVector p, TVector g, ref TVector velocity, ref TVector unused1, ref TVector unused2)
            where TVector : struct, ISimdVector<TVector, T>
        {
            p *= TVector.Create(s.DecayFactor);
            TVector step = g * TVector.Create(s.LearningRate);
            if (s.Momentum == T.Zero) return p - step;
            velocity = velocity * TVector.Create(s.Momentum) - step;
            return p + (s.Nesterov ? velocity * TVector.Create(s.Momentum) - step : velocity);
        }
    }

    /// <summary>keras.optimizers.RMSprop: velocity ← ρ·velocity + (1 − ρ)·g²; centred, ḡ ← ρ·ḡ + (1 − ρ)·g and the
    /// denominator is velocity − ḡ² + ε, else velocity + ε (ε inside the square root, unlike torch.optim.RMSprop);
    /// increment = lr·g/√denominator; with momentum μ, m ← μm + increment and p ← p − m, else p ← p − increment.
    /// Keras's decoupled decay first: p ← p·(1 − λ·lr). States: velocity, momentum (unused without), average gradient
    /// (unused unless centred).</summary>
    internal readonly struct RmsPropRule<T>(RmsPropScalars<T> s) : IUpdateRule<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public TVector Apply<TVector>(TVector p, TVector g, ref TVector velocity, ref TVector momentum, ref TVector averageGradient)
            where TVector : struct, ISimdVector<TVector, T>
        {
            p *= TVector.Create(s.DecayFactor);
            velocity = velocity * TVector.Create(s.Rho) + g * g * TVector.Create(T.One - s.Rho);
            TVector denominator = velocity + TVector.Create(s.Epsilon);
            if (s.Centered)
            {
                averageGradient = averageGradient * TVector.Create(s.Rho) + g * TVector.Create(T.One - s.Rho);
                denominator -= averageGradient * averageGradient;
            }
            TVector increment = g * TVector.Create(s.LearningRate) / TVector.Sqrt(denominator);
            if (s.Momentum != T.Zero) increment = momentum = momentum * TVector.Create(s.Momentum) + increment;
            return p - increment;
        }
    }

    /// <summary>Applies <paramref name="rule"/> to every element in place, at the widest vector width the machine has.
    /// Unused states are empty spans; the others have the parameter's length.</summary>
    public static void Update<T, TRule>(TRule rule, Span<T> parameter, ReadOnlySpan<T> gradient, Span<T> state0, Span<T> state1, Span<T> state2)
        where T : unmanaged, IFloatingPointIeee754<T> where TRule : struct, IUpdateRule<T>
    {
        if (Vector512.IsHardwareAccelerated) Update<T, TRule, Simd512<T>>(rule, parameter, gradient, state0, state1, state2);
        else if (Vector256.IsHardwareAccelerated) Update<T, TRule, Simd256<T>>(rule, parameter, gradient, state0, state1, state2);
        else Update<T, TRule, Simd128<T>>(rule, parameter, gradient, state0, state1, state2);
    }

    /// <inheritdoc cref="Update{T, TRule}"/>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Update<T, TRule, TVector>(TRule rule, Span<T> parameter, ReadOnlySpan<T> gradient, Span<T> state0, Span<T> state1, Span<T> state2)
        where T : unmanaged, IFloatingPointIeee754<T> where TRule : struct, IUpdateRule<T> where TVector : struct, ISimdVector<TVector, T>
    {
        int width = TVector.Count, n = parameter.Length, i = 0;
        for (; i <= n - width; i += width) UpdateVector<T, TRule, TVector>(rule, parameter, gradient, state0, state1, state2, i);
        if (i < n) UpdateTail<T, TRule, TVector>(rule, parameter, gradient, state0, state1, state2, i);
    }

    /// <summary>The last n − <paramref name="i"/> &lt; width elements, padded to one vector on the stack. Its own
    /// method: with the stackalloc in <see cref="Update{T, TRule, TVector}"/>, Adam's loop ran about 20 % slower (1M
    /// float32, AVX-512, same-process A/B).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void UpdateTail<T, TRule, TVector>(TRule rule, Span<T> parameter, ReadOnlySpan<T> gradient, Span<T> state0, Span<T> state1, Span<T> state2, int i)
        where T : unmanaged, IFloatingPointIeee754<T> where TRule : struct, IUpdateRule<T> where TVector : struct, ISimdVector<TVector, T>
    {
        int width = TVector.Count, rest = parameter.Length - i;
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
        UpdateVector<T, TRule, TVector>(rule, p, g, s0, s1, s2, 0);
        p[..rest].CopyTo(parameter[i..]);
        if (!s0.IsEmpty) s0[..rest].CopyTo(state0[i..]);
        if (!s1.IsEmpty) s1[..rest].CopyTo(state1[i..]);
        if (!s2.IsEmpty) s2[..rest].CopyTo(state2[i..]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void UpdateVector<T, TRule, TVector>(TRule rule, Span<T> parameter, ReadOnlySpan<T> gradient, Span<T> state0, Span<T> state1, Span<T> state2, int i)
        where T : unmanaged, IFloatingPointIeee754<T> where TRule : struct, IUpdateRule<T> where TVector : struct, ISimdVector<TVector, T>
    {
        ref T p = ref MemoryMarshal.GetReference(parameter);
        TVector s0 = LoadState<T, TVector>(state0, i), s1 = LoadState<T, TVector>(state1, i), s2 = LoadState<T, TVector>(state2, i);
        rule.Apply(TVector.LoadUnsafe(in p, (nuint)i), NormalizationSimd.Load<T, TVector>(gradient, i), ref s0, ref s1, ref s2).StoreUnsafe(ref p, (nuint)i);
        if (!state0.IsEmpty) s0.StoreUnsafe(ref MemoryMarshal.GetReference(state0), (nuint)i);
        if (!state1.IsEmpty) s1.StoreUnsafe(ref MemoryMarshal.GetReference(state1), (nuint)i);
        if (!state2.IsEmpty) s2.StoreUnsafe(ref MemoryMarshal.GetReference(state2), (nuint)i);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVector LoadState<T, TVector>(Span<T> state, int i) where T : unmanaged where TVector : struct, ISimdVector<TVector, T> =>
        state.IsEmpty ? TVector.Zero : NormalizationSimd.Load<T, TVector>(state, i);
}
