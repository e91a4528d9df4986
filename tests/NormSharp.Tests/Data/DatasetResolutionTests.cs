using System.Security.Cryptography;
using NormSharp.Data;

namespace NormSharp.Tests.Data;

/// <summary>Resolution reads the process-wide NORMSHARP_CACHE variable, so these tests must not run in parallel
/// with each other or with anything else that sets it.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class EnvironmentCollection
{
    public const string Name = "Process environment";
}

[Collection(EnvironmentCollection.Name)]
public class DatasetResolutionTests : IDisposable
{
    private static readonly string[] MnistFiles = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

    private readonly TempFolder _folder = new();
    private readonly string? _savedCache = Environment.GetEnvironmentVariable(DatasetOptions.CacheEnvironmentVariable);

    public void Dispose()
    {
        Environment.SetEnvironmentVariable(DatasetOptions.CacheEnvironmentVariable, _savedCache);
        _folder.Dispose();
    }

    // Writes a tiny MNIST-style data set (trainCount + 2 images of 2 × 3) whose first pixel byte is `marker`, so a
    // test can tell which folder a load came from.
    private string WriteDataset(string folder, byte marker, int trainCount = 3, bool gzip = true, string prefix = "", string testPrefix = "t10k")
    {
        Directory.CreateDirectory(folder);
        void Write(string name, IdxArray array) => IdxWriter.Write(Path.Combine(folder, name + (gzip ? ".gz" : "")), array, gzip);
        IdxArray Images(int n) => new([n, 2, 3], Enumerable.Range(0, 6 * n).Select(i => i == 0 ? marker : (byte)i).ToArray());
        IdxArray Labels(int n) => new([n], Enumerable.Range(0, n).Select(i => (byte)(i % 10)).ToArray());
        Write($"{prefix}train-images-idx3-ubyte", Images(trainCount));
        Write($"{prefix}train-labels-idx1-ubyte", Labels(trainCount));
        Write($"{prefix}{testPrefix}-images-idx3-ubyte", Images(2));
        Write($"{prefix}{testPrefix}-labels-idx1-ubyte", Labels(2));
        return folder;
    }

    private static byte Marker(LoadedDataset loaded) => (byte)Math.Round(loaded.Train.Pixels[0] * 255);

    private DatasetOptions Offline(string? dataDirectory = null) => new()
    {
        DataDirectory = dataDirectory,
        CacheRoot = Path.Combine(_folder.Path, "cache"),
        SystemDataRoot = Path.Combine(_folder.Path, "system"),
        AllowDownload = false,
    };

    [Fact]
    public void Explicit_data_directory_beats_the_cache()
    {
        WriteDataset(Path.Combine(_folder.Path, "cache", "mnist"), marker: 200);
        string explicitFolder = WriteDataset(Path.Combine(_folder.Path, "mine"), marker: 100, gzip: false);
        LoadedDataset loaded = Datasets.Load("mnist", Offline(explicitFolder));
        Assert.Equal(DatasetSource.DataDirectory, loaded.Source);
        Assert.Equal(explicitFolder, loaded.Location);
        Assert.Equal(100, Marker(loaded));
        Assert.Equal(3, loaded.Train.Count);
        Assert.Equal(2, loaded.Test.Count);
        Assert.Equal("mnist (train)", loaded.Train.Name);
    }

    [Fact]
    public void Explicit_data_directory_may_hold_the_data_set_in_a_subfolder_named_after_it()
    {
        WriteDataset(Path.Combine(_folder.Path, "data", "fashion-mnist"), marker: 77);
        LoadedDataset loaded = Datasets.Load("Fashion-MNIST", Offline(Path.Combine(_folder.Path, "data")));
        Assert.Equal(77, Marker(loaded));
        Assert.Equal("Ankle boot", loaded.Train.ClassNames[9]);
    }

    [Fact]
    public void Explicit_data_directory_without_the_files_is_an_error_not_a_fallback()
    {
        WriteDataset(Path.Combine(_folder.Path, "cache", "mnist"), marker: 200);
        string empty = Directory.CreateDirectory(Path.Combine(_folder.Path, "empty")).FullName;
        var e = Assert.Throws<FileNotFoundException>(() => Datasets.Load("mnist", Offline(empty)));
        Assert.Equal($"The data directory {empty} does not hold mnist: expected {string.Join(", ", MnistFiles)} (raw or .gz) in {empty} or {Path.Combine(empty, "mnist")}.", e.Message);
    }

