using NormSharp.Nn;
using NormSharp.Training;

namespace NormSharp.Keras;

/// <summary>
/// Keras's <c>Sequential</c>: a stack of Keras layers built for a known per-sample input shape (NCHW: (1, 28, 28) for
/// MNIST) into a flat <see cref="NormSharp.Nn.Sequential"/>, so state names read <c>0.weight</c>, <c>1.running_mean</c>
/// as in PyTorch. Compile, Fit, Evaluate, Predict and Summary come from <see cref="Model"/>.
/// </summary>
/// <example>
/// <code>
/// var model = new Keras.Sequential(new[] { 1, 28, 28 },
///     new Conv2D(32, 3, padding: "same"), new BatchNormalization(), new Activation("relu"), new MaxPooling2D(2),
///     new Flatten(), new Dense(10, activation: "softmax"));
/// model.Compile(new Adam(model.Network.Parameters()), "categorical_crossentropy", "accuracy");
/// </code>
/// </example>
public sealed class Sequential : Model
{
    /// <summary>Builds the layers for inputs of shape (N, *<paramref name="inputShape"/>), initializing from
    /// <see cref="RandomGenerator.Default"/>.</summary>
    public Sequential(int[] inputShape, params Layer[] layers) : this(inputShape, RandomGenerator.Default, layers) { }

    /// <summary>Builds the layers, initializing weights from <paramref name="generator"/>.</summary>
    public Sequential(int[] inputShape, RandomGenerator generator, params Layer[] layers)
        : base(Build(inputShape, generator, layers), inputShape) { }

    private static NormSharp.Nn.Sequential Build(int[] inputShape, RandomGenerator generator, Layer[] layers)
    {
        ArgumentNullException.ThrowIfNull(inputShape);
        ArgumentNullException.ThrowIfNull(generator);
        var network = new NormSharp.Nn.Sequential();
        int[] shape = (int[])inputShape.Clone();
        foreach (Layer layer in layers)
            foreach (Module module in layer.Build(shape, generator))
            {
                network.Add(module);
                shape = OutputShape(module, shape);
            }
        return network;
    }

    /// <summary>Infers a module's per-sample output shape by running it on a zero batch of two in evaluation mode.</summary>
    private static int[] OutputShape(Module module, int[] inputShape)
    {
        bool wasTraining = module.IsTraining;
        module.Eval();
        try
        {
            using (Tensor.NoGrad())
            using (TensorScope.Begin())
                return module.Forward(Tensor.Zeros(new[] { 2 }.Concat(inputShape).ToArray())).Shape[1..];
        }
        finally { module.Train(wasTraining); }
    }
}
