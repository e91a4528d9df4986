using NormSharp.Data;

namespace NormSharp.Tests.Data;

public class DataLoaderTests
{
    private static int[] SeenIds(IEnumerable<Batch> batches) =>
        batches.SelectMany(b => { using (b) return b.Images.ToArray().Where((_, i) => i % 4 == 0).Select(v => (int)v / 4).ToArray(); }).ToArray();

    [Theory]
    [InlineData(10, 3, false, 4, new[] { 3, 3, 3, 1 })]
    [InlineData(10, 3, true, 3, new[] { 3, 3, 3 })]
    [InlineData(9, 3, false, 3, new[] { 3, 3, 3 })]
    [InlineData(9, 3, true, 3, new[] { 3, 3, 3 })]
    [InlineData(2, 5, true, 0, new int[0])]
    public void Batch_count_and_sizes_follow_drop_last(int samples, int batchSize, bool dropLast, int expectedBatches, int[] expectedSizes)
    {
        var loader = new DataLoader(ImageClassificationDatasetTests.Numbered(samples), batchSize, seed: 1, dropLast: dropLast);
        Assert.Equal(expectedBatches, loader.BatchCount);
        Assert.Equal(expectedSizes, loader.Batches(0).Select(b => b.Count).ToArray());
    }

    [Fact]
    public void Replica_parts_of_each_batch_are_disjoint_and_together_are_the_batch()
    {
        var loader = new DataLoader(ImageClassificationDatasetTests.Numbered(103), 10, seed: 5);
        int[][] whole = loader.Batches(2).Select(b => { using (b) return SeenIds([b]); }).ToArray();
        var parts = Enumerable.Range(0, 3).Select(r => loader.Batches(2, r, 3).Select(b => { using (b) return SeenIds([b]); }).ToArray()).ToArray();
        for (int b = 0; b < whole.Length; b++)
        {
            Assert.Equal(whole[b], parts.SelectMany(p => p[b]).ToArray());
            Assert.True(parts.Max(p => p[b].Length) - parts.Min(p => p[b].Length) <= 1);
        }
    }

    [Fact]
    public void A_last_batch_smaller_than_the_replica_count_is_left_out_by_every_replica()
    {
        var loader = new DataLoader(ImageClassificationDatasetTests.Numbered(21), 10, seed: 5);
        Assert.All(Enumerable.Range(0, 2), r => Assert.Equal(new[] { 5, 5 }, loader.Batches(0, r, 2).Select(b => b.Count).ToArray()));
        Assert.Equal(new[] { 3, 3 }, loader.Batches(0, 1, 3).Select(b => b.Count).ToArray());
        Assert.Equal(new[] { 4, 4 }, loader.Batches(0, 2, 3).Select(b => b.Count).ToArray());
    }

    [Fact]
    public void Every_sample_is_seen_exactly_once_per_epoch()
    {
        var loader = new DataLoader(ImageClassificationDatasetTests.Numbered(103), 10, seed: 5);
        for (int epoch = 0; epoch < 3; epoch++)
            Assert.Equal(Enumerable.Range(0, 103), SeenIds(loader.Batches(epoch)).Order());
    }

    [Fact]
    public void Shuffle_is_reproducible_from_seed_and_epoch_and_differs_between_epochs()
    {
        var data = ImageClassificationDatasetTests.Numbered(50);
        int[] epoch0 = SeenIds(new DataLoader(data, 8, seed: 42).Batches(0));
        int[] epoch1 = SeenIds(new DataLoader(data, 8, seed: 42).Batches(1));
        Assert.Equal(epoch0, SeenIds(new DataLoader(data, 8, seed: 42).Batches(0)));
        Assert.Equal(epoch1, SeenIds(new DataLoader(data, 16, seed: 42).Batches(1)));
        Assert.NotEqual(epoch0, epoch1);
        Assert.NotEqual(epoch0, SeenIds(new DataLoader(data, 8, seed: 43).Batches(0)));
        Assert.NotEqual(Enumerable.Range(0, 50), epoch0);
    }

    [Fact]
    public void Without_shuffle_batches_follow_data_set_order()
    {
        var loader = new DataLoader(ImageClassificationDatasetTests.Numbered(7), 3, shuffle: false);
        Assert.Equal(Enumerable.Range(0, 7), SeenIds(loader.Batches(4)));
    }

    [Fact]
    public void Batch_holds_the_images_labels_indices_and_one_hot_rows_of_its_samples()
    {
        var data = ImageClassificationDatasetTests.Numbered(6);
        var loader = new DataLoader(data, 4, seed: 9, oneHotLabels: true);
        int[] order = loader.Order(2);
        using Batch batch = loader.Batches(2).First();
        Assert.Equal(order[..4], batch.Indices);
        Assert.Equal(new[] { 4, 1, 2, 2 }, batch.Images.Shape);
        Assert.Equal(order[..4].SelectMany(i => data.Image(i).ToArray()), batch.Images.ToArray());
        Assert.Equal(order[..4].Select(i => i % 3), batch.Labels);
        Assert.Equal(new[] { 4, 3 }, batch.OneHotLabels!.Shape);
        Assert.Equal(batch.Labels.SelectMany(l => Enumerable.Range(0, 3).Select(c => c == l ? 1f : 0f)), batch.OneHotLabels.ToArray());
        var (images, labels) = batch;
        Assert.Same(batch.Images, images);
        Assert.Same(batch.Labels, labels);
    }

    [Fact]
    public void Batches_carry_no_one_hot_rows_unless_asked()
    {
        using Batch batch = new DataLoader(ImageClassificationDatasetTests.Numbered(3), 2).Batches(0).First();
        Assert.Null(batch.OneHotLabels);
    }

    [Fact]
    public void Invalid_batch_size_names_the_data_set()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new DataLoader(ImageClassificationDatasetTests.Numbered(3), 0));
        Assert.StartsWith("DataLoader('numbered'): the batch size must be positive, got 0.", e.Message);
    }
}
