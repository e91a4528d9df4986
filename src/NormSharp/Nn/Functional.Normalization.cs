using System.Buffers;
using System.Runtime.CompilerServices;
using NormSharp.Autograd;
using NormSharp.Kernels;

namespace NormSharp.Nn;

// The normalization family as functions (PyTorch's F.batch_norm, F.layer_norm, F.group_norm, F.instance_norm,
// F.rms_norm). Each checks its arguments, picks a NormalizationLayout (which axes hold the statistics) and calls one
// shared core: a fused kernel forward and a hand-written backward recorded on the tape.
public static partial class Functional
{
    /// <summary>
    /// Batch normalization over the channel axis 1 of (N, C, *) (Ioffe &amp; Szegedy 2015):
    /// y = (x − μ_c)/√(σ²_c + ε)·γ_c + β_c. With <paramref name="training"/>, μ and σ² are the batch mean and the
    /// biased batch variance, and given running buffers are updated in place as
    /// running ← (1 − momentum)·running + momentum·batch, with the unbiased variance n/(n−1)·σ² for the running
    /// variance (PyTorch's convention). Otherwise the running mean and variance are used and must be given.
    /// </summary>
    public static Tensor BatchNorm(Tensor input, Tensor? runningMean, Tensor? runningVar, Tensor? weight = null, Tensor? bias = null,
        bool training = false, double momentum = 0.1, double eps = 1e-5) =>
        BatchNorm("BatchNorm", input, channelAxis: 1, runningMean, runningVar, weight, bias, training, momentum, eps, unbiasedRunningVariance: true);

    /// <summary>Layer normalization (Ba, Kiros &amp; Hinton 2016): each row of the trailing
    /// <paramref name="normalizedShape"/> elements is normalized by its own mean and biased variance, then scaled by
    /// <paramref name="weight"/> and shifted by <paramref name="bias"/> element-wise (both of that shape).</summary>
    public static Tensor LayerNorm(Tensor input, int[] normalizedShape, Tensor? weight = null, Tensor? bias = null, double eps = 1e-5) =>
        RowNorm("LayerNorm", input, normalizedShape, weight, bias, eps, centered: true);

    /// <summary>Root-mean-square normalization (Zhang &amp; Sennrich 2019): y = x/√(mean(x²) + ε)·γ over the trailing
    /// <paramref name="normalizedShape"/> elements; no mean is subtracted. A null <paramref name="eps"/> is the
    /// machine epsilon of the input's type, as in PyTorch.</summary>
    public static Tensor RmsNorm(Tensor input, int[] normalizedShape, Tensor? weight = null, double? eps = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        return RowNorm("RMSNorm", input, normalizedShape, weight, null, eps ?? MachineEpsilon(input.DType), centered: false);
    }

    /// <summary>Group normalization (Wu &amp; He 2018) of (N, C, *): the C channels of each sample fall into
    /// <paramref name="numGroups"/> groups of C/numGroups, each normalized by its own mean and biased variance;
    /// γ and β are per channel.</summary>
    public static Tensor GroupNorm(Tensor input, int numGroups, Tensor? weight = null, Tensor? bias = null, double eps = 1e-5) =>
        GroupNorm("GroupNorm", input, numGroups, weight, bias, eps);

    /// <summary>
    /// Instance normalization (Ulyanov et al. 2016) of (N, C, *): each (sample, channel) is normalized over its
    /// spatial elements. With <paramref name="useInputStatistics"/> (training, or no running statistics), those are
    /// its mean and biased variance, and given running buffers move toward the average over the batch of the
    /// per-instance mean and unbiased variance with factor <paramref name="momentum"/>; otherwise the running
    /// statistics are used.
    /// </summary>
    public static Tensor InstanceNorm(Tensor input, Tensor? runningMean = null, Tensor? runningVar = null, Tensor? weight = null, Tensor? bias = null,
        bool useInputStatistics = true, double momentum = 0.1, double eps = 1e-5) =>
        InstanceNorm("InstanceNorm", input, runningMean, runningVar, weight, bias, useInputStatistics, momentum, eps);

