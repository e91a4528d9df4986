using NormSharp.Serialization;
using SkiaSharp;

namespace NormSharp.Plotting;

/// <summary>Grayscale images (generated samples, data set digits) tiled into one PNG, written atomically.</summary>
public static class ImageGrid
{
    /// <summary>The PNG size in pixels of a grid of <paramref name="count"/> images of
    /// <paramref name="height"/> × <paramref name="width"/> in <paramref name="columns"/> columns, each image pixel
    /// drawn as <paramref name="scale"/> × <paramref name="scale"/> and cells separated (and framed) by
    /// <paramref name="gap"/> pixels.</summary>
    public static (int Width, int Height) Size(int count, int height, int width, int columns, int scale = 2, int gap = 2)
    {
        Check(count, height, width, columns, scale, gap);
        int rows = (count + columns - 1) / columns;
        return (columns * width * scale + (columns + 1) * gap, rows * height * scale + (rows + 1) * gap);
    }

    /// <summary>Saves <paramref name="count"/> single-channel images laid out one after another in
    /// <paramref name="pixels"/> (N, H, W), row by row of the grid. Values are mapped linearly from
    /// [<paramref name="low"/>, <paramref name="high"/>] to black…white and clamped; the gaps are mid-gray.</summary>
    public static void SaveGray(string path, ReadOnlySpan<float> pixels, int count, int height, int width, int columns,
        float low = 0, float high = 1, int scale = 2, int gap = 2)
    {
        var (gridWidth, gridHeight) = Size(count, height, width, columns, scale, gap);
        if (pixels.Length != count * height * width)
            throw new ArgumentException($"ImageGrid.SaveGray: {count} images of {height}×{width} need {count * height * width} values, got {pixels.Length}.", nameof(pixels));
        if (!(high > low)) throw new ArgumentException($"ImageGrid.SaveGray: high ({high}) must exceed low ({low}).", nameof(high));

        using var bitmap = new SKBitmap(new SKImageInfo(gridWidth, gridHeight, SKColorType.Gray8, SKAlphaType.Opaque));
        Span<byte> canvas = bitmap.GetPixelSpan();
        int stride = bitmap.RowBytes;
        canvas.Fill(128);
        float toByte = 255f / (high - low);
        for (int i = 0; i < count; i++)
        {
            int left = gap + i % columns * (width * scale + gap);
            int top = gap + i / columns * (height * scale + gap);
            ReadOnlySpan<float> image = pixels.Slice(i * height * width, height * width);
            for (int y = 0; y < height * scale; y++)
            {
                Span<byte> row = canvas.Slice((top + y) * stride + left, width * scale);
                ReadOnlySpan<float> source = image.Slice(y / scale * width, width);
                for (int x = 0; x < row.Length; x++)
                    row[x] = (byte)Math.Clamp(MathF.Round((source[x / scale] - low) * toByte), 0, 255);
            }
        }
        using SKData png = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        AtomicFile.WriteAllBytes(path, png.ToArray());
    }

    private static void Check(int count, int height, int width, int columns, int scale, int gap)
    {
        if (count < 1 || height < 1 || width < 1 || columns < 1 || scale < 1 || gap < 0)
            throw new ArgumentOutOfRangeException(nameof(count), $"ImageGrid: count, height, width, columns and scale must be ≥ 1 and gap ≥ 0; got count {count}, {height}×{width}, columns {columns}, scale {scale}, gap {gap}.");
    }
}
