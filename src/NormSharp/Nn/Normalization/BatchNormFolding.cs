namespace NormSharp.Nn;

/// <summary>
/// Folding an evaluation-mode BatchNorm into the layer before it, for inference. With s = γ/√(running_var + ε),
/// BN(W·x + b) = W'·x + b' where W'[o, …] = s_o·W[o, …] and b'_o = s_o·(b_o − running_mean_o) + β_o: one layer
/// instead of two, and the same outputs up to rounding.
/// </summary>
public static class BatchNormFolding
{
    /// <summary>
    /// The folded weight and bias for any layer whose weight has the output channel on its first axis (Linear's
    /// (out, in), Conv2d's (out, in, kh, kw)) and whose output feeds <paramref name="batchNorm"/>; a missing bias
    /// counts as zero. Uses the running statistics, i.e. the layer's evaluation-mode behaviour. Computed in float64.
    /// </summary>
    public static (Tensor Weight, Tensor Bias) Fold(Tensor weight, Tensor? bias, BatchNorm batchNorm)
    {
        ArgumentNullException.ThrowIfNull(weight);
        ArgumentNullException.ThrowIfNull(batchNorm);
        if (!batchNorm.TrackRunningStats)
            throw new InvalidOperationException($"BatchNormFolding: {batchNorm} has no running statistics; only evaluation-mode BatchNorm folds into a constant affine map.");
        int outputs = batchNorm.NumFeatures;
        if (weight.Rank < 1 || weight.Dims[0] != outputs)
            throw new ArgumentException($"BatchNormFolding: the weight's first axis must be the {outputs} output channels of {batchNorm}, got weight shape {ShapeUtil.Format(weight.Dims)}.");
        if (bias is not null && (bias.Rank != 1 || bias.Length != outputs))
            throw new ArgumentException($"BatchNormFolding: the bias must have shape ({outputs},), got {ShapeUtil.Format(bias.Dims)}.");

        double[] w = weight.ToDoubleArray(), b = bias?.ToDoubleArray() ?? new double[outputs];
        double[] mean = batchNorm.RunningMean!.ToDoubleArray(), variance = batchNorm.RunningVar!.ToDoubleArray();
        double[]? gamma = batchNorm.Weight?.ToDoubleArray(), beta = batchNorm.Bias?.ToDoubleArray();
        int perOutput = weight.Length / outputs;
        for (int o = 0; o < outputs; o++)
        {
            double scale = (gamma?[o] ?? 1) / Math.Sqrt(variance[o] + batchNorm.Eps);
            for (int i = 0; i < perOutput; i++) w[o * perOutput + i] *= scale;
            b[o] = scale * (b[o] - mean[o]) + (beta?[o] ?? 0);
        }
        return (Persistent(w, weight.Dims, weight.DType), Persistent(b, new[] { outputs }, weight.DType));
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

    private static Tensor Persistent(double[] values, int[] shape, DType dtype)
    {
        Tensor t = Tensor.Allocate(dtype, shape, clear: false, scoped: false);
        using (TensorScope.Begin()) t.CopyFrom(Tensor.FromArray(values, shape));
        return t;
    }
}
