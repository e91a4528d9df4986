namespace NormSharp.Data;

/// <summary>What NormSharp knows about one named data set: its file names, classes and where it may be found.</summary>
/// <param name="Name">The name users pass to <see cref="Datasets.Load"/>.</param>
/// <param name="TrainPrefix">Starts the training files' names ("train" for MNIST, "emnist-digits-train" for EMNIST).</param>
/// <param name="TestPrefix">Starts the test files' names ("t10k" for MNIST, "emnist-digits-test" for EMNIST).</param>
/// <param name="ClassNames">One name per class index.</param>
/// <param name="Mirrors">Base URLs the four gzip files can be downloaded from, tried in order.</param>
/// <param name="Md5">The MD5 of each downloadable gzip file, by file name (from torchvision's tables).</param>
/// <param name="SystemDirectory">A folder a system package installs the files into, or null.</param>
/// <param name="EmbeddedFallback">Whether the embedded MNIST subset stands in when nothing else is found.</param>
/// <param name="Transposed">Whether the files store each image transposed (EMNIST does), so it is flipped upright.</param>
internal sealed record DatasetSpec(string Name, string TrainPrefix, string TestPrefix, string[] ClassNames, string[] Mirrors,
    IReadOnlyDictionary<string, string> Md5, string? SystemDirectory, bool EmbeddedFallback, bool Transposed)
{
    public string TrainImages => $"{TrainPrefix}-images-idx3-ubyte";
    public string TrainLabels => $"{TrainPrefix}-labels-idx1-ubyte";
    public string TestImages => $"{TestPrefix}-images-idx3-ubyte";
    public string TestLabels => $"{TestPrefix}-labels-idx1-ubyte";

    /// <summary>The four file names without the optional ".gz": train images, train labels, test images, test labels.</summary>
    public string[] Files => [TrainImages, TrainLabels, TestImages, TestLabels];
}

/// <summary>The data sets <see cref="Datasets.Load"/> knows by name.</summary>
internal static class DatasetCatalog
{
    /// <summary>The name of the MNIST subset embedded in the library.</summary>
    public const string EmbeddedName = "mnist-subset";

    private static readonly string[] Digits = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    private static readonly string[] Upper = Enumerable.Range('A', 26).Select(c => ((char)c).ToString()).ToArray();
    private static readonly string[] Lower = Enumerable.Range('a', 26).Select(c => ((char)c).ToString()).ToArray();

    // EMNIST's balanced and by_merge splits merge the lower-case letters that look like their capitals
    // (c, i, j, k, l, m, o, p, s, u, v, w, x, y, z); Cohen et al. 2017, "EMNIST: an extension of MNIST to
    // handwritten letters".
    private static readonly string[] UnmergedLower = ["a", "b", "d", "e", "f", "g", "h", "n", "q", "r", "t"];

    private static readonly DatasetSpec[] All =
    [
        new("mnist", "train", "t10k", Digits,
            ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"],
            new Dictionary<string, string>
            {
                ["train-images-idx3-ubyte.gz"] = "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                ["train-labels-idx1-ubyte.gz"] = "d53e105ee54ea40749a09fcbcd1e9432",
                ["t10k-images-idx3-ubyte.gz"] = "9fb629c4189551a2d022fa330f9573f3",
                ["t10k-labels-idx1-ubyte.gz"] = "ec29112dd5afa0611ce80d1b7f02629c",
            },
            SystemDirectory: null, EmbeddedFallback: true, Transposed: false),
        new("fashion-mnist", "train", "t10k",
            ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
            ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
            new Dictionary<string, string>
            {
                ["train-images-idx3-ubyte.gz"] = "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                ["train-labels-idx1-ubyte.gz"] = "25c81989df183df01b3e8a0aad5dffbe",
                ["t10k-images-idx3-ubyte.gz"] = "bef4ecab320f06d8554ea6380940ec79",
                ["t10k-labels-idx1-ubyte.gz"] = "bb300cfdad3c16e7a12a480ee83cd310",
            },
            // Installed by the Debian package dataset-fashion-mnist (train-images-idx3-ubyte.gz, ..., t10k-labels-idx1-ubyte.gz).
            SystemDirectory: "fashion-mnist", EmbeddedFallback: false, Transposed: false),
        Emnist("digits", Digits),
        Emnist("mnist", Digits),
        Emnist("letters", ["N/A", .. Lower]),
        Emnist("balanced", [.. Digits, .. Upper, .. UnmergedLower]),
        Emnist("bymerge", [.. Digits, .. Upper, .. UnmergedLower]),
        Emnist("byclass", [.. Digits, .. Upper, .. Lower]),
    ];

    // EMNIST is published as one 535 MB zip of all splits; it is read from a data or cache folder, not downloaded.
    // Its letters split labels a..z as 1..26, hence the unused class 0.
    private static DatasetSpec Emnist(string split, string[] classNames) =>
        new($"emnist-{split}", $"emnist-{split}-train", $"emnist-{split}-test", classNames, [], new Dictionary<string, string>(), null, EmbeddedFallback: false, Transposed: true);

    /// <summary>Every name <see cref="Datasets.Load"/> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = [EmbeddedName, .. All.Select(s => s.Name)];

    /// <summary>The data set called <paramref name="name"/> (case-insensitive), or null.</summary>
    public static DatasetSpec? Find(string name) => All.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase));
}
