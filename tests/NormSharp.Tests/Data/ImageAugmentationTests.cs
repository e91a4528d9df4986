using NormSharp.Data;

namespace NormSharp.Tests.Data;

public class ImageAugmentationTests
{
    private const int Channels = 2, Height = 28, Width = 28;

    // Pixels of 2 lie outside the noise's [0, 1), so every erased pixel is seen.
    private static float[] ErasedConstantImages(int images, double probability, ulong seed)
    {
        Tensor batch = Tensor.Full([images, Channels, Height, Width], 2.0);
        new ImageAugmentation(randomErasing: probability, seed: seed).Apply(batch, epoch: 1, batch: 4);
        return batch.ToArray();
    }

    private static float At(float[] pixels, int image, int channel, int y, int x) =>
        pixels[((image * Channels + channel) * Height + y) * Width + x];

    private static List<(int Y, int X)> Erased(float[] pixels, int image, int channel) =>
        Enumerable.Range(0, Height * Width).Select(p => (Y: p / Width, X: p % Width)).Where(p => At(pixels, image, channel, p.Y, p.X) != 2f).ToList();

    [Fact]
    public void Random_erasing_replaces_one_rectangle_within_the_papers_area_and_aspect_ranges_by_noise_in_every_channel()
    {
        const int images = 200;
        float[] pixels = ErasedConstantImages(images, probability: 1, seed: 3);
        int erasedImages = 0;
        for (int i = 0; i < images; i++)
        {
            List<(int Y, int X)> erased = Erased(pixels, i, 0);
            if (erased.Count == 0) continue;
            erasedImages++;
            int top = erased.Min(p => p.Y), bottom = erased.Max(p => p.Y), left = erased.Min(p => p.X), right = erased.Max(p => p.X);
            int erasedHeight = bottom - top + 1, erasedWidth = right - left + 1;
            // The erased pixels fill their bounding box: one rectangle, the same one in the other channel.
            Assert.Equal(erasedHeight * erasedWidth, erased.Count);
            for (int c = 0; c < Channels; c++)
                foreach (var (y, x) in erased)
                    Assert.InRange(At(pixels, i, c, y, x), 0f, 0.99999994f);
            Assert.Equal(erased, Erased(pixels, i, 1));
            // Area 2–40 % of 784 pixels and aspect 0.3–3.3, widened by the rounding of each side to whole pixels.
            Assert.InRange(erased.Count, (int)(Math.Sqrt(0.02 * 784 * 0.3) - 0.5) * (int)(Math.Sqrt(0.02 * 784 / 0.3) - 0.5), 0.4 * 784 * 1.2);
            Assert.InRange((double)erasedHeight / erasedWidth, 0.3 * 0.7, 3.34 / 0.7);
        }
        // Probability 1: only an image whose 100 tries all fall off the edge escapes, which these ranges make rare.
        Assert.InRange(erasedImages, 196, images);
    }

    [Fact]
    public void Random_erasing_erases_about_the_given_fraction_of_images()
    {
        const int images = 2000;
        float[] pixels = ErasedConstantImages(images, probability: 0.5, seed: 7);
        int erased = Enumerable.Range(0, images).Count(i => Erased(pixels, i, 0).Count > 0);
        // Binomial(2000, 0.5) has standard deviation 22; ±110 is five of them.
        Assert.InRange(erased, 890, 1110);
    }

    [Fact]
    public void The_same_seed_epoch_and_batch_augment_identically_and_another_batch_differently()
    {
        var augmentation = new ImageAugmentation(maxShift: 1, horizontalFlip: true, randomErasing: 0.5, seed: 11);
        Tensor Augmented(int epoch, int batch)
        {
            Tensor images = Tensor.FromArray(Enumerable.Range(0, 8 * Channels * Height * Width).Select(v => v % 97 / 97f).ToArray(), [8, Channels, Height, Width]);
            augmentation.Apply(images, epoch, batch);
            return images;
        }
        Assert.Equal(Augmented(2, 5).ToArray(), Augmented(2, 5).ToArray());
        Assert.NotEqual(Augmented(2, 5).ToArray(), Augmented(2, 6).ToArray());
        Assert.NotEqual(Augmented(2, 5).ToArray(), Augmented(3, 5).ToArray());
    }

    [Fact]
    public void A_shift_moves_the_image_by_at_most_max_shift_pixels_and_repeats_the_edge()
    {
        // Column x holds the value x in every row, so a horizontal shift by dx makes column x hold clamp(x − dx).
        const int images = 64;
        Tensor batch = Tensor.FromArray(Enumerable.Range(0, images * Channels * Height * Width).Select(v => (float)(v % Width)).ToArray(), [images, Channels, Height, Width]);
        new ImageAugmentation(maxShift: 2, seed: 1).Apply(batch, 0, 0);
        float[] pixels = batch.ToArray();
        var shifts = new HashSet<int>();
        for (int i = 0; i < images; i++)
        {
            int dx = 14 - (int)At(pixels, i, 0, 5, 14);
            Assert.InRange(dx, -2, 2);
            shifts.Add(dx);
            for (int x = 0; x < Width; x++)
                Assert.Equal(Math.Clamp(x - dx, 0, Width - 1), At(pixels, i, 1, 20, x));
        }
        Assert.Equal(5, shifts.Count);
    }

    [Theory]
    [InlineData(-0.1)]
    [InlineData(1.5)]
    [InlineData(double.NaN)]
    public void A_random_erasing_probability_outside_zero_to_one_is_rejected(double probability)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new ImageAugmentation(randomErasing: probability));
        Assert.Contains("ImageAugmentation", error.Message);
    }
}
