using System.Globalization;
using NormSharp.Nn;

namespace NormSharp.Keras;

/// <summary>
/// A Keras classification loss with Keras's label convention, given to <c>Model.Compile</c>
/// by name or as an object: <see cref="CategoricalCrossentropy"/> takes one-hot rows (N, classes), and
/// <see cref="SparseCategoricalCrossentropy"/> integer class labels (N). With <see cref="FromLogits"/> false (Keras's
/// default) the model's outputs are probabilities from a final softmax, and the loss is computed from the logits
/// before that softmax, as TF-Keras does for <c>Dense(..., activation="softmax")</c>: the same value without the
/// round-off of log(softmax). With true, the outputs themselves are the logits.
/// </summary>
public abstract class KerasLoss
{
    private protected KerasLoss(bool fromLogits, double labelSmoothing)
    {
        Functional.CheckLabelSmoothing(labelSmoothing, GetType().Name);
        FromLogits = fromLogits;
        LabelSmoothing = labelSmoothing;
    }

    /// <summary>The loss names <see cref="FromName"/> knows (Keras's string identifiers).</summary>
    public static IReadOnlyList<string> Names { get; } = new[] { "categorical_crossentropy", "sparse_categorical_crossentropy" };

    /// <summary>Keras's name of the loss.</summary>
    public abstract string Name { get; }

    /// <summary>Whether the model outputs logits (true) or softmax probabilities (false, Keras's default).</summary>
    public bool FromLogits { get; }

    /// <summary>Label smoothing ε: the target becomes (1 − ε)·one-hot + ε/classes (Szegedy et al. 2016, §7).</summary>
    public double LabelSmoothing { get; }

    /// <summary>Whether targets are integer class labels (sparse) rather than one-hot rows.</summary>
    public abstract bool TakesClassLabels { get; }

    /// <summary>The loss Keras builds for <c>loss="<paramref name="name"/>"</c>, with Keras's defaults.</summary>
    public static KerasLoss FromName(string name) => name switch
    {
        "categorical_crossentropy" => new CategoricalCrossentropy(),
        "sparse_categorical_crossentropy" => new SparseCategoricalCrossentropy(),
        _ => throw new ArgumentException($"Unknown Keras loss '{name}'; valid names: {string.Join(", ", Names)}.", nameof(name)),
    };

    /// <summary>The class index of every sample, read from <paramref name="targets"/> in this loss's convention:
    /// one-hot rows (N, classes) for the categorical loss, whole numbers ≥ 0 of shape (N) or (N, 1) for the sparse one
    /// (the loss then checks them against the number of classes). Anything else throws, saying which convention was
    /// expected and which loss takes the other.</summary>
    public int[] ClassLabels(Tensor targets)
    {
        ArgumentNullException.ThrowIfNull(targets);
        double[] values = targets.ToDoubleArray();
        return TakesClassLabels ? SparseLabels(targets, values) : OneHotLabels(targets, values);
    }

    /// <summary>Checks that integer labels fit this loss: the sparse loss takes them; the categorical loss throws.</summary>
    public int[] ClassLabels(int[] labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (!TakesClassLabels)
            throw new ArgumentException($"{Name}: got {labels.Length} integer labels, but Keras's {Name} takes one-hot rows (N, classes). "
                + "Valid choices: give one-hot rows (LabelEncoding.OneHot, Keras's to_categorical), or compile with 'sparse_categorical_crossentropy' for integer labels.");
        return labels;
    }

    /// <summary>The mean loss of a batch from the network's <paramref name="logits"/> (the input of a final softmax,
    /// or the outputs of a network without one) and class indices.</summary>
    internal Tensor Compute(Tensor logits, int[] labels) =>
        Functional.ClassIndexLoss(logits, labels, Reduction.Mean, LabelSmoothing, ignoreIndex: -100, fromLogits: true, ToString());

    /// <summary>Keras's name and arguments, e.g. <c>categorical_crossentropy(from_logits=False, label_smoothing=0.1)</c>.</summary>
    public override string ToString() =>
        $"{Name}(from_logits={(FromLogits ? "True" : "False")}, label_smoothing={LabelSmoothing.ToString(CultureInfo.InvariantCulture)})";

    private int[] OneHotLabels(Tensor targets, double[] values)
    {
        if (targets.Rank != 2 || targets.Dims[1] < 2)
            throw new ArgumentException($"{Name}: expected one-hot rows of shape (N, classes), got {ShapeUtil.Format(targets.Dims)}. "
                + "Valid choices: one-hot rows for 'categorical_crossentropy', or integer labels (N) with 'sparse_categorical_crossentropy'.");
        int classes = targets.Dims[1];
        var labels = new int[targets.Dims[0]];
        for (int i = 0; i < labels.Length; i++)
        {
            int hot = -1;
            for (int c = 0; c < classes; c++)
            {
                double v = values[i * classes + c];
                if (v == 1 && hot < 0) hot = c;
                else if (v != 0) { hot = -2; break; }
            }
            if (hot < 0)
                throw new ArgumentException($"{Name}: row {i} of the targets is not one-hot ([{string.Join(", ", values.AsSpan(i * classes, classes).ToArray().Select(v => v.ToString(CultureInfo.InvariantCulture)))}]). "
                    + "Valid choices: rows with a single 1 and 0 elsewhere (smooth them with labelSmoothing, not in the data), or integer labels with 'sparse_categorical_crossentropy'.");
            labels[i] = hot;
        }
        return labels;
    }

    private int[] SparseLabels(Tensor targets, double[] values)
    {
        if (targets.Rank == 2 && targets.Dims[1] > 1)
            throw new ArgumentException($"{Name}: got rows of shape {ShapeUtil.Format(targets.Dims)}, which look one-hot, but Keras's {Name} takes integer labels (N). "
                + "Valid choices: integer labels for 'sparse_categorical_crossentropy', or compile with 'categorical_crossentropy' for one-hot rows.");
        if (!(targets.Rank == 1 || (targets.Rank == 2 && targets.Dims[1] == 1)))
            throw new ArgumentException($"{Name}: expected integer labels of shape (N) or (N, 1), got {ShapeUtil.Format(targets.Dims)}.");
        var labels = new int[values.Length];
        for (int i = 0; i < labels.Length; i++)
        {
            double v = values[i];
            if (v != Math.Floor(v) || v < 0 || v > int.MaxValue)
                throw new ArgumentException($"{Name}: target {v.ToString(CultureInfo.InvariantCulture)} at position {i} is not a class label (a whole number ≥ 0).");
            labels[i] = (int)v;
        }
        return labels;
    }
}

/// <summary>keras.losses.CategoricalCrossentropy: cross-entropy against one-hot rows (N, classes), −Σ_c y_c·log p_c.</summary>
public sealed class CategoricalCrossentropy(bool fromLogits = false, double labelSmoothing = 0) : KerasLoss(fromLogits, labelSmoothing)
{
    /// <inheritdoc/>
    public override string Name => "categorical_crossentropy";

    /// <inheritdoc/>
    public override bool TakesClassLabels => false;
}

/// <summary>keras.losses.SparseCategoricalCrossentropy: cross-entropy against integer class labels (N), −log p_label.
/// Like Keras's, it has no label smoothing (use <see cref="CategoricalCrossentropy"/> for that).</summary>
public sealed class SparseCategoricalCrossentropy(bool fromLogits = false) : KerasLoss(fromLogits, labelSmoothing: 0)
{
    /// <inheritdoc/>
    public override string Name => "sparse_categorical_crossentropy";

    /// <inheritdoc/>
    public override bool TakesClassLabels => true;
}
