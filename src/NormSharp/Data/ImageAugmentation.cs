namespace NormSharp.Data;

/// <summary>
/// Random shifts, horizontal flips and random erasing of training images. Shifts and flips are Keras's
/// <c>ImageDataGenerator(width_shift_range=s, height_shift_range=s, horizontal_flip=True, fill_mode="nearest")</c> with
/// whole-pixel shifts: each image moves by dx, dy drawn uniformly from [−<see cref="MaxShift"/>, <see cref="MaxShift"/>],
/// pixels shifted in from outside repeat the nearest edge pixel, and with <see cref="HorizontalFlip"/> half of the
/// images are mirrored left–right. Random erasing (Zhong et al. 2017) then replaces one rectangle of an image, with
/// probability <see cref="RandomErasingProbability"/>, by uniform noise. The draws for a batch depend only on
/// (seed, epoch, batch), so a resumed run augments exactly as an uninterrupted one.
/// </summary>
public sealed class ImageAugmentation
{
    /// <summary>The erased area's range as a fraction of the image, [s_l, s_h] of Zhong et al. 2017, Alg. 1.</summary>
    public const double ErasedAreaMin = 0.02, ErasedAreaMax = 0.4;

    /// <summary>The erased rectangle's aspect ratio (height / width) range, [r_1, 1/r_1] of Zhong et al. 2017, Alg. 1.</summary>
    public const double ErasedAspectMin = 0.3, ErasedAspectMax = 1 / 0.3;

    /// <summary>Rectangles drawn before an image is left unerased: Alg. 1 draws until one fits inside the image; the
    /// authors' code stops after 100 tries, which almost never happens with these ranges.</summary>
    private const int ErasingAttempts = 100;

    /// <summary>Creates the augmentation; <paramref name="maxShift"/> is in pixels, <paramref name="randomErasing"/>
    /// the probability that an image has a rectangle erased.</summary>
    public ImageAugmentation(int maxShift = 0, bool horizontalFlip = false, double randomErasing = 0, ulong seed = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxShift);
        if (!(randomErasing >= 0 && randomErasing <= 1))
            throw new ArgumentOutOfRangeException(nameof(randomErasing), randomErasing, "ImageAugmentation: the random-erasing probability must lie in [0, 1].");
        MaxShift = maxShift;
        HorizontalFlip = horizontalFlip;
        RandomErasingProbability = randomErasing;
        Seed = seed;
    }

    /// <summary>The largest shift, in pixels, along each axis.</summary>
    public int MaxShift { get; }

    /// <summary>Whether half of the images are mirrored left–right.</summary>
    public bool HorizontalFlip { get; }

    /// <summary>The probability p that an image has one rectangle (area 2–40 % of the image, aspect ratio 0.3–3.3, the
    /// same rectangle in every channel) replaced by noise uniform in [0, 1), the range of the pixels
    /// (Zhong et al. 2017, Alg. 1, "RE-R"); 0 erases nothing.</summary>
    public double RandomErasingProbability { get; }

    /// <summary>The seed the draws derive from.</summary>
    public ulong Seed { get; }

    /// <summary>Whether the augmentation changes anything.</summary>
    public bool IsIdentity => MaxShift == 0 && !HorizontalFlip && RandomErasingProbability == 0;

    /// <summary>Augments the float32 images (N, C, H, W) of batch <paramref name="batch"/> of epoch
    /// <paramref name="epoch"/> in place.</summary>
    public void Apply(Tensor images, int epoch, int batch)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Rank != 4 || images.DType != DType.Float32 || !images.IsContiguous)
            throw new ArgumentException($"ImageAugmentation: expected contiguous float32 images (N, C, H, W), got {ShapeUtil.Format(images.Dims)} ({images.DType}).");
        if (IsIdentity) return;
        int n = images.Dims[0], channels = images.Dims[1], height = images.Dims[2], width = images.Dims[3];
        var generator = new RandomGenerator(Seed ^ (0x9E3779B97F4A7C15UL * (ulong)(epoch + 1)) ^ (0xBF58476D1CE4E5B9UL * (ulong)(batch + 1)));
        Span<float> pixels = images.SpanF;
        var source = new float[height * width];
        for (int i = 0; i < n; i++)
        {
            Span<float> image = pixels.Slice(i * channels * height * width, channels * height * width);
            ShiftAndFlip(image, channels, height, width, generator, source);
            // No draw at all without erasing, so shift-and-flip runs augment exactly as before erasing existed.
            if (RandomErasingProbability > 0 && generator.NextDouble() < RandomErasingProbability)
                Erase(image, channels, height, width, generator);
        }
    }

    private void ShiftAndFlip(Span<float> image, int channels, int height, int width, RandomGenerator generator, float[] source)
    {
        int dx = generator.NextInt(2 * MaxShift + 1) - MaxShift, dy = generator.NextInt(2 * MaxShift + 1) - MaxShift;
        bool flip = HorizontalFlip && generator.NextInt(2) == 1;
        if (dx == 0 && dy == 0 && !flip) return;
        for (int c = 0; c < channels; c++)
        {
            Span<float> plane = image.Slice(c * height * width, height * width);
            plane.CopyTo(source);
            // Output (y, x) reads input (y − dy, x − dx) of the possibly mirrored image, clamped to the edge.
            for (int y = 0; y < height; y++)
            {
                int sy = Math.Clamp(y - dy, 0, height - 1);
                for (int x = 0; x < width; x++)
                {
                    int sx = Math.Clamp(x - dx, 0, width - 1);
                    plane[y * width + x] = source[sy * width + (flip ? width - 1 - sx : sx)];
                }
            }
        }
    }

    // Zhong et al. 2017, Alg. 1: S_e = U(s_l, s_h)·S, r_e = U(r_1, 1/r_1), H_e = √(S_e·r_e), W_e = √(S_e/r_e), the corner
    // (x_e, y_e) uniform over the image; the rectangle is kept only if it lies inside the image.
    private static void Erase(Span<float> image, int channels, int height, int width, RandomGenerator generator)
    {
        for (int attempt = 0; attempt < ErasingAttempts; attempt++)
        {
            double area = (ErasedAreaMin + (ErasedAreaMax - ErasedAreaMin) * generator.NextDouble()) * height * width;
            double aspect = ErasedAspectMin + (ErasedAspectMax - ErasedAspectMin) * generator.NextDouble();
            int erasedHeight = (int)Math.Round(Math.Sqrt(area * aspect)), erasedWidth = (int)Math.Round(Math.Sqrt(area / aspect));
            int top = generator.NextInt(height), left = generator.NextInt(width);
            if (erasedHeight < 1 || erasedWidth < 1 || top + erasedHeight > height || left + erasedWidth > width) continue;
            for (int c = 0; c < channels; c++)
                for (int y = top; y < top + erasedHeight; y++)
                    for (int x = left; x < left + erasedWidth; x++)
                        image[(c * height + y) * width + x] = (float)generator.NextDouble();
            return;
        }
    }
}
