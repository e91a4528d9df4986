using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace NormSharp.Kernels;

/// <summary>A loss between an input element x and a target element y, with its partial derivatives.</summary>
internal interface IElementwiseLoss<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    T Loss(T x, T y);

    T InputGradient(T x, T y);

    T TargetGradient(T x, T y);
}

/// <summary>
/// Loss functions. Class-based losses read data as (outer, C, inner), one row per (outer, inner) position, with the
/// class axis strided by inner (the layout of PyTorch's (N, C, d1, …) inputs); element-wise losses pair input and
/// target element by element. Every kernel writes unreduced losses, and every backward takes one upstream gradient
/// per loss term, so the reduction lives in one place (the caller).
/// </summary>
internal static class LossKernels
{
    // ---- class-index targets -----------------------------------------------------------------------------------

    /// <summary>
    /// ℓ = −Σ_c q_c·logp_c per row, where q is the label-smoothed one-hot target, q_c = (1−ε)·[c = t] + ε/C
    /// (Szegedy et al. 2016, §7); rows whose target is <paramref name="ignoreIndex"/> get 0. The log-probabilities
    /// are <paramref name="scores"/> less each row's <paramref name="logNormalizers"/> (logits and their
    /// m + log Σ e^(x−m)), or the scores themselves when that span is empty.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ClassIndexForward<T>(ReadOnlySpan<T> scores, ReadOnlySpan<T> logNormalizers, ReadOnlySpan<int> target, Span<T> loss,
        int classes, int inner, T smoothing, int ignoreIndex)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T uniform = smoothing / T.CreateChecked(classes);
        for (int row = 0; row < target.Length; row++)
        {
            int t = target[row];
            if (t == ignoreIndex)
            {
                loss[row] = T.Zero;
                continue;
            }
            int first = RowStart(row, classes, inner);
            T normalizer = logNormalizers.IsEmpty ? T.Zero : logNormalizers[row];
            T value = -(T.One - smoothing) * (scores[first + t * inner] - normalizer);
            if (smoothing != T.Zero)
            {
                T sum = T.Zero;
                for (int c = 0; c < classes; c++) sum += scores[first + c * inner];
                value -= uniform * (sum - T.CreateChecked(classes) * normalizer);
            }
            loss[row] = value;
        }
    }

    /// <summary>
    /// The gradient of <see cref="ClassIndexForward"/> scaled by each row's upstream gradient. With
    /// <paramref name="throughLogSoftmax"/> (cross-entropy on logits) it is upstream·(softmax − q): on contiguous rows
    /// (inner = 1) the <paramref name="probabilities"/> that the forward kept, otherwise e^logp; without it (NLL on
    /// log-probabilities) upstream·(−q). Ignored rows get 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ClassIndexBackward<T>(ReadOnlySpan<T> logp, ReadOnlySpan<T> probabilities, ReadOnlySpan<int> target, ReadOnlySpan<T> upstream, Span<T> dx,
        int classes, int inner, T smoothing, int ignoreIndex, bool throughLogSoftmax)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T uniform = smoothing / T.CreateChecked(classes);
        if (inner == 1)
        {
            if (throughLogSoftmax && probabilities.Length != dx.Length)
                throw new ArgumentException($"ClassIndexBackward: contiguous rows through the log-softmax need the {dx.Length} probabilities of the forward, got {probabilities.Length}.");
            // Contiguous rows: u·softmax − u·ε/C over the whole row in one pass, then the target's own −u·(1 − ε).
            for (int row = 0; row < target.Length; row++)
            {
                int t = target[row];
                T u = t == ignoreIndex ? T.Zero : upstream[row];
                Span<T> d = dx.Slice(row * classes, classes);
                if (!throughLogSoftmax) d.Fill(-u * uniform);
                else NormalizationSimd.Write(d, new ShiftScale<T, Uniform<T>>(probabilities.Slice(row * classes, classes), new(T.Zero), new(u), new(-u * uniform)));
                if (t != ignoreIndex) d[t] -= u * (T.One - smoothing);
            }
            return;
        }
        // The exponentials in one vectorized pass, then a cheap strided pass per row.
        if (throughLogSoftmax) TensorPrimitives.Exp(logp, dx);
        else dx.Clear();
        for (int row = 0; row < target.Length; row++)
        {
            int t = target[row], first = RowStart(row, classes, inner);
            T u = t == ignoreIndex ? T.Zero : upstream[row];
            for (int c = 0; c < classes; c++)
            {
                T q = c == t ? T.One - smoothing + uniform : uniform;
                dx[first + c * inner] = u * (dx[first + c * inner] - q);
            }
        }
    }

    // ---- probability targets -----------------------------------------------------------------------------------

    /// <summary>ℓ = −Σ_c q_c·logp_c per row with q = (1−ε)·target + ε/C (PyTorch's soft-label cross-entropy).</summary>
    public static void ProbabilityForward<T>(ReadOnlySpan<T> logp, ReadOnlySpan<T> target, Span<T> loss, int classes, int inner, T smoothing)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T uniform = smoothing / T.CreateChecked(classes);
        for (int row = 0; row < loss.Length; row++)
        {
            int first = RowStart(row, classes, inner);
            T value = T.Zero;
            for (int c = 0; c < classes; c++)
            {
                int i = first + c * inner;
                value -= ((T.One - smoothing) * target[i] + uniform) * logp[i];
            }
            loss[row] = value;
        }
    }

    /// <summary>
    /// Gradients of <see cref="ProbabilityForward"/> through the log-softmax: d/dlogits = upstream·(softmax·Σ_c q_c − q)
    /// (the targets need not sum to one) and d/dtarget = −upstream·(1−ε)·logp; either span may be empty to skip it.
    /// </summary>
    public static void ProbabilityBackward<T>(ReadOnlySpan<T> logp, ReadOnlySpan<T> target, ReadOnlySpan<T> upstream, Span<T> dx, Span<T> dTarget,
        int classes, int inner, T smoothing)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!dx.IsEmpty) TensorPrimitives.Exp(logp, dx);
        T uniform = smoothing / T.CreateChecked(classes);
        for (int row = 0; row < upstream.Length; row++)
        {
            int first = RowStart(row, classes, inner);
            T u = upstream[row];
            T targetSum = T.Zero;
            for (int c = 0; c < classes; c++) targetSum += (T.One - smoothing) * target[first + c * inner] + uniform;
            for (int c = 0; c < classes; c++)
            {
                int i = first + c * inner;
                if (!dx.IsEmpty) dx[i] = u * (dx[i] * targetSum - ((T.One - smoothing) * target[i] + uniform));
                if (!dTarget.IsEmpty) dTarget[i] = -u * (T.One - smoothing) * logp[i];
            }
        }
    }

    /// <summary>The flat index of class 0 of a row (row = outer·inner + position).</summary>
    private static int RowStart(int row, int classes, int inner) => (row / inner) * classes * inner + row % inner;

    // ---- element-wise ------------------------------------------------------------------------------------------

    /// <summary>loss[i] = ℓ(x[i], y[i]).</summary>
    public static void ElementwiseForward<T, TLoss>(TLoss loss, ReadOnlySpan<T> x, ReadOnlySpan<T> y, Span<T> result)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TLoss : struct, IElementwiseLoss<T>
    {
        for (int i = 0; i < x.Length; i++) result[i] = loss.Loss(x[i], y[i]);
    }

    /// <summary>dx[i] = upstream[i]·∂ℓ/∂x and dy[i] = upstream[i]·∂ℓ/∂y; an empty span skips that gradient.</summary>
    public static void ElementwiseBackward<T, TLoss>(TLoss loss, ReadOnlySpan<T> x, ReadOnlySpan<T> y, ReadOnlySpan<T> upstream, Span<T> dx, Span<T> dy)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TLoss : struct, IElementwiseLoss<T>
    {
        for (int i = 0; i < x.Length; i++)
        {
            if (!dx.IsEmpty) dx[i] = upstream[i] * loss.InputGradient(x[i], y[i]);
            if (!dy.IsEmpty) dy[i] = upstream[i] * loss.TargetGradient(x[i], y[i]);
        }
    }

    /// <summary>Binary cross-entropy on probabilities, ℓ = −(y·log x + (1 − y)·log(1 − x)), with each log clamped
    /// at −100 as PyTorch does so that x = 0 or 1 gives a finite loss. ∂ℓ/∂x = (x − y) / max(x(1 − x), 1e−12), PyTorch's
    /// guarded form.</summary>
    public readonly struct BinaryCrossEntropy<T> : IElementwiseLoss<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private static readonly T LogFloor = T.CreateChecked(-100), Epsilon = T.CreateChecked(1e-12);

        public T Loss(T x, T y) => -(y * ClampedLog(x) + (T.One - y) * ClampedLog(T.One - x));

        public T InputGradient(T x, T y) => (x - y) / T.Max(x * (T.One - x), Epsilon);

        public T TargetGradient(T x, T y) => ClampedLog(T.One - x) - ClampedLog(x);

        private static T ClampedLog(T v) => T.Max(T.Log(v), LogFloor);
    }

    /// <summary>Binary cross-entropy on logits in the stable form ℓ = max(x, 0) − x·y + log(1 + e^−|x|), which never
    /// exponentiates a positive number; ∂ℓ/∂x = σ(x) − y, ∂ℓ/∂y = −x.</summary>
    public readonly struct BinaryCrossEntropyWithLogits<T> : IElementwiseLoss<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public T Loss(T x, T y) => T.Max(x, T.Zero) - x * y + T.LogP1(T.Exp(-T.Abs(x)));

        public T InputGradient(T x, T y) => T.One / (T.One + T.Exp(-x)) - y;

        public T TargetGradient(T x, T y) => -x;
    }

    /// <summary>Squared error ℓ = (x − y)²; ∂ℓ/∂x = 2(x − y) = −∂ℓ/∂y.</summary>
    public readonly struct SquaredError<T> : IElementwiseLoss<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        private static readonly T Two = T.CreateChecked(2);

        public T Loss(T x, T y) => (x - y) * (x - y);

        public T InputGradient(T x, T y) => Two * (x - y);

        public T TargetGradient(T x, T y) => Two * (y - x);
    }
}
