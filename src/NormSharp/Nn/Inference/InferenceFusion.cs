namespace NormSharp.Nn;

/// <summary>
/// Builds an inference copy of a network in evaluation mode, with evaluation-mode BatchNorm folded into neighbouring
/// convolutions and fully connected layers (<see cref="BatchNormFolding"/>) and ReLU fused into their output
/// (<see cref="FusedLayer"/>): fewer passes over the activations and fewer tensors, the same outputs up to rounding.
/// <see cref="NormSharp.Training.Model.Evaluate"/> and <see cref="NormSharp.Training.Model.Predict"/> run through it.
/// </summary>
/// <remarks>
/// Within each <see cref="Sequential"/> (nested ones included), read left to right:
/// <list type="bullet">
/// <item><c>Conv2d → BatchNorm2d → ReLU</c>, <c>Conv2d → BatchNorm2d</c>, <c>Conv2d → ReLU</c> and <c>Conv2d</c> become
/// one <see cref="FusedConv2d"/>, except that a ReLU followed by a <see cref="MaxPool2d"/> is left to run with the
/// pooling (which <see cref="Sequential"/> does in one pass when no gradient is recorded: the pooling of four times fewer
/// values floored at zero);</item>
/// <item><c>Linear → BatchNorm1d → ReLU</c>, <c>Linear → BatchNorm1d</c>, <c>Linear → ReLU</c> and <c>Linear</c> become
/// one <see cref="FusedLinear"/>;</item>
/// <item>a BatchNorm1d not folded into the layer before it (e.g. after a ReLU, as in the seed CNN's
/// <c>Dense(128, relu) → BatchNormalization → Dense(10)</c>) and directly followed by a Linear is folded forward into
/// that Linear (<see cref="BatchNormFolding.FoldIntoFollowing(Tensor, Tensor?, BatchNorm)"/>), which then fuses as above.</item>
/// </list>
/// Keras's <see cref="KerasBatchNormalization"/> folds like BatchNorm2d with axis 1 (or −3) after a convolution and
/// like BatchNorm1d with axis 1 (or −1) next to a Linear; a BatchNorm without running statistics never folds. A fused
/// layer that absorbed a BatchNorm takes batched inputs only ((N, C, H, W) or (N, features)), the layout in which the
/// BatchNorm's channel axis is axis 1. Every other module is kept as is.
/// <para>Sharing: fused layers own new weight and bias tensors (folded, or copied when nothing was folded), so
/// training the original afterwards leaves the copy unchanged. Modules kept as is (pooling, activations other than a
/// fused ReLU, unfolded normalization, containers other than <see cref="Sequential"/>) are the original instances,
/// not copies. Folding reads every weight once, which costs far less than one forward pass of a batch, so callers may
/// rebuild the copy whenever the weights may have changed.</para>
/// </remarks>
public static class InferenceFusion
{
    /// <summary>The inference copy of <paramref name="network"/> (a new <see cref="Sequential"/> for a Sequential, a
    /// fused layer for a lone Conv2d or Linear, otherwise the module itself); see the class remarks. The network and
    /// all its modules must be in evaluation mode.</summary>
    public static Module Fuse(Module network) => Fuse(network, transient: false);

    /// <summary><see cref="Fuse(Module)"/>; with <paramref name="transient"/>, a copy for one call that ends before
    /// the original can change and before the current <see cref="TensorScope"/> does, as Model.Predict and
    /// Model.Evaluate use it (they refuse to run beside Fit, and rebuild the copy on every call): folded weights come
    /// from the scope's pool and a layer that folds nothing shares the original's weight and bias. Fresh tensors, as
    /// the public overload makes, were new large-object memory on every call, and their page faults made most of the
    /// fusion's time (seed CNN: 3-5 ms a call on a loaded 2-core Zen 5, against 0.3 ms with the memory reused).</summary>
    internal static Module Fuse(Module network, bool transient)
    {
        ArgumentNullException.ThrowIfNull(network);
        var training = network.NamedModules().Where(m => m.Module.IsTraining).ToList();
        if (training.Count > 0)
        {
            // Name a layer rather than a container when one is in training mode.
            var (path, module) = training.FirstOrDefault(m => !m.Module.NamedChildren().Any(), training[0]);
            string where = path.Length == 0 ? "the network" : $"layer '{path}'";
            string what = module.NamedChildren().Any() ? module.GetType().Name : module.ToString();
            throw new ArgumentException($"InferenceFusion.Fuse: {where}, {what}, is in training mode; call Eval() on the network first (fusion folds BatchNorm's running statistics, which only evaluation mode uses).", nameof(network));
        }
        Module fused = network switch
        {
            _ when IsPlainSequential(network) => new Sequential(FuseLayers(((Sequential)network).Layers, transient).ToArray()),
            Conv2d or Linear => FuseLayers(new[] { network }, transient)[0],
            _ => network,
        };
        return fused.Eval();
    }

