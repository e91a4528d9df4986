using NormSharp.Nn;

namespace NormSharp.Keras;

/// <summary>
/// A Keras layer description. Unlike a module it does not know its input size until the model is built; then
/// <see cref="Build"/> turns it into NormSharp modules that take the given per-sample input shape (NCHW order: images
/// are (C, H, W), so Keras's channels-last shapes appear channels-first here).
/// </summary>
public abstract class Layer
{
    /// <summary>The modules implementing this layer for per-sample inputs of <paramref name="inputShape"/>.</summary>
    internal abstract IEnumerable<Module> Build(int[] inputShape, RandomGenerator generator);

    /// <summary>The module for a Keras activation name (<c>relu</c>, <c>sigmoid</c>, <c>tanh</c>, <c>softmax</c>,
    /// <c>leaky_relu</c>, <c>linear</c>/null → none).</summary>
    internal static Module? ActivationModule(string? name) => name switch
    {
        null or "linear" => null,
        "relu" => new ReLU(),
        "sigmoid" => new Sigmoid(),
        "tanh" => new Tanh(),
        "softmax" => new Softmax(1),
        "leaky_relu" => new LeakyReLU(0.2), // Keras's default negative slope
        _ => throw new ArgumentException($"Unknown Keras activation '{name}'; supported: relu, sigmoid, tanh, softmax, leaky_relu, linear."),
    };

    /// <summary>Keras's default initialization: Glorot-uniform kernel, zero bias.</summary>
    internal static void KerasInitialize(Tensor weight, Tensor? bias, RandomGenerator generator)
    {
        Init.XavierUniform(weight, generator: generator);
        if (bias is not null) Init.Constant(bias, 0);
    }

    internal static void RequireRank(string layer, int[] inputShape, int rank, string expected)
    {
        if (inputShape.Length != rank)
            throw new ArgumentException($"{layer}: expects per-sample inputs {expected}, got {ShapeUtil.Format(inputShape)}.");
    }
}

/// <summary>Keras's <c>Conv2D</c>: <paramref name="filters"/> output channels, a square or (h, w) kernel, padding
/// "valid" or "same", an optional activation.</summary>
public sealed class Conv2D(int filters, int kernelSize, int strides = 1, string padding = "valid", string? activation = null, bool useBias = true) : Layer
{
    internal override IEnumerable<Module> Build(int[] inputShape, RandomGenerator generator)
    {
        RequireRank("Conv2D", inputShape, 3, "(channels, height, width)");
        ConvPadding pad = padding switch
        {
            "valid" => ConvPadding.Valid,
            "same" => ConvPadding.Same,
            _ => throw new ArgumentException($"Conv2D: padding must be 'valid' or 'same', got '{padding}'."),
        };
        var conv = new Conv2d(inputShape[0], filters, kernelSize, stride: strides, padding: pad, bias: useBias, generator: generator);
        KerasInitialize(conv.Weight, conv.Bias, generator);
        yield return conv;
        if (ActivationModule(activation) is Module a) yield return a;
    }
}

/// <summary>Keras's <c>Dense</c>: a fully connected layer with an optional activation.</summary>
public sealed class Dense(int units, string? activation = null, bool useBias = true) : Layer
{
    internal override IEnumerable<Module> Build(int[] inputShape, RandomGenerator generator)
    {
        RequireRank("Dense", inputShape, 1, "(features) — add Flatten() before Dense");
        var linear = new Linear(inputShape[0], units, useBias, generator);
        KerasInitialize(linear.Weight, linear.Bias, generator);
        yield return linear;
        if (ActivationModule(activation) is Module a) yield return a;
    }
}

/// <summary>Keras's <c>Activation</c>.</summary>
public sealed class Activation(string name) : Layer
{
    internal override IEnumerable<Module> Build(int[] inputShape, RandomGenerator generator)
    {
        if (ActivationModule(name) is Module a) yield return a;
    }
}

/// <summary>Keras's <c>MaxPooling2D</c> (stride defaults to the pool size; "valid" padding).</summary>
public sealed class MaxPooling2D(int poolSize = 2, int? strides = null) : Layer
{
    internal override IEnumerable<Module> Build(int[] inputShape, RandomGenerator generator)
    {
        RequireRank("MaxPooling2D", inputShape, 3, "(channels, height, width)");
        yield return new MaxPool2d(poolSize, strides ?? poolSize);
    }
}

/// <summary>Keras's <c>Flatten</c>: (N, ...) → (N, features).</summary>
public sealed class Flatten : Layer
{
    internal override IEnumerable<Module> Build(int[] inputShape, RandomGenerator generator)
    {
        yield return new NormSharp.Nn.Flatten();
    }
}

/// <summary>Keras's <c>Dropout</c>: zeroes a fraction <paramref name="rate"/> of units in training.</summary>
public sealed class Dropout(double rate) : Layer
{
    internal override IEnumerable<Module> Build(int[] inputShape, RandomGenerator generator)
    {
        yield return new NormSharp.Nn.Dropout(rate);
    }
}

/// <summary>Keras's <c>BatchNormalization</c> (momentum 0.99 as the moving-average decay, epsilon 1e-3) over the
/// channel axis, which is axis 1 here for both images (C, H, W) and features; see <see cref="KerasBatchNormalization"/>.
/// With <paramref name="synchronized"/>, data-parallel training normalizes with the statistics of the whole batch across
/// processes (Keras's <c>synchronized=True</c>). tf.keras 2's <c>renorm</c>/<c>renorm_clipping</c> (Batch
/// Renormalization) and <c>virtual_batch_size</c> (Ghost Batch Normalization) are here too.</summary>
public sealed class BatchNormalization(double momentum = 0.99, double epsilon = 1e-3, bool center = true, bool scale = true,
    bool renorm = false, BatchRenormClipping? renormClipping = null, int? virtualBatchSize = null, bool synchronized = false) : Layer
{
    internal override IEnumerable<Module> Build(int[] inputShape, RandomGenerator generator)
    {
        if (inputShape.Length == 0) throw new ArgumentException("BatchNormalization: needs per-sample inputs with a channel axis, got a scalar.");
        yield return new KerasBatchNormalization(inputShape[0], axis: 1, momentum, epsilon, center, scale, renorm, renormClipping, virtualBatchSize, synchronized);
    }
}

/// <summary>Layer normalization over all of a sample's values — (C, H, W) for images, the features otherwise — as
/// Ba, Kiros &amp; Hinton (2016) define it. (Keras's <c>LayerNormalization</c> defaults to the last axis only, which in
/// NCHW would be the image width.) Epsilon defaults to Keras's 1e-3.</summary>
public sealed class LayerNormalization(double epsilon = 1e-3) : Layer
{
    internal override IEnumerable<Module> Build(int[] inputShape, RandomGenerator generator)
    {
        yield return new LayerNorm((int[])inputShape.Clone(), epsilon);
    }
}

/// <summary>Keras's <c>GroupNormalization</c> (Wu &amp; He 2018): channels split into <paramref name="groups"/>
/// groups, each normalized over its channels and positions; epsilon 1e-3 as in Keras.</summary>
public sealed class GroupNormalization(int groups = 32, double epsilon = 1e-3) : Layer
{
    internal override IEnumerable<Module> Build(int[] inputShape, RandomGenerator generator)
    {
        if (inputShape.Length == 0) throw new ArgumentException("GroupNormalization: needs per-sample inputs with a channel axis, got a scalar.");
        yield return new GroupNorm(groups, inputShape[0], epsilon);
    }
}
