using System.Numerics;
using System.Numerics.Tensors;
using NormSharp.Autograd;
using NormSharp.Kernels;

namespace NormSharp.Nn;

public static partial class Functional
{
    /// <summary>
    /// Cross-entropy between logits and class indices (PyTorch's <c>F.cross_entropy</c>): log-softmax over the class
    /// axis fused with the negative log-likelihood, so the backward is simply softmax − one-hot. The input is (N, C),
    /// (N, C, d1, …) or (C); <paramref name="target"/> holds one index in [0, C) per sample (and position), in row-major
    /// order, or <paramref name="ignoreIndex"/> to leave that sample out (also of the mean's count).
    /// <paramref name="labelSmoothing"/> ε replaces the one-hot target with (1 − ε)·one-hot + ε/C.
    /// </summary>
    public static Tensor CrossEntropy(Tensor input, int[] target, Reduction reduction = Reduction.Mean, double labelSmoothing = 0, int ignoreIndex = -100) =>
        ClassIndexLoss(input, target, reduction, labelSmoothing, ignoreIndex, fromLogits: true, "CrossEntropy");

    /// <summary>
    /// Cross-entropy between logits and a target tensor, which PyTorch reads in one of two ways: a target of the
    /// input's shape holds class probabilities (soft or one-hot labels; the loss of a sample is −Σ_c target_c·log
    /// softmax(x)_c and the mean divides by the number of samples), otherwise it must have the input's shape without the
    /// class axis and hold whole-number class indices, as in <see cref="CrossEntropy(Tensor, int[], Reduction, double, int)"/>.
    /// </summary>
    public static Tensor CrossEntropy(Tensor input, Tensor target, Reduction reduction = Reduction.Mean, double labelSmoothing = 0, int ignoreIndex = -100) =>
        CrossEntropy(input, target, reduction, labelSmoothing, ignoreIndex, "CrossEntropy");

    /// <summary>Negative log-likelihood of class indices given log-probabilities (PyTorch's <c>F.nll_loss</c>):
    /// −input[target] per sample; use after <see cref="LogSoftmax"/>. Shapes and <paramref name="ignoreIndex"/> as in
    /// <see cref="CrossEntropy(Tensor, int[], Reduction, double, int)"/>.</summary>
    public static Tensor NllLoss(Tensor input, int[] target, Reduction reduction = Reduction.Mean, int ignoreIndex = -100) =>
        ClassIndexLoss(input, target, reduction, 0, ignoreIndex, fromLogits: false, "NllLoss");

    /// <summary>As <see cref="NllLoss(Tensor, int[], Reduction, int)"/>, with the class indices held as whole numbers
    /// in a tensor of the input's shape without the class axis.</summary>
    public static Tensor NllLoss(Tensor input, Tensor target, Reduction reduction = Reduction.Mean, int ignoreIndex = -100) =>
        NllLoss(input, target, reduction, ignoreIndex, "NllLoss");

    /// <summary>Binary cross-entropy between probabilities and targets of the same shape (PyTorch's
    /// <c>F.binary_cross_entropy</c>): −(y·log x + (1 − y)·log(1 − x)) with the logs clamped at −100. The input must lie
    /// in [0, 1]; on logits use <see cref="BinaryCrossEntropyWithLogits(Tensor, Tensor, Reduction)"/>, which is also more accurate.</summary>
    public static Tensor BinaryCrossEntropy(Tensor input, Tensor target, Reduction reduction = Reduction.Mean) =>
        BinaryCrossEntropy(input, target, reduction, "BinaryCrossEntropy");

    /// <summary>Binary cross-entropy on logits (PyTorch's <c>F.binary_cross_entropy_with_logits</c>), sigmoid and
    /// loss fused in the overflow-free form max(x, 0) − x·y + log(1 + e^−|x|).</summary>
    public static Tensor BinaryCrossEntropyWithLogits(Tensor input, Tensor target, Reduction reduction = Reduction.Mean) =>
        BinaryCrossEntropyWithLogits(input, target, reduction, "BinaryCrossEntropyWithLogits");