    [Fact]
    public void Cache_root_comes_from_the_environment_variable()
    {
        string root = Path.Combine(_folder.Path, "env-cache");
        WriteDataset(Path.Combine(root, "mnist"), marker: 42);
        Environment.SetEnvironmentVariable(DatasetOptions.CacheEnvironmentVariable, root);
        Assert.Equal(root, Datasets.CacheRoot());
        LoadedDataset loaded = Datasets.Load("mnist", new DatasetOptions { AllowDownload = false, SystemDataRoot = _folder.Path });
        Assert.Equal(DatasetSource.Cache, loaded.Source);
        Assert.Equal(Path.Combine(root, "mnist"), loaded.Location);
        Assert.Equal(42, Marker(loaded));
    }

    [Fact]
    public void Cache_root_defaults_to_dot_cache_in_the_home_folder()
    {
        Environment.SetEnvironmentVariable(DatasetOptions.CacheEnvironmentVariable, null);
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        Assert.Equal(Path.Combine(home, ".cache", "normsharp"), Datasets.CacheRoot());
        Assert.Equal("/elsewhere", Datasets.CacheRoot(new DatasetOptions { CacheRoot = "/elsewhere" }));
    }

    [Fact]
    public void Fashion_mnist_is_found_in_the_system_package_folder_after_the_cache()
    {
        WriteDataset(Path.Combine(_folder.Path, "system", "fashion-mnist"), marker: 9);
        LoadedDataset loaded = Datasets.Load("fashion-mnist", Offline());
        Assert.Equal(DatasetSource.SystemPackage, loaded.Source);
        Assert.Equal(9, Marker(loaded));
        WriteDataset(Path.Combine(_folder.Path, "cache", "fashion-mnist"), marker: 8);
        Assert.Equal(8, Marker(Datasets.Load("fashion-mnist", Offline())));
    }

    [Fact]
    public void Mnist_found_nowhere_offline_falls_back_to_the_embedded_subset_and_says_why()
    {
        var log = new List<string>();
        LoadedDataset loaded = Datasets.Load("mnist", Offline());
        Assert.Equal(DatasetSource.Embedded, loaded.Source);
        Assert.Equal(8000, loaded.Train.Count);
        Datasets.Load("mnist", new DatasetOptions { CacheRoot = Path.Combine(_folder.Path, "cache"), AllowDownload = false, Log = log.Add });
        Assert.Equal($"mnist not found (the cache {Path.Combine(_folder.Path, "cache", "mnist")}: not there; download: not allowed); using the embedded 10,000-digit subset", Assert.Single(log));
    }

    [Fact]
    public void Fashion_mnist_found_nowhere_lists_every_place_tried()
    {
        var e = Assert.Throws<FileNotFoundException>(() => Datasets.Load("fashion-mnist", Offline()));
        string cache = Path.Combine(_folder.Path, "cache", "fashion-mnist");
        Assert.Equal($"Could not find the data set fashion-mnist. Tried the cache {cache}: not there; " +
            $"{Path.Combine(_folder.Path, "system", "fashion-mnist")}: not there (on Debian: apt-get install dataset-fashion-mnist); download: not allowed. " +
            $"Put {string.Join(", ", MnistFiles)} (raw or .gz) in {cache}, or pass a data directory.", e.Message);
    }

    [Fact]
    public void Corrupt_file_in_the_cache_is_reported_rather_than_skipped()
    {
        string cache = WriteDataset(Path.Combine(_folder.Path, "cache", "mnist"), marker: 1, gzip: false);
        string labels = Path.Combine(cache, "t10k-labels-idx1-ubyte");
        File.WriteAllBytes(labels, File.ReadAllBytes(labels)[..^1]);
        var e = Assert.Throws<InvalidDataException>(() => Datasets.Load("mnist", Offline()));
        Assert.Equal($"{labels}: expected 2 bytes of data after the 8-byte header (2 unsigned bytes), found 1.", e.Message);
    }

