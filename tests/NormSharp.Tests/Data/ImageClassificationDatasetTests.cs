using NormSharp.Data;

namespace NormSharp.Tests.Data;

public class ImageClassificationDatasetTests
{
    // n single-channel 2 × 2 images; image i has pixels 4i, 4i+1, 4i+2, 4i+3 and label i mod 3.
    internal static ImageClassificationDataset Numbered(int n, int classCount = 3) =>
        new(Enumerable.Range(0, 4 * n).Select(v => (float)v).ToArray(), Enumerable.Range(0, n).Select(i => i % classCount).ToArray(), 1, 2, 2, classCount, "numbered");

    [Fact]
    public void FromIdx_scales_bytes_to_unit_interval_in_NCHW()
    {
        var images = new IdxArray([2, 1, 3], [0, 51, 255, 102, 204, 153]);
        var labels = new IdxArray([2], [7, 2]);
        var data = ImageClassificationDataset.FromIdx(images, labels, 10, "tiny");
        Assert.Equal(new[] { 2, 1, 1, 3 }, data.Shape);
        Assert.Equal(new[] { 0f, 0.2f, 1f, 0.4f, 0.8f, 0.6f }, data.Pixels.ToArray());
        Assert.Equal(new[] { 7, 2 }, data.Labels.ToArray());
        Assert.Equal(new[] { 0.4f, 0.8f, 0.6f }, data.Image(1).ToArray());
        Assert.Equal(new[] { 0, 0.2f, 1f, 0.4f, 0.8f, 0.6f }, data.ToTensor().ToArray());
    }

    [Fact]
    public void FromIdx_rejects_mismatched_counts_and_out_of_range_labels()
    {
        var images = new IdxArray([2, 1, 1], [1, 2]);
        var e = Assert.Throws<InvalidDataException>(() => ImageClassificationDataset.FromIdx(images, new IdxArray([3], [0, 1, 2]), 10, "mnist (train)"));
        Assert.Equal("mnist (train): there are 2 images but 3 labels.", e.Message);
        e = Assert.Throws<InvalidDataException>(() => ImageClassificationDataset.FromIdx(images, new IdxArray([2], [0, 10]), 10, "mnist (train)"));
        Assert.Equal("mnist (train): label 10 of sample 1 is outside [0, 10).", e.Message);
        e = Assert.Throws<InvalidDataException>(() => ImageClassificationDataset.FromIdx(new IdxArray([2], [1, 2]), new IdxArray([2], [0, 1]), 10, "mnist (train)"));
        Assert.Equal("mnist (train): images must be an IDX array of shape (count, rows, columns), got (2,).", e.Message);
    }

    [Fact]
    public void Constructor_rejects_a_pixel_count_that_does_not_match_the_shape()
    {
        var e = Assert.Throws<ArgumentException>(() => new ImageClassificationDataset(new float[10], [0, 1], 1, 2, 2, 2, "bad"));
        Assert.StartsWith("ImageClassificationDataset('bad'): 2 images of shape (1, 2, 2) need 8 pixels, but 10 were given.", e.Message);
    }

