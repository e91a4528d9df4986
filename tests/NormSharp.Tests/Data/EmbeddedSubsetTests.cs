using System.Text;
using NormSharp.Data;
using Xunit.Abstractions;

namespace NormSharp.Tests.Data;

public class EmbeddedSubsetTests(ITestOutputHelper output)
{
    private static readonly LoadedDataset Subset = Datasets.Load("mnist-subset");

    [Fact]
    public void Holds_8000_training_and_2000_test_digits_of_28_by_28()
    {
        Assert.Equal(DatasetSource.Embedded, Subset.Source);
        Assert.Equal(new[] { 8000, 1, 28, 28 }, Subset.Train.Shape);
        Assert.Equal(new[] { 2000, 1, 28, 28 }, Subset.Test.Shape);
        Assert.Equal(10, Subset.Train.ClassCount);
    }

    [Fact]
    public void Classes_have_the_documented_stratified_counts()
    {
        Assert.Equal(new[] { 801, 902, 793, 826, 784, 690, 811, 856, 755, 782 }, Subset.Train.ClassCounts());
        Assert.Equal(new[] { 200, 225, 198, 206, 196, 173, 203, 214, 189, 196 }, Subset.Test.ClassCounts());
    }

    [Fact]
    public void Classes_are_interleaved_not_sorted()
    {
        // A shuffled file changes label often; one sorted by class would change it 9 times.
        int changes = 0;
        for (int i = 1; i < Subset.Train.Count; i++) if (Subset.Train.Labels[i] != Subset.Train.Labels[i - 1]) changes++;
        Assert.True(changes > 6000, $"{changes} label changes");
    }

    [Fact]
    public void Pixels_are_bytes_over_255_with_MNIST_like_intensity()
    {
        float min = float.MaxValue, max = float.MinValue;
        foreach (float v in Subset.Train.Pixels)
        {
            min = Math.Min(min, v);
            max = Math.Max(max, v);
            float scaled = v * 255;
            Assert.True(Math.Abs(scaled - MathF.Round(scaled)) < 1e-3, $"{v} is not a byte over 255");
        }
        Assert.Equal(0f, min);
        Assert.Equal(1f, max);
        // Full MNIST's pixel mean and std are 0.1307 and 0.3081; a faithful subset is close to both.
        ChannelStatistics stats = Subset.Train.ComputeChannelStatistics();
        Assert.InRange(stats.Mean[0], 0.12, 0.14);
        Assert.InRange(stats.Std[0], 0.29, 0.32);
    }

    [Fact]
    public void Digits_render_upright()
    {
        // The average "1" is a vertical stroke: its ink spreads far more along the rows than along the columns
        // (a transposed or scrambled conversion would not show this).
        var mean = new double[28 * 28];
        int[] ones = Enumerable.Range(0, Subset.Train.Count).Where(i => Subset.Train.Labels[i] == 1).ToArray();
        foreach (int i in ones)
        {
            ReadOnlySpan<float> image = Subset.Train.Image(i);
            for (int p = 0; p < mean.Length; p++) mean[p] += image[p] / ones.Length;
        }
        double Spread(Func<int, int> coordinate)
        {
            double mass = mean.Sum(), centre = Enumerable.Range(0, mean.Length).Sum(p => mean[p] * coordinate(p)) / mass;
            return Enumerable.Range(0, mean.Length).Sum(p => mean[p] * Math.Pow(coordinate(p) - centre, 2)) / mass;
        }
        double rowSpread = Spread(p => p / 28), columnSpread = Spread(p => p % 28);
        Assert.True(rowSpread > 3 * columnSpread, $"row variance {rowSpread:F2}, column variance {columnSpread:F2}");
        for (int k = 0; k < 3; k++) output.WriteLine($"label {Subset.Test.Labels[k]}:\n{Ascii(Subset.Test.Image(k))}");
    }

    private static string Ascii(ReadOnlySpan<float> image)
    {
        var text = new StringBuilder();
        for (int r = 0; r < 28; r++)
        {
            for (int c = 0; c < 28; c++) text.Append(image[r * 28 + c] switch { > 0.5f => '#', > 0.1f => '+', _ => '.' });
            text.AppendLine();
        }
        return text.ToString();
    }
}