    /// <summary>Squared error (x − y)² between tensors of the same shape (PyTorch's <c>F.mse_loss</c>), reduced to the
    /// mean by default.</summary>
    public static Tensor MseLoss(Tensor input, Tensor target, Reduction reduction = Reduction.Mean) =>
        MseLoss(input, target, reduction, "MseLoss");

    // ---- implementations; `who` names the caller (a function or a loss module with its arguments) in errors ------

    internal static Tensor CrossEntropy(Tensor input, Tensor target, Reduction reduction, double labelSmoothing, int ignoreIndex, string who)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(target);
        if (input.Rank >= 1 && ShapeUtil.SameShape(input.Dims, target.Dims))
            return ProbabilityCrossEntropy(input, target, reduction, labelSmoothing, who);
        return ClassIndexLoss(input, ClassIndicesOf(target, input, who, probabilitiesAllowed: true), reduction, labelSmoothing, ignoreIndex, fromLogits: true, who);
    }

    internal static Tensor NllLoss(Tensor input, Tensor target, Reduction reduction, int ignoreIndex, string who)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(target);
        return ClassIndexLoss(input, ClassIndicesOf(target, input, who, probabilitiesAllowed: false), reduction, 0, ignoreIndex, fromLogits: false, who);
    }

    internal static Tensor BinaryCrossEntropy(Tensor input, Tensor target, Reduction reduction, string who)
    {
        CheckSameShapes(input, target, who);
        Tensor x = input.Contiguous();
        double min = x.DType == DType.Float32 ? TensorPrimitives.Min<float>(x.SpanF) : TensorPrimitives.Min<double>(x.SpanD);
        double max = x.DType == DType.Float32 ? TensorPrimitives.Max<float>(x.SpanF) : TensorPrimitives.Max<double>(x.SpanD);
        if (x.Length > 0 && !(min >= 0 && max <= 1))
            throw new ArgumentException($"{who}: the input must hold probabilities in [0, 1], but its values range over [{min:G6}, {max:G6}]; apply Sigmoid first, or use the with-logits loss on the raw scores.");
        return ElementwiseLoss(input, target, reduction, who, new LossKernels.BinaryCrossEntropy<float>(), new LossKernels.BinaryCrossEntropy<double>());
    }

    internal static Tensor BinaryCrossEntropyWithLogits(Tensor input, Tensor target, Reduction reduction, string who) =>
        ElementwiseLoss(input, target, reduction, who, new LossKernels.BinaryCrossEntropyWithLogits<float>(), new LossKernels.BinaryCrossEntropyWithLogits<double>());

    internal static Tensor MseLoss(Tensor input, Tensor target, Reduction reduction, string who) =>
        ElementwiseLoss(input, target, reduction, who, new LossKernels.SquaredError<float>(), new LossKernels.SquaredError<double>());

    internal static void CheckLabelSmoothing(double labelSmoothing, string who)
    {
        if (!(labelSmoothing >= 0 && labelSmoothing <= 1))
            throw new ArgumentOutOfRangeException(nameof(labelSmoothing), $"{who}: labelSmoothing must be in [0, 1], got {labelSmoothing}.");
    }

    internal static Tensor ClassIndexLoss(Tensor input, int[] target, Reduction reduction, double labelSmoothing, int ignoreIndex, bool fromLogits, string who)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(target);
        CheckLabelSmoothing(labelSmoothing, who);
        ClassLayout layout = ClassLayoutOf(input, who);
        if (target.Length != layout.Rows)
            throw new ArgumentException($"{who}: an input of shape {ShapeUtil.Format(input.Dims)} needs {layout.Rows} class indices (target shape {ShapeUtil.Format(layout.RowDims)}), got {target.Length}.");
        int counted = 0;
        for (int i = 0; i < target.Length; i++)
        {
            int t = target[i];
            if (t == ignoreIndex) continue;
            if (t < 0 || t >= layout.Classes)
                throw new ArgumentOutOfRangeException(nameof(target), $"{who}: target {t} at position {i} is out of range for {layout.Classes} classes (expected 0 to {layout.Classes - 1}, or ignoreIndex {ignoreIndex}).");
            counted++;
        }
        int[] labels = (int[])target.Clone();

        Tensor x = input.Contiguous();
        // On logits over a contiguous class axis the forward keeps the softmax and each row's log-normalizer instead
        // of the log-softmax: the loss reads the logits less the normalizer, the backward the softmax, and no
        // exponential is computed twice (an exponential per element was most of the backward's time).
        bool keepSoftmax = fromLogits && layout.Inner == 1;
        Tensor? probabilities = keepSoftmax ? Tensor.Allocate(x.DType, x.Dims, clear: false) : null;
        Tensor? logNormalizers = keepSoftmax ? Tensor.Allocate(x.DType, layout.RowDims, clear: false) : null;
        if (keepSoftmax) SoftmaxRowsUnrecorded(x, probabilities!, logNormalizers!, layout);
        // Log-probabilities, or the logits when their log-normalizers are kept.
        Tensor scores = fromLogits && !keepSoftmax ? LogSoftmaxUnrecorded(x, layout) : x;
        Tensor perRow = Tensor.Allocate(x.DType, layout.RowDims, clear: false);
        if (x.DType == DType.Float32)
            LossKernels.ClassIndexForward(scores.SpanF, logNormalizers is null ? default : logNormalizers.SpanF, labels, perRow.SpanF, layout.Classes, layout.Inner, (float)labelSmoothing, ignoreIndex);
        else
            LossKernels.ClassIndexForward(scores.SpanD, logNormalizers is null ? default : logNormalizers.SpanD, labels, perRow.SpanD, layout.Classes, layout.Inner, labelSmoothing, ignoreIndex);
        Tensor loss = Reduce(perRow, reduction, counted);

        AutogradEngine.Record(loss, who, new[] { input }, g =>
        {
            Tensor upstream = Upstream(g, reduction, layout.RowDims, counted);
            Tensor dx = Tensor.Allocate(x.DType, x.Dims, clear: false);
            // Each outer index's (C, inner) block is independent, so threads take whole blocks.
            int block = layout.Classes * layout.Inner;
            Parallelism.For(layout.Outer, (start, end) =>
            {
                Range elements = (start * block)..(end * block), rows = (start * layout.Inner)..(end * layout.Inner);
                if (x.DType == DType.Float32)
                    LossKernels.ClassIndexBackward(scores.SpanF[elements], probabilities is null ? default : probabilities.SpanF[elements], labels.AsSpan(rows),
                        upstream.SpanF[rows], dx.SpanF[elements], layout.Classes, layout.Inner, (float)labelSmoothing, ignoreIndex, fromLogits);
                else
                    LossKernels.ClassIndexBackward(scores.SpanD[elements], probabilities is null ? default : probabilities.SpanD[elements], labels.AsSpan(rows),
                        upstream.SpanD[rows], dx.SpanD[elements], layout.Classes, layout.Inner, labelSmoothing, ignoreIndex, fromLogits);
            }, 2L * block);
            return new[] { dx };
        });
        return loss;
    }

    private static Tensor ProbabilityCrossEntropy(Tensor input, Tensor target, Reduction reduction, double labelSmoothing, string who)
    {
        CheckLabelSmoothing(labelSmoothing, who);
        if (target.DType != input.DType)
            throw new ArgumentException($"{who}: the input is {input.DType} but the probability target is {target.DType}; convert one with To().");
        ClassLayout layout = ClassLayoutOf(input, who);
        Tensor x = input.Contiguous(), q = target.Contiguous();
        Tensor logp = LogSoftmaxUnrecorded(x, layout);
        Tensor perRow = Tensor.Allocate(x.DType, layout.RowDims, clear: false);
        if (x.DType == DType.Float32)
            LossKernels.ProbabilityForward(logp.SpanF, q.SpanF, perRow.SpanF, layout.Classes, layout.Inner, (float)labelSmoothing);
        else
            LossKernels.ProbabilityForward(logp.SpanD, q.SpanD, perRow.SpanD, layout.Classes, layout.Inner, labelSmoothing);
        Tensor loss = Reduce(perRow, reduction, layout.Rows);

        AutogradEngine.Record(loss, who, new[] { input, target }, g =>
        {
            Tensor upstream = Upstream(g, reduction, layout.RowDims, layout.Rows);
            Tensor? dx = input.RequiresGrad ? Tensor.Allocate(x.DType, x.Dims, clear: false) : null;
            Tensor? dq = target.RequiresGrad ? Tensor.Allocate(x.DType, x.Dims, clear: false) : null;
            if (x.DType == DType.Float32)
                LossKernels.ProbabilityBackward(logp.SpanF, q.SpanF, upstream.SpanF, dx is null ? default : dx.SpanF, dq is null ? default : dq.SpanF, layout.Classes, layout.Inner, (float)labelSmoothing);
            else
                LossKernels.ProbabilityBackward(logp.SpanD, q.SpanD, upstream.SpanD, dx is null ? default : dx.SpanD, dq is null ? default : dq.SpanD, layout.Classes, layout.Inner, labelSmoothing);
            return new[] { dx, dq };
        });
        return loss;
    }

    private static Tensor ElementwiseLoss<TLoss32, TLoss64>(Tensor input, Tensor target, Reduction reduction, string who, TLoss32 loss32, TLoss64 loss64)
        where TLoss32 : struct, IElementwiseLoss<float>
        where TLoss64 : struct, IElementwiseLoss<double>
    {
        CheckSameShapes(input, target, who);
        Tensor x = input.Contiguous(), y = target.Contiguous();
        Tensor perElement = Tensor.Allocate(x.DType, x.Dims, clear: false);
        if (x.DType == DType.Float32) LossKernels.ElementwiseForward(loss32, x.SpanF, y.SpanF, perElement.SpanF);
        else LossKernels.ElementwiseForward(loss64, x.SpanD, y.SpanD, perElement.SpanD);
        Tensor loss = Reduce(perElement, reduction, x.Length);

        AutogradEngine.Record(loss, who, new[] { input, target }, g =>
        {
            Tensor upstream = Upstream(g, reduction, x.Dims, x.Length);
            Tensor? dx = input.RequiresGrad ? Tensor.Allocate(x.DType, x.Dims, clear: false) : null;
            Tensor? dy = target.RequiresGrad ? Tensor.Allocate(x.DType, x.Dims, clear: false) : null;
            if (x.DType == DType.Float32)
                LossKernels.ElementwiseBackward(loss32, x.SpanF, y.SpanF, upstream.SpanF, dx is null ? default : dx.SpanF, dy is null ? default : dy.SpanF);
            else
                LossKernels.ElementwiseBackward(loss64, x.SpanD, y.SpanD, upstream.SpanD, dx is null ? default : dx.SpanD, dy is null ? default : dy.SpanD);
            return new[] { dx, dy };
        });
        return loss;
    }

    private static void CheckSameShapes(Tensor input, Tensor target, string who)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(target);
        if (!ShapeUtil.SameShape(input.Dims, target.Dims))
            throw new ArgumentException($"{who}: the target must have the input's shape {ShapeUtil.Format(input.Dims)}, got {ShapeUtil.Format(target.Dims)}.");
        if (input.DType != target.DType)
            throw new ArgumentException($"{who}: the input is {input.DType} but the target is {target.DType}; convert one with To().");
    }

    /// <summary>Where the classes lie: the input viewed as (outer, C, inner) around the class axis (axis 1, or axis 0
    /// of an unbatched (C) input), one loss term per (outer, inner) position, in a tensor of shape RowDims.</summary>
    private readonly record struct ClassLayout(int ClassAxis, int Outer, int Classes, int Inner, int[] RowDims)
    {
        public int Rows => Outer * Inner;
    }

    private static ClassLayout ClassLayoutOf(Tensor input, string who)
    {
        if (input.Rank == 0)
            throw new ArgumentException($"{who}: expected an input of shape (N, C), (N, C, d1, ...) or (C), got a scalar.");
        int classAxis = input.Rank == 1 ? 0 : 1;
        if (input.Dims[classAxis] == 0)
            throw new ArgumentException($"{who}: the input of shape {ShapeUtil.Format(input.Dims)} has no classes.");
        (int outer, int classes, int inner) = AxisLayout(input, classAxis, who);
        int[] rowDims = input.Dims.Where((_, axis) => axis != classAxis).ToArray();
        return new ClassLayout(classAxis, outer, classes, inner, rowDims);
    }

    private static Tensor LogSoftmaxUnrecorded(Tensor x, ClassLayout layout)
    {
        Tensor logp = Tensor.Allocate(x.DType, x.Dims, clear: false);
        if (x.DType == DType.Float32) SoftmaxForward<float>(x, logp, layout.Outer, layout.Classes, layout.Inner, log: true);
        else SoftmaxForward<double>(x, logp, layout.Outer, layout.Classes, layout.Inner, log: true);
        return logp;
    }

    /// <summary>The softmax over a contiguous class axis and each row's log-normalizer, not recorded; threads take
    /// whole rows.</summary>
    private static void SoftmaxRowsUnrecorded(Tensor x, Tensor probabilities, Tensor logNormalizers, ClassLayout layout)
    {
        int n = layout.Classes;
        Parallelism.For(layout.Outer, (start, end) =>
        {
            Range elements = (start * n)..(end * n);
            if (x.DType == DType.Float32) ActivationKernels.SoftmaxRows(x.SpanF[elements], probabilities.SpanF[elements], logNormalizers.SpanF[start..end], n);
            else ActivationKernels.SoftmaxRows(x.SpanD[elements], probabilities.SpanD[elements], logNormalizers.SpanD[start..end], n);
        }, workPerItem: 4L * n);
    }

    /// <summary>Reads a target tensor of whole numbers as class indices.</summary>
    private static int[] ClassIndicesOf(Tensor target, Tensor input, string who, bool probabilitiesAllowed)
    {
        ClassLayout layout = ClassLayoutOf(input, who);
        if (!ShapeUtil.SameShape(target.Dims, layout.RowDims))
        {
            string alternative = probabilitiesAllowed ? $", or probabilities of the input's shape {ShapeUtil.Format(input.Dims)}" : "";
            throw new ArgumentException($"{who}: for an input of shape {ShapeUtil.Format(input.Dims)} the target must hold class indices of shape {ShapeUtil.Format(layout.RowDims)}{alternative}; got {ShapeUtil.Format(target.Dims)}.");
        }
        double[] values = target.ToDoubleArray();
        var indices = new int[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            double v = values[i];
            if (v != Math.Floor(v) || v < int.MinValue || v > int.MaxValue)
                throw new ArgumentException($"{who}: class-index targets must be whole numbers; element {i} is {v}.");
            indices[i] = (int)v;
        }
        return indices;
    }

    /// <summary>The unreduced loss terms, their sum, or their mean over <paramref name="count"/> terms (a scalar).</summary>
    private static Tensor Reduce(Tensor terms, Reduction reduction, int count)
    {
        if (reduction == Reduction.None) return terms;
        if (reduction != Reduction.Mean && reduction != Reduction.Sum)
            throw new ArgumentOutOfRangeException(nameof(reduction), $"Unknown reduction {(int)reduction}; expected Mean, Sum or None.");
        double sum = terms.DType == DType.Float32 ? TensorPrimitives.Sum<float>(terms.SpanF) : TensorPrimitives.Sum<double>(terms.SpanD);
        return Tensor.Scalar(reduction == Reduction.Mean ? sum / count : sum, terms.DType);
    }

    /// <summary>The gradient reaching each loss term: the output gradient itself without reduction, else the scalar
    /// output gradient (divided by the count for a mean) for every term.</summary>
    private static Tensor Upstream(Tensor g, Reduction reduction, int[] termDims, int count)
    {
        if (reduction == Reduction.None) return g.Contiguous();
        double scale = reduction == Reduction.Mean ? 1.0 / count : 1.0;
        return Tensor.Full(termDims, g.Item() * scale, g.DType);
    }
}