    [Fact]
    public void Subset_copies_the_selected_samples_in_order()
    {
        var subset = Numbered(5).Subset([4, 1, 1]);
        Assert.Equal(new float[] { 16, 17, 18, 19, 4, 5, 6, 7, 4, 5, 6, 7 }, subset.Pixels.ToArray());
        Assert.Equal(new[] { 1, 1, 1 }, subset.Labels.ToArray());
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Numbered(5).Subset([0, 5]));
        Assert.StartsWith("Subset of 'numbered': index 5 at position 1 is outside [0, 5).", e.Message);
    }

    [Fact]
    public void Split_has_the_requested_sizes_is_disjoint_covers_everything_and_is_reproducible()
    {
        var data = Numbered(100);
        var (train, validation) = data.Split(0.2, seed: 7);
        Assert.Equal(80, train.Count);
        Assert.Equal(20, validation.Count);
        // Pixel 0 of each numbered image identifies it (4 × index).
        int[] Ids(ImageClassificationDataset d) => Enumerable.Range(0, d.Count).Select(i => (int)d.Image(i)[0] / 4).ToArray();
        int[] trainIds = Ids(train), validationIds = Ids(validation);
        Assert.Empty(trainIds.Intersect(validationIds));
        Assert.Equal(Enumerable.Range(0, 100), trainIds.Concat(validationIds).Order());
        Assert.Equal(trainIds.Order(), trainIds);
        Assert.Equal(validationIds, Ids(data.Split(0.2, seed: 7).Validation));
        Assert.NotEqual(validationIds, Ids(data.Split(0.2, seed: 8).Validation));
        Assert.All(validationIds, id => Assert.Equal(id % 3, validation.Labels[Array.IndexOf(validationIds, id)]));
    }

    [Fact]
    public void Split_rejects_fractions_that_leave_a_part_empty()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Numbered(10).Split(0, 1));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Numbered(10).Split(0.01, 1));
        Assert.StartsWith("Split of 'numbered': a fraction of 0.01 of 10 samples leaves one part empty.", e.Message);
    }

    [Fact]
    public void Channel_statistics_match_the_population_formula()
    {
        // Two 2-channel 1 × 2 images: channel 0 holds {1, 2, 3, 4}, channel 1 holds {10, 10, 10, 10}.
        var data = new ImageClassificationDataset([1, 2, 10, 10, 3, 4, 10, 10], [0, 1], 2, 1, 2, 2);
        ChannelStatistics stats = data.ComputeChannelStatistics();
        Assert.Equal(new[] { 2.5, 10 }, stats.Mean);
        Assert.Equal(Math.Sqrt(1.25), stats.Std[0], 12);
        Assert.Equal(0, stats.Std[1]);
        var standardized = data.Standardize(stats);
        float s = (float)(1 / Math.Sqrt(1.25));
        Assert.Equal(new[] { -1.5f * s, -0.5f * s, 0, 0, 0.5f * s, 1.5f * s, 0, 0 }, standardized.Pixels.ToArray());
        Assert.Equal(1f, data.Pixels[0]);
    }

    [Fact]
    public void Standardizing_with_train_statistics_gives_zero_mean_unit_std_on_train_only()
    {
        var generator = new RandomGenerator(3);
        var pixels = Enumerable.Range(0, 300 * 16).Select(_ => (float)(0.3 + 0.2 * generator.NextDouble())).ToArray();
        var data = new ImageClassificationDataset(pixels, new int[300], 1, 4, 4, 1);
        var (train, validation) = data.Split(0.3, seed: 1);
        ChannelStatistics trainStats = train.ComputeChannelStatistics();
        ChannelStatistics after = train.Standardize(trainStats).ComputeChannelStatistics();
        Assert.Equal(0, after.Mean[0], 5);
        Assert.Equal(1, after.Std[0], 5);
        // The validation part is transformed with the train statistics, so its own are close but not exactly 0 and 1.
        ChannelStatistics validationAfter = validation.Standardize(trainStats).ComputeChannelStatistics();
        double expectedMean = (validation.ComputeChannelStatistics().Mean[0] - trainStats.Mean[0]) / trainStats.Std[0];
        Assert.Equal(expectedMean, validationAfter.Mean[0], 5);
    }

    [Fact]
    public void OneHot_sets_one_column_per_row()
    {
        Tensor oneHot = LabelEncoding.OneHot([2, 0, 1], 3);
        Assert.Equal(new[] { 3, 3 }, oneHot.Shape);
        Assert.Equal(new float[] { 0, 0, 1, 1, 0, 0, 0, 1, 0 }, oneHot.ToArray());
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => LabelEncoding.OneHot([3], 3));
        Assert.StartsWith("OneHot: label 3 at position 0 is outside [0, 3).", e.Message);
    }

    [Fact]
    public void Class_counts_tally_the_labels() => Assert.Equal(new[] { 4, 3, 3 }, Numbered(10).ClassCounts());
}
