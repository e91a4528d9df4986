using System.Numerics;
using System.Runtime.CompilerServices;

namespace NormSharp.Nn;

/// <summary>
/// Folding an evaluation-mode BatchNorm into a neighbouring layer, for inference. In evaluation mode BN is the
/// per-channel affine map BN(h) = s⊙h + t with s = γ/√(running_var + ε) and t = β − s⊙running_mean. Folded into the
/// layer before it, BN(W·x + b) = W'·x + b' where W'[o, …] = s_o·W[o, …] and b'_o = s_o·b_o + t_o (<see cref="Fold(Tensor, Tensor?, BatchNorm)"/>);
/// folded into the Linear after it, see <see cref="FoldIntoFollowing(Tensor, Tensor?, BatchNorm)"/>. One layer instead of two, and the same
/// outputs up to rounding.
/// </summary>
public static class BatchNormFolding
{
    /// <summary>
    /// The folded weight and bias for any layer whose weight has the output channel on its first axis (Linear's
    /// (out, in), Conv2d's (out, in, kh, kw)) and whose output feeds <paramref name="batchNorm"/>; a missing bias
    /// counts as zero. Uses the running statistics, i.e. the layer's evaluation-mode behaviour. Computed in float64.
    /// </summary>
    public static (Tensor Weight, Tensor Bias) Fold(Tensor weight, Tensor? bias, BatchNorm batchNorm) => Fold(weight, bias, batchNorm, scoped: false);

    /// <summary><see cref="Fold(Tensor, Tensor?, BatchNorm)"/>, with the results in the current
    /// <see cref="TensorScope"/> (pooled buffers) when <paramref name="scoped"/>.</summary>
    internal static (Tensor Weight, Tensor Bias) Fold(Tensor weight, Tensor? bias, BatchNorm batchNorm, bool scoped)
    {
        ArgumentNullException.ThrowIfNull(weight);
        var (scale, shift) = AffineMap(batchNorm);
        int outputs = batchNorm.NumFeatures;
        if (weight.Rank < 1 || weight.Dims[0] != outputs)
            throw new ArgumentException($"BatchNormFolding: the weight's first axis must be the {outputs} output channels of {batchNorm}, got weight shape {ShapeUtil.Format(weight.Dims)}.");
        CheckBias(bias, outputs);

        double[] b = bias?.ToDoubleArray() ?? new double[outputs];
        for (int o = 0; o < outputs; o++) b[o] = scale[o] * b[o] + shift[o];
        return (FoldedWeight(weight, scale, scaleColumns: false, scoped), Folded(b, new[] { outputs }, weight.DType, scoped));
    }

    /// <summary>
    /// The folded weight (out, in) and bias (out) of a Linear whose input is the output of <paramref name="batchNorm"/>
    /// over in = C features, i.e. Linear(BN(h)) = W'·h + b' for h of shape (N, C). Substituting BN(h) = s⊙h + t:
    /// W·(s⊙h + t) + b = (W·diag(s))·h + (b + W·t), so W'[o, i] = W[o, i]·s_i and b'_o = b_o + Σ_i W[o, i]·t_i.
    /// A missing bias counts as zero. Uses the running statistics; computed in float64.
    /// </summary>
    public static (Tensor Weight, Tensor Bias) FoldIntoFollowing(Tensor weight, Tensor? bias, BatchNorm batchNorm) =>
        FoldIntoFollowing(weight, bias, batchNorm, scoped: false);

    /// <summary><see cref="FoldIntoFollowing(Tensor, Tensor?, BatchNorm)"/>, with the results in the current
    /// <see cref="TensorScope"/> (pooled buffers) when <paramref name="scoped"/>.</summary>
    internal static (Tensor Weight, Tensor Bias) FoldIntoFollowing(Tensor weight, Tensor? bias, BatchNorm batchNorm, bool scoped)
    {
        ArgumentNullException.ThrowIfNull(weight);
        var (scale, shift) = AffineMap(batchNorm);
        int inputs = batchNorm.NumFeatures;
        if (weight.Rank != 2 || weight.Dims[1] != inputs)
            throw new ArgumentException($"BatchNormFolding: a Linear weight (out, {inputs}) reading the {inputs} channels of {batchNorm} is needed, got weight shape {ShapeUtil.Format(weight.Dims)}.");
        int outputs = weight.Dims[0];
        CheckBias(bias, outputs);

        double[] b = bias?.ToDoubleArray() ?? new double[outputs];
        Tensor source = weight.Contiguous();
        if (weight.DType == DType.Float32) AddShiftedRows<float>(source.SpanF, shift, b);
        else AddShiftedRows<double>(source.SpanD, shift, b);
        return (FoldedWeight(weight, scale, scaleColumns: true, scoped), Folded(b, new[] { outputs }, weight.DType, scoped));
    }

