namespace NormSharp.Nn;

/// <summary>
/// The limits of Batch Renormalization's corrections (Ioffe 2017, Alg. 1): r is clipped to [1/rmax, rmax] and d to
/// [−dmax, dmax], and both limits start at the plain-BatchNorm values rmax = 1, dmax = 0 and are relaxed linearly
/// after a warm-up, because early in training the running averages are too poor to correct towards (§4: "rmax = 1,
/// dmax = 0 for the first 5k steps, then relaxed to reach rmax = 3 at 40k steps and dmax = 5 at 25k steps" — the
/// defaults here). The step is the layer's count of training batches (<see cref="NormBase.NumBatchesTracked"/>).
/// </summary>
/// <param name="RMax">The final limit of r, ≥ 1 (∞: no clipping).</param>
/// <param name="DMax">The final limit of d, ≥ 0 (∞: no clipping).</param>
/// <param name="WarmupSteps">Training batches with rmax = 1, dmax = 0, i.e. plain BatchNorm.</param>
/// <param name="RMaxSteps">The step at which rmax reaches <paramref name="RMax"/>, ≥ the warm-up.</param>
/// <param name="DMaxSteps">The step at which dmax reaches <paramref name="DMax"/>, ≥ the warm-up.</param>
public sealed record BatchRenormClipping(double RMax = 3, double DMax = 5, long WarmupSteps = 5000, long RMaxSteps = 40000, long DMaxSteps = 25000)
{
    /// <summary>No clipping from the first step: Keras 2's <c>renorm=True</c> without <c>renorm_clipping</c>.</summary>
    public static BatchRenormClipping Unclipped { get; } = new(double.PositiveInfinity, double.PositiveInfinity, 0, 0, 0);

    /// <summary>The limits (rmax, dmax) in force at training step <paramref name="step"/> (counted from 0).</summary>
    public (double RMax, double DMax) At(double step) => (1 + Relax(RMax - 1, step, RMaxSteps), Relax(DMax, step, DMaxSteps));

    /// <summary>Throws unless the limits and steps are valid; <paramref name="layer"/> names the layer.</summary>
    internal BatchRenormClipping Checked(string layer)
    {
        if (!(RMax >= 1) || !(DMax >= 0))
            throw new ArgumentOutOfRangeException(nameof(RMax), $"{layer}: Batch Renormalization needs rmax ≥ 1 and dmax ≥ 0, got rmax={RMax}, dmax={DMax}.");
        if (WarmupSteps < 0 || RMaxSteps < WarmupSteps || DMaxSteps < WarmupSteps)
            throw new ArgumentOutOfRangeException(nameof(WarmupSteps), $"{layer}: Batch Renormalization's steps must satisfy 0 ≤ warm-up ≤ rmax steps and dmax steps, got {WarmupSteps}, {RMaxSteps}, {DMaxSteps}.");
        return this;
    }

    /// <summary>0 during the warm-up, then a linear ramp to <paramref name="full"/> at <paramref name="endStep"/>.</summary>
    private double Relax(double full, double step, long endStep)
    {
        if (step < WarmupSteps) return 0;
        if (step >= endStep) return full;
        return full * (step - WarmupSteps) / (endStep - WarmupSteps);
    }
}
