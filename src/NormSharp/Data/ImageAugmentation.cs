namespace NormSharp.Data;

/// <summary>
/// Random shifts and horizontal flips of training images, Keras's <c>ImageDataGenerator(width_shift_range=s,
/// height_shift_range=s, horizontal_flip=True, fill_mode="nearest")</c> with whole-pixel shifts: each image moves by
/// dx, dy drawn uniformly from [−<see cref="MaxShift"/>, <see cref="MaxShift"/>], pixels shifted in from outside repeat
/// the nearest edge pixel, and with <see cref="HorizontalFlip"/> half of the images are mirrored left–right. The draws
/// for a batch depend only on (seed, epoch, batch), so a resumed run augments exactly as an uninterrupted one.
/// </summary>
public sealed class ImageAugmentation
{
    /// <summary>Creates the augmentation; <paramref name="maxShift"/> is in pixels.</summary>
    public ImageAugmentation(int maxShift = 0, bool horizontalFlip = false, ulong seed = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxShift);
        MaxShift = maxShift;
        HorizontalFlip = horizontalFlip;
        Seed = seed;
    }

    /// <summary>The largest shift, in pixels, along each axis.</summary>
    public int MaxShift { get; }

    /// <summary>Whether half of the images are mirrored left–right.</summary>
    public bool HorizontalFlip { get; }

    /// <summary>The seed the draws derive from.</summary>
    public ulong Seed { get; }

    /// <summary>Whether the augmentation changes anything.</summary>
    public bool IsIdentity => MaxShift == 0 && !HorizontalFlip;

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
            int dx = generator.NextInt(2 * MaxShift + 1) - MaxShift, dy = generator.NextInt(2 * MaxShift + 1) - MaxShift;
            bool flip = HorizontalFlip && generator.NextInt(2) == 1;
            if (dx == 0 && dy == 0 && !flip) continue;
            for (int c = 0; c < channels; c++)
            {
                Span<float> plane = pixels.Slice((i * channels + c) * height * width, height * width);
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
    }
}