    internal static Tensor BatchNorm(string who, Tensor input, int channelAxis, Tensor? runningMean, Tensor? runningVar, Tensor? weight, Tensor? bias,
        bool training, double momentum, double eps, bool unbiasedRunningVariance)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank < 2)
            throw new ArgumentException($"{who}: expected an input with a batch and a channel axis (N, C, *), got shape {ShapeUtil.Format(input.Dims)}.");
        int channels = input.Dims[channelAxis];
        CheckPerChannel(who, channels, weight, bias);
        CheckRunningStatistics(who, channels, runningMean, runningVar, required: !training);
        var plan = new NormalizationPlan(NormalizationLayout.ChannelAxis(input.Dims, channelAxis), Centered: true, ElementwiseAffine: false);
        if (!training) return NormalizeWithRunningStatistics(who, input, plan, weight, bias, runningMean!, runningVar!, eps);
        if (plan.Layout.GroupSize <= 1)
            throw new ArgumentException($"{who}: Expected more than 1 value per channel when training, got input size {ShapeUtil.Format(input.Dims)}.");
        Tensor y = NormalizeWithBatchStatistics(who, input, plan, eps, weight, bias, out Tensor statistics);
        if (runningMean is not null) UpdateRunningStatistics(runningMean, runningVar!, statistics, plan.Layout, momentum, unbiasedRunningVariance);
        return y;
    }

    internal static Tensor GroupNorm(string who, Tensor input, int numGroups, Tensor? weight, Tensor? bias, double eps)
    {
        var (n, c, s) = ChannelShape(who, input);
        if (numGroups <= 0 || c % numGroups != 0)
            throw new ArgumentException($"{who}: {c} channels cannot be split into {numGroups} groups, got input shape {ShapeUtil.Format(input.Dims)}.");
        CheckPerChannel(who, c, weight, bias);
        if (input.Length == 0) return Tensor.Allocate(input.DType, input.Dims);
        var plan = new NormalizationPlan(NormalizationLayout.ChannelGroups(n, c, numGroups, s), Centered: true, ElementwiseAffine: false);
        return NormalizeWithBatchStatistics(who, input, plan, eps, weight, bias, out _);
    }

    internal static Tensor InstanceNorm(string who, Tensor input, Tensor? runningMean, Tensor? runningVar, Tensor? weight, Tensor? bias,
        bool useInputStatistics, double momentum, double eps)
    {
        var (n, c, s) = ChannelShape(who, input);
        CheckPerChannel(who, c, weight, bias);
        CheckRunningStatistics(who, c, runningMean, runningVar, required: !useInputStatistics);
        var plan = new NormalizationPlan(NormalizationLayout.ChannelGroups(n, c, c, s), Centered: true, ElementwiseAffine: false);
        if (!useInputStatistics) return NormalizeWithRunningStatistics(who, input, plan, weight, bias, runningMean!, runningVar!, eps);
        if (s <= 1)
            throw new ArgumentException($"{who}: Expected more than 1 spatial element when training, got input size {ShapeUtil.Format(input.Dims)}.");
        Tensor y = NormalizeWithBatchStatistics(who, input, plan, eps, weight, bias, out Tensor statistics);
        if (runningMean is not null) UpdateRunningStatistics(runningMean, runningVar!, statistics, plan.Layout, momentum, unbiased: true);
        return y;
    }

    internal static Tensor RowNorm(string who, Tensor input, int[] normalizedShape, Tensor? weight, Tensor? bias, double eps, bool centered)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(normalizedShape);
        int k = normalizedShape.Length;
        if (k == 0 || input.Rank < k || !input.Dims.AsSpan(input.Rank - k).SequenceEqual(normalizedShape))
            throw new ArgumentException($"{who}: expected an input of shape (*, {string.Join(", ", normalizedShape)}), got {ShapeUtil.Format(input.Dims)}.");
        foreach (Tensor? p in new[] { weight, bias })
            if (p is not null && !ShapeUtil.SameShape(p.Dims, normalizedShape))
                throw new ArgumentException($"{who}: weight and bias must have the normalized shape {ShapeUtil.Format(normalizedShape)}, got {ShapeUtil.Format(p.Dims)}.");
        int rowLength = ShapeUtil.Product(normalizedShape);
        if (input.Length == 0) return Tensor.Allocate(input.DType, input.Dims);
        var plan = new NormalizationPlan(NormalizationLayout.Rows(input.Length / rowLength, rowLength), centered, ElementwiseAffine: weight is not null || bias is not null);
        return NormalizeWithBatchStatistics(who, input, plan, eps, weight, bias, out _);
    }

    /// <summary>Normalizes with statistics computed from the input. <paramref name="statistics"/> is a float64
    /// (3, groups) tensor: mean, biased variance (mean square when not centred) and 1/√(variance + ε).</summary>
    private static Tensor NormalizeWithBatchStatistics(string who, Tensor input, NormalizationPlan plan, double eps, Tensor? weight, Tensor? bias, out Tensor statistics)
    {
        CheckSameType(who, input, weight, bias);
        Tensor x = input.Contiguous();
        Tensor y = Tensor.Allocate(input.DType, input.Dims, clear: false);
        statistics = Tensor.Allocate(DType.Float64, new[] { 3, plan.Layout.Groups }, clear: false);
        GroupStatistics stats = Split(statistics);
        if (x.DType == DType.Float32)
            NormalizationKernels.ForwardTraining(x.AsArraySegment<float>(), y.AsArraySegment<float>(), plan, eps, MemoryOf<float>(weight), MemoryOf<float>(bias), stats);
        else
            NormalizationKernels.ForwardTraining(x.AsArraySegment<double>(), y.AsArraySegment<double>(), plan, eps, MemoryOf<double>(weight), MemoryOf<double>(bias), stats);
        RecordNormalization(who, input, x, y, plan, statisticsFromBatch: true, weight, bias, statistics);
        return y;
    }

    /// <summary>Normalizes with the running statistics (evaluation mode): each group uses its channel's running
    /// mean and 1/√(running variance + ε), which do not depend on the input.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static Tensor NormalizeWithRunningStatistics(string who, Tensor input, NormalizationPlan plan, Tensor? weight, Tensor? bias,
        Tensor runningMean, Tensor runningVar, double eps)
    {
        CheckSameType(who, input, weight, bias, runningMean, runningVar);
        NormalizationLayout layout = plan.Layout;
        Tensor x = input.Contiguous();
        Tensor y = Tensor.Allocate(input.DType, input.Dims, clear: false);
        Tensor statistics = Tensor.Allocate(DType.Float64, new[] { 3, layout.Groups }, clear: false);
        GroupStatistics stats = Split(statistics);
        Tensor mean = runningMean.Contiguous(), variance = runningVar.Contiguous();
        Span<double> groupMean = stats.Mean.Span, groupVariance = stats.Variance.Span, groupInvStd = stats.InvStd.Span;
        for (int g = 0; g < layout.Groups; g++)
        {
            int channel = g % mean.Length;
            groupMean[g] = ValueAt(mean, channel);
            groupVariance[g] = ValueAt(variance, channel);
            groupInvStd[g] = 1 / Math.Sqrt(groupVariance[g] + eps);
        }
        if (x.DType == DType.Float32)
            NormalizationKernels.ForwardWithStatistics(x.AsArraySegment<float>(), y.AsArraySegment<float>(), plan, MemoryOf<float>(weight), MemoryOf<float>(bias), stats);
        else
            NormalizationKernels.ForwardWithStatistics(x.AsArraySegment<double>(), y.AsArraySegment<double>(), plan, MemoryOf<double>(weight), MemoryOf<double>(bias), stats);
        RecordNormalization(who, input, x, y, plan, statisticsFromBatch: false, weight, bias, statistics);
        return y;
    }

    /// <summary>Records the backward pass: dx, dγ, dβ from the kernels' closed form.</summary>
    private static void RecordNormalization(string who, Tensor input, Tensor x, Tensor y, NormalizationPlan plan, bool statisticsFromBatch,
        Tensor? weight, Tensor? bias, Tensor statistics)
    {
        var inputs = new List<Tensor> { input };
        if (weight is not null) inputs.Add(weight);
        if (bias is not null) inputs.Add(bias);
        AutogradEngine.Record(y, who, inputs.ToArray(), dy =>
        {
            Tensor g = dy.Contiguous();
            Tensor? dx = input.RequiresGrad ? Tensor.Allocate(input.DType, input.Dims, clear: false) : null;
            bool wantWeight = weight is { RequiresGrad: true }, wantBias = bias is { RequiresGrad: true };
            int channels = (weight ?? bias)?.Length ?? 0;
            double[] gradients = BufferPool<double>.Shared.Rent(2 * channels);
            Span<double> gradWeight = wantWeight ? gradients.AsSpan(0, channels) : default;
            Span<double> gradBias = wantBias ? gradients.AsSpan(channels, channels) : default;
            if (x.DType == DType.Float32)
                NormalizationKernels.Backward(x.AsArraySegment<float>(), g.AsArraySegment<float>(), dx is null ? default : dx.AsArraySegment<float>(), plan,
                    statisticsFromBatch, MemoryOf<float>(weight), Split(statistics), gradWeight, gradBias);
            else
                NormalizationKernels.Backward(x.AsArraySegment<double>(), g.AsArraySegment<double>(), dx is null ? default : dx.AsArraySegment<double>(), plan,
                    statisticsFromBatch, MemoryOf<double>(weight), Split(statistics), gradWeight, gradBias);
            var grads = new List<Tensor?> { dx };
            if (weight is not null) grads.Add(wantWeight ? FromDoubles(gradWeight, weight) : null);
            if (bias is not null) grads.Add(wantBias ? FromDoubles(gradBias, bias) : null);
            BufferPool<double>.Shared.Return(gradients);
            return grads.ToArray();
        });
    }

    /// <summary>running ← (1 − momentum)·running + momentum·batch per channel. The batch value of a channel is the
    /// average over its groups (one for BatchNorm, one per sample for InstanceNorm); the variance is multiplied by
    /// n/(n − 1) when <paramref name="unbiased"/> (PyTorch) and used as is otherwise (Keras).</summary>
    private static void UpdateRunningStatistics(Tensor runningMean, Tensor runningVar, Tensor statistics, NormalizationLayout layout, double momentum, bool unbiased)
    {
        GroupStatistics stats = Split(statistics);
        int channels = runningMean.Length, groupsPerChannel = layout.Groups / channels;
        double n = layout.GroupSize, correction = unbiased ? n / (n - 1) : 1;
        runningMean.RequireContiguous(nameof(UpdateRunningStatistics));
        runningVar.RequireContiguous(nameof(UpdateRunningStatistics));
        for (int c = 0; c < channels; c++)
        {
            double batchMean = 0, batchVariance = 0;
            for (int g = c; g < layout.Groups; g += channels)
            {
                batchMean += stats.Mean.Span[g];
                batchVariance += stats.Variance.Span[g] * correction;
            }
            SetValueAt(runningMean, c, (1 - momentum) * ValueAt(runningMean, c) + momentum * batchMean / groupsPerChannel);
            SetValueAt(runningVar, c, (1 - momentum) * ValueAt(runningVar, c) + momentum * batchVariance / groupsPerChannel);
        }
    }

    /// <summary>Element <paramref name="i"/> of a contiguous vector as float64; reads the running statistics in place
    /// rather than copying them to an array on every call.</summary>
    private static double ValueAt(Tensor vector, int i) => vector.DType == DType.Float64 ? vector.SpanD[i] : vector.SpanF[i];

    /// <summary>Writes <paramref name="value"/>, rounded to the vector's element type, to element <paramref name="i"/>.</summary>
    private static void SetValueAt(Tensor vector, int i, double value)
    {
        if (vector.DType == DType.Float64) vector.SpanD[i] = value;
        else vector.SpanF[i] = (float)value;
    }

    private static GroupStatistics Split(Tensor statistics)
    {
        Memory<double> all = statistics.AsArraySegment<double>();
        int groups = statistics.Dims[1];
        return new GroupStatistics(all[..groups], all.Slice(groups, groups), all.Slice(2 * groups, groups));
    }

    private static ReadOnlyMemory<T> MemoryOf<T>(Tensor? t) where T : unmanaged => t is null ? default : t.Contiguous().AsArraySegment<T>();

    private static Tensor FromDoubles(ReadOnlySpan<double> values, Tensor like)
    {
        Tensor t = Tensor.Allocate(like.DType, like.Dims, clear: false);
        if (like.DType == DType.Float64) values.CopyTo(t.SpanD);
        else for (int i = 0; i < values.Length; i++) t.SpanF[i] = (float)values[i];
        return t;
    }

    /// <summary>(N, C, spatial product) of an (N, C, *) input.</summary>
    private static (int Batch, int Channels, int Spatial) ChannelShape(string who, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank < 2)
            throw new ArgumentException($"{who}: expected an input of shape (N, C, *), got {ShapeUtil.Format(input.Dims)}.");
        return (input.Dims[0], input.Dims[1], ShapeUtil.Product(input.Dims.AsSpan(2)));
    }

    private static void CheckPerChannel(string who, int channels, Tensor? weight, Tensor? bias)
    {
        foreach (Tensor? p in new[] { weight, bias })
            if (p is not null && (p.Rank != 1 || p.Length != channels))
                throw new ArgumentException($"{who}: weight and bias must have shape ({channels},) for {channels} channels, got {ShapeUtil.Format(p.Dims)}.");
    }

    private static void CheckRunningStatistics(string who, int channels, Tensor? runningMean, Tensor? runningVar, bool required)
    {
        if ((runningMean is null) != (runningVar is null))
            throw new ArgumentException($"{who}: give both running mean and running variance, or neither.");
        if (runningMean is null)
        {
            if (required) throw new ArgumentException($"{who}: evaluation mode needs the running mean and variance (none were given).");
            return;
        }
        foreach (Tensor r in new[] { runningMean, runningVar! })
            if (r.Rank != 1 || r.Length != channels)
                throw new ArgumentException($"{who}: running statistics must have shape ({channels},) for {channels} channels, got {ShapeUtil.Format(r.Dims)}.");
    }

    /// <summary>The gap between 1 and the next larger number of the type (PyTorch's torch.finfo(dtype).eps).</summary>
    internal static double MachineEpsilon(DType dtype) => dtype == DType.Float32 ? MathF.BitIncrement(1f) - 1f : Math.BitIncrement(1.0) - 1.0;
}
