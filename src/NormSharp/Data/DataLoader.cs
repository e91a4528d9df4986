namespace NormSharp.Data;

/// <summary>
/// Iterates over a data set in mini-batches, in a seeded random order that changes every epoch: the order of epoch
/// e depends only on (seed, e), so a run resumed at epoch e sees exactly the batches an uninterrupted run would.
/// </summary>
/// <example>
/// <code>
/// var loader = new DataLoader(train, batchSize: 128, shuffle: true, seed: 42);
/// for (int epoch = 0; epoch &lt; epochs; epoch++)
///     foreach (Batch batch in loader.Batches(epoch))
///         using (batch) { /* forward, backward, step */ }
/// </code>
/// </example>
public sealed class DataLoader
{
    /// <summary>Creates a loader over <paramref name="dataset"/>. With <paramref name="dropLast"/> a final batch
    /// smaller than <paramref name="batchSize"/> is skipped instead of yielded; with
    /// <paramref name="oneHotLabels"/> every batch also carries its labels as one-hot rows.</summary>
    public DataLoader(ImageClassificationDataset dataset, int batchSize, bool shuffle = true, ulong seed = 0, bool dropLast = false, bool oneHotLabels = false)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        if (batchSize <= 0)
            throw new ArgumentOutOfRangeException(nameof(batchSize), $"DataLoader('{dataset.Name}'): the batch size must be positive, got {batchSize}.");
        Dataset = dataset;
        BatchSize = batchSize;
        Shuffle = shuffle;
        Seed = seed;
        DropLast = dropLast;
        OneHotLabels = oneHotLabels;
    }

    /// <summary>The data set the batches are drawn from.</summary>
    public ImageClassificationDataset Dataset { get; }

    /// <summary>The number of samples in a full batch.</summary>
    public int BatchSize { get; }

    /// <summary>Whether each epoch visits the samples in a new random order (otherwise in data set order).</summary>
    public bool Shuffle { get; }

    /// <summary>The seed from which every epoch's order is derived.</summary>
    public ulong Seed { get; }

    /// <summary>Whether a final batch smaller than <see cref="BatchSize"/> is skipped.</summary>
    public bool DropLast { get; }

    /// <summary>Whether batches carry one-hot labels as well as class indices.</summary>
    public bool OneHotLabels { get; }

    /// <summary>The number of batches in one epoch.</summary>
    public int BatchCount => DropLast ? Dataset.Count / BatchSize : (Dataset.Count + BatchSize - 1) / BatchSize;

    /// <summary>The order in which epoch <paramref name="epoch"/> visits the samples: a permutation of the data set
    /// indices (Fisher–Yates driven by a generator seeded from the seed and the epoch), or the identity when not
    /// shuffling.</summary>
    public int[] Order(int epoch)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        int[] order = Enumerable.Range(0, Dataset.Count).ToArray();
        // Adding a multiple of the golden-ratio constant keeps the (seed, epoch) pairs of small seeds and epochs from
        // colliding, unlike seed + epoch; SplitMix64 inside RandomGenerator then decorrelates neighbouring seeds.
        if (Shuffle) new RandomGenerator(Seed + 0x9E3779B97F4A7C15UL * (ulong)(epoch + 1)).Shuffle(order.AsSpan());
        return order;
    }

    /// <summary>The batches of epoch <paramref name="epoch"/> (counted from 0), in order; each is built when the
    /// enumeration reaches it.</summary>
    public IEnumerable<Batch> Batches(int epoch)
    {
        int[] order = Order(epoch);
        return Enumerate(order);
    }

    /// <summary>
    /// The distributed sampler: process <paramref name="replica"/>'s part of every batch of epoch
    /// <paramref name="epoch"/> when <paramref name="replicas"/> processes share each batch. Every process computes the
    /// same order (same seed), batch b's samples are split into <paramref name="replicas"/> contiguous parts whose
    /// sizes differ by at most one, and part r goes to process r, so the parts are disjoint and one epoch still
    /// visits every sample once; the parts of batch b together are <see cref="Batches(int)"/>'s batch b. A final
    /// batch with fewer samples than processes is left out by every process.
    /// </summary>
    public IEnumerable<Batch> Batches(int epoch, int replica, int replicas)
    {
        if (replicas < 1 || replica < 0 || replica >= replicas)
            throw new ArgumentOutOfRangeException(nameof(replica), $"DataLoader('{Dataset.Name}'): replica {replica} of {replicas} does not exist.");
        int[] order = Order(epoch);
        return EnumerateParts(order, replica, replicas);
    }

    /// <summary>The samples in batch <paramref name="batch"/> of an epoch (the last one may be short).</summary>
    public int BatchLength(int batch) => Math.Min(BatchSize, Dataset.Count - batch * BatchSize);

    private IEnumerable<Batch> EnumerateParts(int[] order, int replica, int replicas)
    {
        for (int b = 0; b < BatchCount; b++)
        {
            int length = BatchLength(b);
            if (length < replicas) yield break;
            int start = b * BatchSize + (int)((long)length * replica / replicas), end = b * BatchSize + (int)((long)length * (replica + 1) / replicas);
            yield return MakeBatch(order.AsSpan(start, end - start));
        }
    }

    private IEnumerable<Batch> Enumerate(int[] order)
    {
        for (int b = 0; b < BatchCount; b++)
        {
            yield return MakeBatch(order.AsSpan(b * BatchSize, BatchLength(b)));
        }
    }

    private Batch MakeBatch(ReadOnlySpan<int> indices)
    {
        ImageClassificationDataset data = Dataset;
        int size = data.SampleSize;
        Tensor images = PooledTensor([indices.Length, data.Channels, data.Height, data.Width]);
        Span<float> pixels = images.SpanF;
        var labels = new int[indices.Length];
        ReadOnlySpan<int> allLabels = data.Labels;
        for (int i = 0; i < indices.Length; i++)
        {
            data.Image(indices[i]).CopyTo(pixels.Slice(i * size, size));
            labels[i] = allLabels[indices[i]];
        }
        Tensor? oneHot = null;
        if (OneHotLabels)
        {
            oneHot = PooledTensor([indices.Length, data.ClassCount]);
            LabelEncoding.WriteOneHot(labels, data.ClassCount, oneHot.SpanF);
        }
        return new Batch(images, labels, oneHot, indices.ToArray());
    }

    // Batches outlive the TensorScope of a training step (they are made before the step begins), so their buffers
    // are rented directly from the pool and returned by Batch.Dispose rather than by a scope.
    private static Tensor PooledTensor(int[] dims)
    {
        Storage storage = Storage.Allocate(DType.Float32, ShapeUtil.Product(dims), clear: false, pooled: true);
        return new(storage, DType.Float32, dims, ShapeUtil.ContiguousStrides(dims), storage.Start);
    }
}
