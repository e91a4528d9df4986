using NormSharp.Nn;

namespace NormSharp.Keras;

/// <summary>The normalization a seed model uses after each convolution and hidden dense layer.</summary>
public enum NormalizationKind
{
    /// <summary>Batch normalization (Ioffe &amp; Szegedy 2015), the seeds' choice.</summary>
    Batch,
    /// <summary>Layer normalization over each sample's (C, H, W) or features (Ba, Kiros &amp; Hinton 2016).</summary>
    Layer,
    /// <summary>Group normalization with 8 groups (Wu &amp; He 2018).</summary>
    Group,
    /// <summary>No normalization.</summary>
    None,
    /// <summary>Batch Renormalization (Ioffe 2017): BatchNorm corrected toward its moving averages in training.</summary>
    BatchRenorm,
    /// <summary>Ghost Batch Normalization (Hoffer et al. 2017): BatchNorm over virtual sub-batches.</summary>
    GhostBatch,
}

/// <summary>The networks of the seed documents, in Keras form with NCHW inputs of shape (1, 28, 28).</summary>
public static class SeedModels
{
    /// <summary>The architectures by command-line name.</summary>
    public static IReadOnlyList<string> Names { get; } = new[] { "seed-cnn", "seed-cnn-small", "mlp" };

    /// <summary>The virtual batch size of <see cref="NormalizationKind.GhostBatch"/> unless one is given.</summary>
    public const int DefaultGhostBatchSize = 16;

    /// <summary>The normalizations by command-line name (<c>normsharp train --norm</c>, and the <c>norm</c> a saved
    /// model's metadata names).</summary>
    public static IReadOnlyList<string> NormalizationNames { get; } = new[] { "batch", "batch-renorm", "ghost-batch", "layer", "group", "none" };

    /// <summary>The normalization a command-line name (see <see cref="NormalizationNames"/>) stands for.</summary>
    public static NormalizationKind ParseNormalization(string name) => name switch
    {
        "batch" => NormalizationKind.Batch,
        "batch-renorm" => NormalizationKind.BatchRenorm,
        "ghost-batch" => NormalizationKind.GhostBatch,
        "layer" => NormalizationKind.Layer,
        "group" => NormalizationKind.Group,
        "none" => NormalizationKind.None,
        _ => throw new ArgumentException($"Unknown normalization '{name}'; available: {string.Join(", ", NormalizationNames)}."),
    };

    /// <summary>Builds the architecture <paramref name="name"/> (see <see cref="Names"/>) for 28×28 grayscale images
    /// and <paramref name="classes"/> classes; <paramref name="ghostBatchSize"/> is the virtual batch size of
    /// <see cref="NormalizationKind.GhostBatch"/>.</summary>
    public static Sequential Create(string name, NormalizationKind norm = NormalizationKind.Batch, int classes = 10, RandomGenerator? generator = null,
        int ghostBatchSize = DefaultGhostBatchSize) => name switch
    {
        "seed-cnn" => Cnn(norm, classes, generator, ghostBatchSize: ghostBatchSize),
        "seed-cnn-small" => SmallCnn(norm, classes, generator, ghostBatchSize),
        "mlp" => Mlp(norm, classes, generator, ghostBatchSize),
        _ => throw new ArgumentException($"Unknown model '{name}'; available: {string.Join(", ", Names)}."),
    };

    /// <summary>Seed 000's CNN: (Conv2D 3×3 same → norm → ReLU → MaxPool 2) with 32, 64, 128 filters, then Flatten →
    /// Dense 128 ReLU → norm → Dense 10 softmax. With batch normalization it has 242,954 parameters, 704 of them
    /// non-trainable, as Keras counts them. <paramref name="renormClipping"/> (default: the paper's schedule) and
    /// <paramref name="ghostBatchSize"/> (default <see cref="DefaultGhostBatchSize"/>) set up <see cref="NormalizationKind.BatchRenorm"/> and
    /// <see cref="NormalizationKind.GhostBatch"/>.</summary>
    public static Sequential Cnn(NormalizationKind norm = NormalizationKind.Batch, int classes = 10, RandomGenerator? generator = null,
        BatchRenormClipping? renormClipping = null, int ghostBatchSize = DefaultGhostBatchSize)
    {
        var layers = new List<Layer>();
        foreach (int filters in new[] { 32, 64, 128 })
        {
            layers.Add(new Conv2D(filters, 3, padding: "same"));
            layers.AddRange(Normalization(norm, renormClipping, ghostBatchSize));
            layers.Add(new Activation("relu"));
            layers.Add(new MaxPooling2D(2));
        }
        layers.Add(new Flatten());
        layers.Add(new Dense(128, activation: "relu"));
        layers.AddRange(Normalization(norm, renormClipping, ghostBatchSize));
        layers.Add(new Dense(classes, activation: "softmax"));
        return new Sequential(new[] { 1, 28, 28 }, generator ?? RandomGenerator.Default, layers.ToArray());
    }

    /// <summary>Seed 002's CNN: Conv2D 32 3×3 ReLU → norm → Conv2D 64 3×3 ReLU → norm → Flatten → Dense 10 softmax.</summary>
    public static Sequential SmallCnn(NormalizationKind norm = NormalizationKind.Batch, int classes = 10, RandomGenerator? generator = null,
        int ghostBatchSize = DefaultGhostBatchSize)
    {
        var layers = new List<Layer> { new Conv2D(32, 3, activation: "relu") };
        layers.AddRange(Normalization(norm, ghostBatchSize: ghostBatchSize));
        layers.Add(new Conv2D(64, 3, activation: "relu"));
        layers.AddRange(Normalization(norm, ghostBatchSize: ghostBatchSize));
        layers.Add(new Flatten());
        layers.Add(new Dense(classes, activation: "softmax"));
        return new Sequential(new[] { 1, 28, 28 }, generator ?? RandomGenerator.Default, layers.ToArray());
    }

    /// <summary>A fully connected baseline: Flatten → Dense 256 ReLU → norm → Dense 128 ReLU → norm → Dense 10 softmax.</summary>
    public static Sequential Mlp(NormalizationKind norm = NormalizationKind.Batch, int classes = 10, RandomGenerator? generator = null,
        int ghostBatchSize = DefaultGhostBatchSize)
    {
        var layers = new List<Layer> { new Flatten(), new Dense(256, activation: "relu") };
        layers.AddRange(Normalization(norm, ghostBatchSize: ghostBatchSize));
        layers.Add(new Dense(128, activation: "relu"));
        layers.AddRange(Normalization(norm, ghostBatchSize: ghostBatchSize));
        layers.Add(new Dense(classes, activation: "softmax"));
        return new Sequential(new[] { 1, 28, 28 }, generator ?? RandomGenerator.Default, layers.ToArray());
    }

    private static IEnumerable<Layer> Normalization(NormalizationKind norm, BatchRenormClipping? renormClipping = null, int ghostBatchSize = DefaultGhostBatchSize) => norm switch
    {
        NormalizationKind.Batch => new Layer[] { new BatchNormalization() },
        NormalizationKind.BatchRenorm => new Layer[] { new BatchNormalization(renorm: true, renormClipping: renormClipping ?? new BatchRenormClipping()) },
        NormalizationKind.GhostBatch => new Layer[] { new BatchNormalization(virtualBatchSize: ghostBatchSize) },
        NormalizationKind.Layer => new Layer[] { new LayerNormalization() },
        NormalizationKind.Group => new Layer[] { new GroupNormalization(8) },
        _ => Array.Empty<Layer>(),
    };
}
