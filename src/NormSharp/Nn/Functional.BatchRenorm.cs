namespace NormSharp.Nn;

public static partial class Functional
{
    /// <summary>
    /// Batch Renormalization in training mode (Ioffe 2017, Alg. 1) over the channel axis: with the batch statistics
    /// μ_B, σ_B = √(σ²_B + ε) and the running ones μ, σ = √(running_var + ε),
    /// r = clip(σ_B/σ, 1/rmax, rmax), d = clip((μ_B − μ)/σ, −dmax, dmax) and y = ((x − μ_B)/σ_B·r + d)·γ + β.
    /// r and d are constants for the gradient (the paper's stop_gradient), so the backward is BatchNorm's scaled by r.
    /// The running statistics then move toward the batch's, running ← (1 − momentum)·running + momentum·batch, with
    /// the unbiased variance when <paramref name="unbiasedRunningVariance"/> (PyTorch) and the biased one otherwise
    /// (Keras). With rmax = 1 and dmax = 0 this is BatchNorm.
    /// </summary>
    internal static Tensor BatchRenorm(string who, Tensor input, int channelAxis, Tensor runningMean, Tensor runningVar, Tensor? weight, Tensor? bias,
        (double RMax, double DMax) limits, double momentum, double eps, bool unbiasedRunningVariance)
    {
        int channels = input.Dims[channelAxis];
        // Momentum 1 makes BatchNorm copy the batch mean and biased variance into these scratch buffers: it computes
        // (1 − 1)·old + 1·batch, so the old contents must be finite, and a buffer rented uninitialized in a scope can
        // hold NaN or ∞ from whatever used it before (0·NaN = NaN): cleared, they are zeros.
        Tensor batchMean = Tensor.Allocate(input.DType, new[] { channels }), batchVariance = Tensor.Allocate(input.DType, new[] { channels });
        Tensor normalized = BatchNorm(who, input, channelAxis, batchMean, batchVariance, null, null, training: true, momentum: 1, eps, unbiasedRunningVariance: false);

        double[] mean = runningMean.ToDoubleArray(), variance = runningVar.ToDoubleArray();
        double[] muB = batchMean.ToDoubleArray(), varB = batchVariance.ToDoubleArray();
        double[] r = new double[channels], d = new double[channels];
        double count = (double)input.Length / channels, correction = unbiasedRunningVariance && count > 1 ? count / (count - 1) : 1;
        for (int c = 0; c < channels; c++)
        {
            double sigma = Math.Sqrt(variance[c] + eps);
            r[c] = Math.Clamp(Math.Sqrt(varB[c] + eps) / sigma, 1 / limits.RMax, limits.RMax);
            d[c] = Math.Clamp((muB[c] - mean[c]) / sigma, -limits.DMax, limits.DMax);
            mean[c] += momentum * (muB[c] - mean[c]);
            variance[c] += momentum * (varB[c] * correction - variance[c]);
        }
        runningMean.CopyFrom(Tensor.FromArray(mean, runningMean.Shape));
        runningVar.CopyFrom(Tensor.FromArray(variance, runningVar.Shape));

        var perChannel = new int[input.Rank];
        Array.Fill(perChannel, 1);
        perChannel[channelAxis] = channels;
        Tensor y = normalized * Tensor.FromArray(r, perChannel).To(input.DType) + Tensor.FromArray(d, perChannel).To(input.DType);
        if (weight is not null) y *= weight.Reshape(perChannel);
        if (bias is not null) y += bias.Reshape(perChannel);
        return y;
    }
}