    /// <summary>b[o] += Σ_i W[o, i]·t_i in float64, i in order (W is (out, t.Length), row-major).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AddShiftedRows<T>(ReadOnlySpan<T> weight, double[] shift, double[] bias) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int o = 0; o < bias.Length; o++)
            for (int i = 0; i < shift.Length; i++) bias[o] += double.CreateTruncating(weight[o * shift.Length + i]) * shift[i];
    }

    /// <summary>A new tensor (in the current scope when <paramref name="scoped"/>): <paramref name="weight"/> with each row o scaled by scale[o], or, with
    /// <paramref name="scaleColumns"/>, each column i by scale[i]; each product taken in float64 and rounded once.
    /// Written straight from the weight's elements rather than through a float64 copy of it: Model.Predict folds on
    /// every call, and those copies (1.8 MB for the seed CNN) were fresh large-object memory each time.</summary>
    private static Tensor FoldedWeight(Tensor weight, double[] scale, bool scaleColumns, bool scoped)
    {
        Tensor source = weight.Contiguous(), folded = Tensor.Allocate(weight.DType, weight.Dims, clear: false, scoped);
        if (weight.DType == DType.Float32) Scale<float>(source.SpanF, folded.SpanF, scale, scaleColumns);
        else Scale<double>(source.SpanD, folded.SpanD, scale, scaleColumns);
        return folded;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Scale<T>(ReadOnlySpan<T> weight, Span<T> folded, double[] scale, bool scaleColumns) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int perRow = scaleColumns ? scale.Length : weight.Length / scale.Length;
        for (int o = 0, at = 0; o < weight.Length / perRow; o++)
            for (int i = 0; i < perRow; i++, at++)
                folded[at] = T.CreateTruncating(double.CreateTruncating(weight[at]) * scale[scaleColumns ? i : o]);
    }

    /// <summary>BN in evaluation mode as s⊙h + t per channel: s = γ/√(running_var + ε), t = β − s⊙running_mean
    /// (Ioffe &amp; Szegedy 2015, Alg. 2, step 11); a missing γ counts as 1 and a missing β as 0.</summary>
    private static (double[] Scale, double[] Shift) AffineMap(BatchNorm batchNorm)
    {
        ArgumentNullException.ThrowIfNull(batchNorm);
        if (!batchNorm.TrackRunningStats)
            throw new InvalidOperationException($"BatchNormFolding: {batchNorm} has no running statistics; only evaluation-mode BatchNorm folds into a constant affine map.");
        double[] mean = batchNorm.RunningMean!.ToDoubleArray(), variance = batchNorm.RunningVar!.ToDoubleArray();
        double[]? gamma = batchNorm.Weight?.ToDoubleArray(), beta = batchNorm.Bias?.ToDoubleArray();
        var scale = new double[batchNorm.NumFeatures];
        var shift = new double[batchNorm.NumFeatures];
        for (int c = 0; c < scale.Length; c++)
        {
            scale[c] = (gamma?[c] ?? 1) / Math.Sqrt(variance[c] + batchNorm.Eps);
            shift[c] = (beta?[c] ?? 0) - scale[c] * mean[c];
        }
        return (scale, shift);
    }

    private static void CheckBias(Tensor? bias, int outputs)
    {
        if (bias is not null && (bias.Rank != 1 || bias.Length != outputs))
            throw new ArgumentException($"BatchNormFolding: the bias must have shape ({outputs},), got {ShapeUtil.Format(bias.Dims)}.");
    }

    /// <summary>A new Linear computing <paramref name="batchNorm"/>(<paramref name="linear"/>(x)) in evaluation mode.</summary>
    public static Linear Fuse(Linear linear, BatchNorm batchNorm)
    {
        ArgumentNullException.ThrowIfNull(linear);
        var (weight, bias) = Fold(linear.Weight, linear.Bias, batchNorm);
        var fused = new Linear(linear.InFeatures, linear.OutFeatures, bias: true);
        fused.To(weight.DType);
        fused.Weight.CopyFrom(weight);
        fused.Bias!.CopyFrom(bias);
        return fused;
    }

    /// <summary>A new Conv2d (same kernel, stride, padding and dilation, with a bias) computing
    /// <paramref name="batchNorm"/>(<paramref name="conv"/>(x)) in evaluation mode.</summary>
    public static Conv2d Fuse(Conv2d conv, BatchNorm batchNorm)
    {
        ArgumentNullException.ThrowIfNull(conv);
        var (weight, bias) = Fold(conv.Weight, conv.Bias, batchNorm);
        var fused = new Conv2d(conv.InChannels, conv.OutChannels, conv.KernelSize, conv.Stride, conv.Padding, conv.Dilation, bias: true);
        fused.To(weight.DType);
        fused.Weight.CopyFrom(weight);
        fused.Bias!.CopyFrom(bias);
        return fused;
    }

    /// <summary>A tensor (in the current scope when <paramref name="scoped"/>) holding <paramref name="values"/>,
    /// rounded once to <paramref name="dtype"/>.</summary>
    private static Tensor Folded(double[] values, int[] shape, DType dtype, bool scoped)
    {
        Tensor t = Tensor.Allocate(dtype, shape, clear: false, scoped);
        if (dtype == DType.Float64) values.CopyTo(t.SpanD);
        else
        {
            Span<float> rounded = t.SpanF;
            for (int i = 0; i < values.Length; i++) rounded[i] = (float)values[i];
        }
        return t;
    }
}