    [Fact]
    public void Unknown_name_lists_the_known_ones()
    {
        var e = Assert.Throws<ArgumentException>(() => Datasets.Load("cifar-10", Offline()));
        Assert.StartsWith("Unknown data set 'cifar-10'; known data sets: mnist-subset, mnist, fashion-mnist, emnist-digits, emnist-mnist, emnist-letters, emnist-balanced, emnist-bymerge, emnist-byclass.", e.Message);
    }

    [Fact]
    public void Emnist_images_are_transposed_upright_and_letters_keep_class_zero_unused()
    {
        string folder = Path.Combine(_folder.Path, "cache", "emnist-letters");
        Directory.CreateDirectory(folder);
        // One 2 × 3 image stored transposed (EMNIST's column-first layout): the stored rows are the image's columns.
        foreach (string part in new[] { "train", "test" })
        {
            IdxWriter.Write(Path.Combine(folder, $"emnist-letters-{part}-images-idx3-ubyte"), new IdxArray([1, 3, 2], [0, 51, 102, 153, 204, 255]));
            IdxWriter.Write(Path.Combine(folder, $"emnist-letters-{part}-labels-idx1-ubyte"), new IdxArray([1], [26]));
        }
        LoadedDataset loaded = Datasets.Load("emnist-letters", Offline());
        Assert.Equal(new[] { 1, 1, 2, 3 }, loaded.Train.Shape);
        Assert.Equal(new[] { 0f, 0.4f, 0.8f, 0.2f, 0.6f, 1f }, loaded.Train.Pixels.ToArray());
        Assert.Equal(27, loaded.Train.ClassCount);
        Assert.Equal("z", loaded.Train.ClassNames[26]);
    }

    [Fact]
    public void Download_verifies_checksums_and_falls_back_to_the_embedded_subset_on_mismatch()
    {
        var log = new List<string>();
        var requested = new List<Uri>();
        var options = new DatasetOptions
        {
            CacheRoot = Path.Combine(_folder.Path, "cache"),
            OpenUrl = url => { requested.Add(url); return new MemoryStream([1, 2, 3]); },
            Log = log.Add,
        };
        LoadedDataset loaded = Datasets.Load("mnist", options);
        Assert.Equal(DatasetSource.Embedded, loaded.Source);
        Assert.Equal(new Uri("https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz"), requested[0]);
        Assert.Equal(new Uri("http://yann.lecun.com/exdb/mnist/train-images-idx3-ubyte.gz"), requested[1]);
        Assert.Contains(log, l => l.Contains("checksum mismatch (MD5 5289df737df57326fcdd22597afb1fac, expected f68b3c2dcbeaaa9fbdd348bbdeb94873)"));
        Assert.Empty(Directory.GetFiles(Path.Combine(_folder.Path, "cache", "mnist")));
    }

    [Fact]
    public void Downloader_tries_the_next_mirror_and_places_a_verified_file_atomically()
    {
        byte[] content = [10, 20, 30, 40];
        string md5 = Convert.ToHexStringLower(MD5.HashData(content));
        string folder = Path.Combine(_folder.Path, "downloads");
        Stream Open(Uri url) => url.Host == "down.example" ? throw new HttpRequestException("connection refused") : new MemoryStream(content);
        string path = DatasetDownloader.Download(["http://down.example/", "http://up.example/"], "file.gz", md5, folder, Open, null);
        Assert.Equal(Path.Combine(folder, "file.gz"), path);
        Assert.Equal(content, File.ReadAllBytes(path));
        Assert.Equal(new[] { path }, Directory.GetFiles(folder));
        var e = Assert.Throws<IOException>(() => DatasetDownloader.Download(["http://down.example/"], "other.gz", md5, folder, Open, null));
        Assert.Equal("Could not download other.gz: http://down.example/other.gz: connection refused.", e.Message);
    }

    [Fact]
    public void Download_fetches_only_the_files_missing_from_the_cache()
    {
        string cache = WriteDataset(Path.Combine(_folder.Path, "cache", "mnist"), marker: 1);
        File.Delete(Path.Combine(cache, "t10k-labels-idx1-ubyte.gz"));
        var requested = new List<string>();
        Datasets.Load("mnist", new DatasetOptions
        {
            CacheRoot = Path.Combine(_folder.Path, "cache"),
            OpenUrl = url => { requested.Add(url.Segments[^1]); throw new HttpRequestException("offline"); },
        });
        Assert.Equal(new[] { "t10k-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz" }, requested);
    }
}
