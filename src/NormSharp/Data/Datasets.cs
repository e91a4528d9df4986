using System.Reflection;

namespace NormSharp.Data;

/// <summary>
/// Finds and loads the image classification data sets NormSharp knows by name: "mnist", "fashion-mnist",
/// "emnist-&lt;split&gt;" (digits, mnist, letters, balanced, bymerge, byclass) and "mnist-subset", the 10,000 real MNIST
/// digits embedded in the library (8,000 for training, 2,000 for testing), which needs no files and no network.
/// </summary>
/// <remarks>
/// Places are tried in this order, and the first that holds all four IDX files (raw or .gz) wins:
/// <list type="number">
/// <item>an explicit <see cref="DatasetOptions.DataDirectory"/> (or its subfolder named after the data set); when
/// given, nothing else is tried;</item>
/// <item>the cache folder &lt;cache root&gt;/&lt;name&gt; (~/.cache/normsharp, or the folder named by NORMSHARP_CACHE);</item>
/// <item>a system package's folder: /usr/share/datasets/fashion-mnist from Debian's dataset-fashion-mnist;</item>
/// <item>a download from the official mirrors (MNIST, Fashion-MNIST) into the cache, each file checked against its
/// published MD5 and moved into place only when complete, if <see cref="DatasetOptions.AllowDownload"/>;</item>
/// <item>for "mnist" only, the embedded subset.</item>
/// </list>
/// A file that is found but corrupt raises an <see cref="InvalidDataException"/> instead of falling through.
/// </remarks>
public static class Datasets
{
    private const string ResourcePrefix = "NormSharp.Data.";

    /// <summary>Every data set name <see cref="Load"/> accepts.</summary>
    public static IReadOnlyList<string> Names => DatasetCatalog.Names;

