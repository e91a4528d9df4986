using System.Globalization;

namespace NormSharp.Nn;

/// <summary>How a loss combines its per-sample (or per-element) terms, as PyTorch's <c>reduction</c> argument.</summary>
public enum Reduction
{
    /// <summary>The mean over the terms (over the non-ignored samples for class-index targets); the default.</summary>
    Mean,
    /// <summary>The sum of the terms.</summary>
    Sum,
    /// <summary>No reduction: one loss per sample (class losses) or per element (element-wise losses).</summary>
    None,
}

/// <summary>
/// The base of the loss objects: a criterion comparing an input with a target, configured once and called per batch
/// (PyTorch's <c>nn.*Loss</c> modules). Losses hold no parameters, so they are not <see cref="Module"/>s; each
/// forwards to the fused operation in <see cref="Functional"/>, and errors name the loss with its arguments.
/// </summary>
public abstract class Loss
{
    /// <summary>Sets the reduction.</summary>
    protected Loss(Reduction reduction)
    {
        if (!Enum.IsDefined(reduction))
            throw new ArgumentOutOfRangeException(nameof(reduction), $"{GetType().Name}: unknown reduction {(int)reduction}.");
        Reduction = reduction;
    }

    /// <summary>How the terms are combined.</summary>
    public Reduction Reduction { get; }

    /// <summary>The loss of <paramref name="input"/> against <paramref name="target"/>: a scalar tensor unless the
    /// reduction is <see cref="Reduction.None"/>.</summary>
    public abstract Tensor Forward(Tensor input, Tensor target);

    /// <summary>The arguments shown by <see cref="ToString"/>, PyTorch style.</summary>
    protected virtual string ExtraRepresentation => "reduction=" + Reduction.ToString().ToLowerInvariant();

    /// <summary>The loss's name and arguments, e.g. <c>CrossEntropyLoss(reduction=mean, label_smoothing=0.1)</c>.</summary>
    public override string ToString() => $"{GetType().Name}({ExtraRepresentation})";
}

/// <summary>Cross-entropy on logits (PyTorch's <c>nn.CrossEntropyLoss</c>): log-softmax and negative log-likelihood
/// fused, with class-index targets (an int[] or a tensor of whole numbers) or probability targets (a tensor of the
/// input's shape). See <see cref="Functional.CrossEntropy(Tensor, int[], Reduction, double, int)"/>.</summary>
public sealed class CrossEntropyLoss : Loss
{
    /// <summary>Creates the loss; <paramref name="labelSmoothing"/> ε in [0, 1] mixes ε/C into every target class, and
    /// samples whose target is <paramref name="ignoreIndex"/> are left out.</summary>
    public CrossEntropyLoss(Reduction reduction = Reduction.Mean, double labelSmoothing = 0, int ignoreIndex = -100) : base(reduction)
    {
        Functional.CheckLabelSmoothing(labelSmoothing, "CrossEntropyLoss");
        LabelSmoothing = labelSmoothing;
        IgnoreIndex = ignoreIndex;
    }

    /// <summary>The label-smoothing amount ε.</summary>
    public double LabelSmoothing { get; }

    /// <summary>The class index that marks a sample to leave out.</summary>
    public int IgnoreIndex { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input, Tensor target) => Functional.CrossEntropy(input, target, Reduction, LabelSmoothing, IgnoreIndex, ToString());

    /// <summary>The loss of logits <paramref name="input"/> against class indices, one per sample (and position).</summary>
    public Tensor Forward(Tensor input, int[] target) => Functional.ClassIndexLoss(input, target, Reduction, LabelSmoothing, IgnoreIndex, fromLogits: true, ToString());

    /// <inheritdoc/>
    protected override string ExtraRepresentation => base.ExtraRepresentation
        + (LabelSmoothing != 0 ? ", label_smoothing=" + LabelSmoothing.ToString(CultureInfo.InvariantCulture) : "")
        + (IgnoreIndex != -100 ? ", ignore_index=" + IgnoreIndex.ToString(CultureInfo.InvariantCulture) : "");
}

/// <summary>Negative log-likelihood of class indices given log-probabilities (PyTorch's <c>nn.NLLLoss</c>); use after
/// <see cref="LogSoftmax"/>.</summary>
public sealed class NLLLoss : Loss
{
    /// <summary>Creates the loss; samples whose target is <paramref name="ignoreIndex"/> are left out.</summary>
    public NLLLoss(Reduction reduction = Reduction.Mean, int ignoreIndex = -100) : base(reduction) => IgnoreIndex = ignoreIndex;

    /// <summary>The class index that marks a sample to leave out.</summary>
    public int IgnoreIndex { get; }

    /// <summary>The loss against class indices held as whole numbers in a tensor of the input's shape without the class axis.</summary>
    public override Tensor Forward(Tensor input, Tensor target) => Functional.NllLoss(input, target, Reduction, IgnoreIndex, ToString());

    /// <summary>The loss against class indices, one per sample (and position).</summary>
    public Tensor Forward(Tensor input, int[] target) => Functional.ClassIndexLoss(input, target, Reduction, 0, IgnoreIndex, fromLogits: false, ToString());

    /// <inheritdoc/>
    protected override string ExtraRepresentation => base.ExtraRepresentation
        + (IgnoreIndex != -100 ? ", ignore_index=" + IgnoreIndex.ToString(CultureInfo.InvariantCulture) : "");
}

/// <summary>Binary cross-entropy on probabilities in [0, 1] (PyTorch's <c>nn.BCELoss</c>), logs clamped at −100. Prefer
/// <see cref="BCEWithLogitsLoss"/> on raw scores: it is the same loss without the sigmoid's rounding.</summary>
public sealed class BCELoss : Loss
{
    /// <summary>Creates the loss.</summary>
    public BCELoss(Reduction reduction = Reduction.Mean) : base(reduction) { }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input, Tensor target) => Functional.BinaryCrossEntropy(input, target, Reduction, ToString());
}

/// <summary>Sigmoid and binary cross-entropy fused, on logits (PyTorch's <c>nn.BCEWithLogitsLoss</c>), computed as
/// max(x, 0) − x·y + log(1 + e^−|x|) so that large logits neither overflow nor lose the loss to rounding.</summary>
public sealed class BCEWithLogitsLoss : Loss
{
    /// <summary>Creates the loss.</summary>
    public BCEWithLogitsLoss(Reduction reduction = Reduction.Mean) : base(reduction) { }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input, Tensor target) => Functional.BinaryCrossEntropyWithLogits(input, target, Reduction, ToString());
}

/// <summary>Mean squared error (x − y)² (PyTorch's <c>nn.MSELoss</c>); input and target must have the same shape.</summary>
public sealed class MSELoss : Loss
{
    /// <summary>Creates the loss.</summary>
    public MSELoss(Reduction reduction = Reduction.Mean) : base(reduction) { }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input, Tensor target) => Functional.MseLoss(input, target, Reduction, ToString());
}
