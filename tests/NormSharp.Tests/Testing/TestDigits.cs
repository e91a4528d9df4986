using NormSharp.Data;

namespace NormSharp.Tests.Testing;

/// <summary>The first images of the embedded MNIST subset, for training tests that need real digits but no download.</summary>
internal static class TestDigits
{
    private static readonly Lazy<LoadedDataset> s_digits = new(() => Datasets.Load(DatasetCatalog.EmbeddedName, new DatasetOptions { AllowDownload = false }));

    /// <summary>The first <paramref name="count"/> training images.</summary>
    public static ImageClassificationDataset Train(int count) => s_digits.Value.Train.Subset(Enumerable.Range(0, count).ToArray());
}
