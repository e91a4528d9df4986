namespace NormSharp.Data;

/// <summary>
/// A labelled image data set held in memory: N images of C × H × W float32 pixels in NCHW order (MNIST-family images
/// are scaled from bytes to [0, 1]) and one class index per image.
/// </summary>
/// <remarks>
/// Every method that selects or transforms samples returns a new data set and leaves this one unchanged, so a test set
/// can be standardized with the statistics of the training set without either being modified.
/// </remarks>
public sealed class ImageClassificationDataset
{
    private readonly float[] _pixels;
    private readonly int[] _labels;
    private readonly string[] _classNames;

    /// <summary>Wraps the given arrays (not copied): <paramref name="pixels"/> holds
    /// <c>labels.Length × channels × height × width</c> values in NCHW order; every label lies in
    /// [0, <paramref name="classCount"/>). Class names default to the class indices.</summary>
    public ImageClassificationDataset(float[] pixels, int[] labels, int channels, int height, int width, int classCount,
        string name = "", IReadOnlyList<string>? classNames = null)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(name);
        string who = $"ImageClassificationDataset('{name}')";
        if (channels <= 0 || height <= 0 || width <= 0 || classCount <= 0)
            throw new ArgumentOutOfRangeException(nameof(channels), $"{who}: channels, height, width and class count must be positive, got {channels}, {height}, {width}, {classCount}.");
        long expected = (long)labels.Length * channels * height * width;
        if (pixels.Length != expected)
            throw new ArgumentException($"{who}: {labels.Length} images of shape {ShapeUtil.Format([channels, height, width])} need {expected} pixels, but {pixels.Length} were given.", nameof(pixels));
        for (int i = 0; i < labels.Length; i++)
            if ((uint)labels[i] >= (uint)classCount)
                throw new ArgumentException($"{who}: label {labels[i]} of sample {i} is outside [0, {classCount}).", nameof(labels));
        if (classNames is not null && classNames.Count != classCount)
            throw new ArgumentException($"{who}: {classNames.Count} class names were given for {classCount} classes.", nameof(classNames));
        _pixels = pixels;
        _labels = labels;
        _classNames = classNames?.ToArray() ?? Enumerable.Range(0, classCount).Select(c => c.ToString()).ToArray();
        Name = name;
        Channels = channels;
        Height = height;
        Width = width;
    }

    /// <summary>Builds a single-channel data set from IDX images (count, rows, columns) and labels (count), dividing
    /// each pixel byte by 255.</summary>
    /// <exception cref="InvalidDataException">The arrays have the wrong ranks, different counts, or a label outside
    /// [0, <paramref name="classCount"/>).</exception>
    public static ImageClassificationDataset FromIdx(IdxArray images, IdxArray labels, int classCount, string name = "", IReadOnlyList<string>? classNames = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        if (images.Dimensions.Count != 3)
            throw new InvalidDataException($"{name}: images must be an IDX array of shape (count, rows, columns), got {ShapeUtil.Format(images.Dimensions.ToArray())}.");
        if (labels.Dimensions.Count != 1)
            throw new InvalidDataException($"{name}: labels must be an IDX array of shape (count,), got {ShapeUtil.Format(labels.Dimensions.ToArray())}.");
        if (images.Count != labels.Count)
            throw new InvalidDataException($"{name}: there are {images.Count} images but {labels.Count} labels.");
        int bad = Array.FindIndex(labels.Data, l => l >= classCount);
        if (bad >= 0)
            throw new InvalidDataException($"{name}: label {labels.Data[bad]} of sample {bad} is outside [0, {classCount}).");

        // A table of b / 255 keeps every pixel the correctly rounded quotient (multiplying by 1/255f is not).
        Span<float> scale = stackalloc float[256];
        for (int b = 0; b < 256; b++) scale[b] = b / 255f;
        var pixels = new float[images.Data.Length];
        ReadOnlySpan<byte> bytes = images.Data;
        for (int i = 0; i < pixels.Length; i++) pixels[i] = scale[bytes[i]];
        int[] classes = Array.ConvertAll(labels.Data, l => (int)l);
        return new ImageClassificationDataset(pixels, classes, 1, images.Dimensions[1], images.Dimensions[2], classCount, name, classNames);
    }

    /// <summary>A name for messages and summaries (for example "mnist (train)").</summary>
    public string Name { get; }

    /// <summary>The number of samples.</summary>
    public int Count => _labels.Length;

    /// <summary>The number of channels of each image (1 for MNIST-family data).</summary>
    public int Channels { get; }

    /// <summary>The height of each image in pixels.</summary>
    public int Height { get; }

    /// <summary>The width of each image in pixels.</summary>
    public int Width { get; }

    /// <summary>The number of classes; labels lie in [0, ClassCount).</summary>
    public int ClassCount => _classNames.Length;

    /// <summary>A readable name for each class index ("0".."9" for digits, "T-shirt/top".. for Fashion-MNIST).</summary>
    public IReadOnlyList<string> ClassNames => _classNames;

    /// <summary>The number of values in one image: Channels × Height × Width.</summary>
    public int SampleSize => Channels * Height * Width;

    /// <summary>The shape of the whole image array, (N, C, H, W).</summary>
    public int[] Shape => [Count, Channels, Height, Width];

    /// <summary>All pixels in NCHW order.</summary>
    public ReadOnlySpan<float> Pixels => _pixels;

    /// <summary>The class index of every sample.</summary>
    public ReadOnlySpan<int> Labels => _labels;

    /// <summary>The C × H × W pixels of sample <paramref name="index"/>.</summary>
    public ReadOnlySpan<float> Image(int index)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, (uint)Count, nameof(index));
        return _pixels.AsSpan(index * SampleSize, SampleSize);
    }

    /// <summary>A float32 tensor of shape (N, C, H, W) that shares this data set's memory (no copy); it is not
    /// tracked by a <see cref="TensorScope"/>.</summary>
    public Tensor ToTensor()
    {
        int[] dims = Shape;
        return new Tensor(Storage.Wrap(_pixels), DType.Float32, dims, ShapeUtil.ContiguousStrides(dims), 0);
    }

    /// <summary>The number of samples of each class.</summary>
    public int[] ClassCounts()
    {
        var counts = new int[ClassCount];
        foreach (int label in _labels) counts[label]++;
        return counts;
    }

    /// <summary>A new data set holding copies of the samples at <paramref name="indices"/>, in that order.</summary>
    public ImageClassificationDataset Subset(ReadOnlySpan<int> indices, string? name = null)
    {
        int size = SampleSize;
        var pixels = new float[(long)indices.Length * size];
        var labels = new int[indices.Length];
        for (int i = 0; i < indices.Length; i++)
        {
            int source = indices[i];
            if ((uint)source >= (uint)Count)
                throw new ArgumentOutOfRangeException(nameof(indices), $"Subset of '{Name}': index {source} at position {i} is outside [0, {Count}).");
            _pixels.AsSpan(source * size, size).CopyTo(pixels.AsSpan(i * size, size));
            labels[i] = _labels[source];
        }
        return new ImageClassificationDataset(pixels, labels, Channels, Height, Width, ClassCount, name ?? Name, _classNames);
    }

    /// <summary>Splits the samples at random into a training part and a validation part holding
    /// round(<paramref name="validationFraction"/> × N) samples; the same seed always gives the same split, and each
    /// part keeps the samples in their original order.</summary>
    public (ImageClassificationDataset Train, ImageClassificationDataset Validation) Split(double validationFraction, ulong seed)
    {
        if (!(validationFraction > 0 && validationFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(validationFraction), $"Split of '{Name}': the validation fraction must lie strictly between 0 and 1, got {validationFraction}.");
        int validationCount = (int)Math.Round(validationFraction * Count, MidpointRounding.AwayFromZero);
        if (validationCount == 0 || validationCount == Count)
            throw new ArgumentOutOfRangeException(nameof(validationFraction), $"Split of '{Name}': a fraction of {validationFraction} of {Count} samples leaves one part empty.");

        int[] order = Enumerable.Range(0, Count).ToArray();
        new RandomGenerator(seed).Shuffle(order.AsSpan());
        int[] validation = order[..validationCount];
        int[] train = order[validationCount..];
        Array.Sort(validation);
        Array.Sort(train);
        return (Subset(train, $"{Name} (train part)"), Subset(validation, $"{Name} (validation part)"));
    }

    /// <summary>The mean and the population standard deviation of each channel over all samples and pixels,
    /// accumulated in float64.</summary>
    public ChannelStatistics ComputeChannelStatistics()
    {
        int plane = Height * Width;
        var mean = new double[Channels];
        var std = new double[Channels];
        for (int c = 0; c < Channels; c++)
        {
            double sum = 0;
            for (int n = 0; n < Count; n++)
                foreach (float v in Plane(n, c, plane)) sum += v;
            double m = sum / ((double)Count * plane);
            double squares = 0;
            for (int n = 0; n < Count; n++)
                foreach (float v in Plane(n, c, plane)) squares += (v - m) * (v - m);
            mean[c] = m;
            std[c] = Math.Sqrt(squares / ((double)Count * plane));
        }
        return new ChannelStatistics(mean, std);
    }

    /// <summary>A new data set with every channel standardized, x' = (x − mean_c) / std_c, using statistics usually
    /// computed on the training part (<see cref="ComputeChannelStatistics"/>); a channel with zero deviation is only
    /// centred.</summary>
    public ImageClassificationDataset Standardize(ChannelStatistics statistics)
    {
        ArgumentNullException.ThrowIfNull(statistics);
        if (statistics.Mean.Count != Channels || statistics.Std.Count != Channels)
            throw new ArgumentException($"Standardize '{Name}': the statistics describe {statistics.Mean.Count} channels, the images have {Channels}.", nameof(statistics));
        int plane = Height * Width;
        var pixels = new float[_pixels.Length];
        for (int c = 0; c < Channels; c++)
        {
            float mean = (float)statistics.Mean[c];
            float invStd = statistics.Std[c] > 0 ? (float)(1 / statistics.Std[c]) : 1f;
            for (int n = 0; n < Count; n++)
            {
                ReadOnlySpan<float> source = Plane(n, c, plane);
                Span<float> target = pixels.AsSpan((n * Channels + c) * plane, plane);
                for (int i = 0; i < plane; i++) target[i] = (source[i] - mean) * invStd;
            }
        }
        return new ImageClassificationDataset(pixels, (int[])_labels.Clone(), Channels, Height, Width, ClassCount, Name, _classNames);
    }

    private ReadOnlySpan<float> Plane(int sample, int channel, int plane) => _pixels.AsSpan((sample * Channels + channel) * plane, plane);

    /// <inheritdoc/>
    public override string ToString() => $"{Name}: {Count} images of {ShapeUtil.Format([Channels, Height, Width])}, {ClassCount} classes";
}

/// <summary>The per-channel mean and population standard deviation of a set of images, used to standardize
/// every split with the statistics of the training part.</summary>
/// <param name="Mean">The mean of each channel.</param>
/// <param name="Std">The population standard deviation of each channel.</param>
public sealed record ChannelStatistics(IReadOnlyList<double> Mean, IReadOnlyList<double> Std);