    /// <summary>The cache root in effect: <paramref name="options"/>' CacheRoot, else the NORMSHARP_CACHE environment
    /// variable, else ~/.cache/normsharp.</summary>
    public static string CacheRoot(DatasetOptions? options = null)
    {
        if (options?.CacheRoot is { Length: > 0 } root) return root;
        if (Environment.GetEnvironmentVariable(DatasetOptions.CacheEnvironmentVariable) is { Length: > 0 } fromEnvironment) return fromEnvironment;
        return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "normsharp");
    }

    /// <summary>Loads the training and test parts of the data set called <paramref name="name"/>
    /// (case-insensitive), looking for it in the order described on <see cref="Datasets"/>.</summary>
    /// <exception cref="ArgumentException">The name is unknown.</exception>
    /// <exception cref="FileNotFoundException">The data set was found nowhere; the message lists each place tried.</exception>
    /// <exception cref="InvalidDataException">A file was found but is corrupt.</exception>
    public static LoadedDataset Load(string name, DatasetOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        options ??= new DatasetOptions();
        if (string.Equals(name, DatasetCatalog.EmbeddedName, StringComparison.OrdinalIgnoreCase)) return LoadEmbedded(DatasetCatalog.EmbeddedName);
        DatasetSpec spec = DatasetCatalog.Find(name)
            ?? throw new ArgumentException($"Unknown data set '{name}'; known data sets: {string.Join(", ", Names)}.", nameof(name));

        if (options.DataDirectory is string dataDirectory)
        {
            foreach (string folder in new[] { dataDirectory, Path.Combine(dataDirectory, spec.Name) })
                if (HoldsFiles(spec, folder)) return LoadFolder(spec, folder, DatasetSource.DataDirectory);
            throw new FileNotFoundException($"The data directory {dataDirectory} does not hold {spec.Name}: expected {FileList(spec)} " +
                $"(raw or .gz) in {dataDirectory} or {Path.Combine(dataDirectory, spec.Name)}.");
        }

        var tried = new List<string>();
        string cache = Path.Combine(CacheRoot(options), spec.Name);
        if (HoldsFiles(spec, cache)) return LoadFolder(spec, cache, DatasetSource.Cache);
        tried.Add($"the cache {cache}: not there");

        if (spec.SystemDirectory is string systemName)
        {
            string system = Path.Combine(options.SystemDataRoot, systemName);
            if (HoldsFiles(spec, system)) return LoadFolder(spec, system, DatasetSource.SystemPackage);
            tried.Add($"{system}: not there (on Debian: apt-get install dataset-{spec.Name})");
        }

        if (spec.Mirrors.Length > 0)
        {
            if (!options.AllowDownload) tried.Add("download: not allowed");
            else if (TryDownload(spec, cache, options, out string? failure)) return LoadFolder(spec, cache, DatasetSource.Download);
            else tried.Add($"download: {failure}");
        }

        if (spec.EmbeddedFallback)
        {
            options.Log?.Invoke($"{spec.Name} not found ({string.Join("; ", tried)}); using the embedded 10,000-digit subset");
            return LoadEmbedded(spec.Name);
        }
        throw new FileNotFoundException($"Could not find the data set {spec.Name}. Tried {string.Join("; ", tried)}. " +
            $"Put {FileList(spec)} (raw or .gz) in {cache}, or pass a data directory.");
    }

    private static bool HoldsFiles(DatasetSpec spec, string folder) => spec.Files.All(f => FindFile(folder, f) is not null);

    // The raw file if present, else the gzip one; the reader detects compression from the content either way.
    private static string? FindFile(string folder, string file)
    {
        string raw = Path.Combine(folder, file);
        if (File.Exists(raw)) return raw;
        return File.Exists(raw + ".gz") ? raw + ".gz" : null;
    }

    private static string FileList(DatasetSpec spec) => string.Join(", ", spec.Files);

    private static LoadedDataset LoadFolder(DatasetSpec spec, string folder, DatasetSource source)
    {
        IdxArray Read(string file) => IdxReader.Read(FindFile(folder, file)!);
        ImageClassificationDataset Part(string images, string labels, string part)
        {
            IdxArray pixels = Read(images);
            if (spec.Transposed && pixels.Dimensions.Count == 3) pixels = TransposeImages(pixels);
            return ImageClassificationDataset.FromIdx(pixels, Read(labels), spec.ClassNames.Length, $"{spec.Name} ({part})", spec.ClassNames);
        }
        return new LoadedDataset(spec.Name, Part(spec.TrainImages, spec.TrainLabels, "train"), Part(spec.TestImages, spec.TestLabels, "test"), source, folder);
    }

    private static bool TryDownload(DatasetSpec spec, string cache, DatasetOptions options, out string? failure)
    {
        Func<Uri, Stream> open = options.OpenUrl ?? DatasetDownloader.HttpOpener(options.DownloadTimeout);
        try
        {
            foreach (string file in spec.Files)
            {
                // A file already in the cache (from an earlier, partly failed download) is not fetched again.
                if (FindFile(cache, file) is not null) continue;
                string gz = file + ".gz";
                DatasetDownloader.Download(spec.Mirrors, gz, spec.Md5[gz], cache, open, options.Log);
            }
            failure = null;
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            failure = e.Message.TrimEnd('.');
            options.Log?.Invoke(e.Message);
            return false;
        }
    }

    private static LoadedDataset LoadEmbedded(string name)
    {
        string[] classes = DatasetCatalog.Find("mnist")!.ClassNames;
        ImageClassificationDataset Part(string part) => ImageClassificationDataset.FromIdx(
            ReadResource($"mnist-subset-{part}-images-idx3-ubyte.gz"), ReadResource($"mnist-subset-{part}-labels-idx1-ubyte.gz"),
            classes.Length, $"{DatasetCatalog.EmbeddedName} ({part})", classes);
        return new LoadedDataset(name, Part("train"), Part("test"), DatasetSource.Embedded, $"embedded resources {ResourcePrefix}mnist-subset-*");
    }

    private static IdxArray ReadResource(string file)
    {
        string resource = ResourcePrefix + file;
        using Stream stream = typeof(Datasets).Assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"The embedded resource {resource} is missing from {typeof(Datasets).Assembly.GetName().Name}.");
        return IdxReader.Read(stream, $"embedded resource {resource}");
    }

    // EMNIST stores each image transposed relative to MNIST (columns first); flipping it back makes the characters
    // upright so that MNIST-trained intuition and plots apply.
    private static IdxArray TransposeImages(IdxArray images)
    {
        int count = images.Dimensions[0], rows = images.Dimensions[1], columns = images.Dimensions[2];
        var data = new byte[images.Data.Length];
        int plane = rows * columns;
        for (int n = 0; n < count; n++)
        {
            ReadOnlySpan<byte> source = images.Data.AsSpan(n * plane, plane);
            Span<byte> target = data.AsSpan(n * plane, plane);
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < columns; c++)
                    target[c * rows + r] = source[r * columns + c];
        }
        return new IdxArray([count, columns, rows], data);
    }
}