    private static List<Module> FuseLayers(IReadOnlyList<Module> layers, bool transient)
    {
        var fused = new List<Module>();
        int i = 0;
        while (i < layers.Count)
        {
            Module layer = layers[i];
            if (layer is Conv2d) i = FuseConvolution(layers, i, fused, transient);
            else if (layer is Linear) i = FuseLinear(layers, i, i, fused, transient);
            else if (layer is BatchNorm bn && At(layers, i + 1) is Linear next && FoldsOverFeatures(bn, next.InFeatures, next.Weight.DType))
                i = FuseLinear(layers, i, i + 1, fused, transient);
            else
            {
                fused.Add(IsPlainSequential(layer) ? new Sequential(FuseLayers(((Sequential)layer).Layers, transient).ToArray()) : layer);
                i++;
            }
        }
        return fused;
    }

    /// <summary>Fuses the Conv2d at <paramref name="start"/> with a following BatchNorm and ReLU; returns the index
    /// after the last layer used.</summary>
    private static int FuseConvolution(IReadOnlyList<Module> layers, int start, List<Module> fused, bool transient)
    {
        var conv = (Conv2d)layers[start];
        int next = start + 1;
        Tensor weight;
        Tensor? bias;
        bool foldsBatchNorm = At(layers, next) is BatchNorm bn && FoldsAfterConvolution(bn, conv);
        if (foldsBatchNorm) (weight, bias) = BatchNormFolding.Fold(conv.Weight, conv.Bias, (BatchNorm)layers[next++], scoped: transient);
        else (weight, bias) = transient ? (conv.Weight, conv.Bias) : (Copy(conv.Weight), CopyOrNull(conv.Bias));
        // A ReLU followed by a max pooling stays for the Sequential to run with the pooling, on a quarter of the values.
        bool relu = At(layers, next) is ReLU && At(layers, next + 1) is not MaxPool2d;
        if (relu) next++;
        fused.Add(new FusedConv2d(weight, bias, conv.Stride, conv.Padding, conv.Dilation, relu, foldsBatchNorm, Chain(layers, start, next)));
        return next;
    }

    /// <summary>Fuses the Linear at <paramref name="linearAt"/> with the BatchNorm before it (when
    /// <paramref name="start"/> is one earlier), a following BatchNorm and a ReLU; returns the index after the last
    /// layer used.</summary>
    private static int FuseLinear(IReadOnlyList<Module> layers, int start, int linearAt, List<Module> fused, bool transient)
    {
        var linear = (Linear)layers[linearAt];
        bool foldsBatchNorm = start < linearAt;
        var (weight, bias) = foldsBatchNorm
            ? BatchNormFolding.FoldIntoFollowing(linear.Weight, linear.Bias, (BatchNorm)layers[start], scoped: transient)
            : transient ? (linear.Weight, linear.Bias) : (Copy(linear.Weight), CopyOrNull(linear.Bias));
        int next = linearAt + 1;
        if (At(layers, next) is BatchNorm after && FoldsOverFeatures(after, linear.OutFeatures, linear.Weight.DType))
        {
            (weight, bias) = BatchNormFolding.Fold(weight, bias, after, scoped: transient);
            foldsBatchNorm = true;
            next++;
        }
        bool relu = At(layers, next) is ReLU;
        if (relu) next++;
        fused.Add(new FusedLinear(weight, bias, relu, foldsBatchNorm, Chain(layers, start, next)));
        return next;
    }

    /// <summary>Whether <paramref name="bn"/> normalizes the channels of <paramref name="conv"/>'s (N, C, H, W) output
    /// with running statistics.</summary>
    private static bool FoldsAfterConvolution(BatchNorm bn, Conv2d conv) =>
        bn is BatchNorm2d or BatchRenorm2d or GhostBatchNorm2d or KerasBatchNormalization { Axis: 1 or -3 } && Foldable(bn, conv.OutChannels, conv.Weight.DType);

    /// <summary>Whether <paramref name="bn"/> normalizes the <paramref name="features"/> of an (N, features) input with
    /// running statistics.</summary>
    private static bool FoldsOverFeatures(BatchNorm bn, int features, DType dtype) =>
        bn is BatchNorm1d or BatchRenorm1d or GhostBatchNorm1d or KerasBatchNormalization { Axis: 1 or -1 } && Foldable(bn, features, dtype);

    private static bool Foldable(BatchNorm bn, int channels, DType dtype) =>
        bn.TrackRunningStats && bn.NumFeatures == channels && bn.RunningMean!.DType == dtype;

    private static bool IsPlainSequential(Module module) => module.GetType() == typeof(Sequential);

    private static Module? At(IReadOnlyList<Module> layers, int index) => index < layers.Count ? layers[index] : null;

    private static string Chain(IReadOnlyList<Module> layers, int start, int end) =>
        string.Join(" → ", Enumerable.Range(start, end - start).Select(i => layers[i].GetType().Name));

    private static Tensor Copy(Tensor source)
    {
        Tensor copy = Tensor.Allocate(source.DType, source.Dims, clear: false, scoped: false);
        copy.CopyFrom(source);
        return copy;
    }

    private static Tensor? CopyOrNull(Tensor? source) => source is null ? null : Copy(source);
}
