namespace NormSharp.Data;

/// <summary>Where <see cref="Datasets.Load"/> may look for a data set, and whether it may use the network.</summary>
public sealed class DatasetOptions
{
    /// <summary>The environment variable that overrides the cache root (default ~/.cache/normsharp).</summary>
    public const string CacheEnvironmentVariable = "NORMSHARP_CACHE";

    /// <summary>An explicit folder holding the IDX files (directly or in a subfolder named after the data set). When
    /// set, it is the only place looked at, and its absence is an error rather than a reason to look elsewhere.</summary>
    public string? DataDirectory { get; init; }

    /// <summary>The cache root; data set "name" is cached in &lt;root&gt;/name. Null means the
    /// <see cref="CacheEnvironmentVariable"/> variable if set, else ~/.cache/normsharp.</summary>
    public string? CacheRoot { get; init; }

    /// <summary>The root under which system packages install data sets (the Debian package dataset-fashion-mnist
    /// installs /usr/share/datasets/fashion-mnist).</summary>
    public string SystemDataRoot { get; init; } = "/usr/share/datasets";

    /// <summary>Whether a data set missing locally may be downloaded from its official mirrors into the cache.</summary>
    public bool AllowDownload { get; init; } = true;

    /// <summary>How long one download may take before the next mirror is tried.</summary>
    public TimeSpan DownloadTimeout { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>Opens a URL for reading; null uses an <see cref="System.Net.Http.HttpClient"/> with a 10-second
    /// connect timeout and <see cref="DownloadTimeout"/>. Replace it to test or to route through a proxy.</summary>
    public Func<Uri, Stream>? OpenUrl { get; init; }

    /// <summary>Receives one line per step taken (places tried, downloads), for progress output; may be null.</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>Where a loaded data set came from.</summary>
public enum DatasetSource
{
    /// <summary>The folder given in <see cref="DatasetOptions.DataDirectory"/>.</summary>
    DataDirectory,
    /// <summary>The cache folder (~/.cache/normsharp/&lt;name&gt; or the one NORMSHARP_CACHE names).</summary>
    Cache,
    /// <summary>A folder installed by a system package (such as Debian's dataset-fashion-mnist).</summary>
    SystemPackage,
    /// <summary>Downloaded from an official mirror into the cache during this call.</summary>
    Download,
    /// <summary>The 10,000-digit MNIST subset embedded in the library.</summary>
    Embedded,
}

/// <summary>A data set's training and test parts and where they were found.</summary>
/// <param name="Name">The data set's name ("mnist", "fashion-mnist", ...).</param>
/// <param name="Train">The training part.</param>
/// <param name="Test">The test part.</param>
/// <param name="Source">Which kind of place the files came from.</param>
/// <param name="Location">The folder the files were read from, or the resource names of the embedded subset.</param>
public sealed record LoadedDataset(string Name, ImageClassificationDataset Train, ImageClassificationDataset Test, DatasetSource Source, string Location);
