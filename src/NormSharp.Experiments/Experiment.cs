using NormSharp.Data;

namespace NormSharp.Experiments;

/// <summary>
/// One experiment of <c>normsharp experiment NAME</c>: trains, measures and draws, writing CSV data, PNG figures and a
/// Markdown report (<c>report.md</c>) to its output folder. Every budget (steps, epochs, sizes) is an option, so the
/// defaults run in minutes and the tests run each on a tiny budget.
/// </summary>
public interface IExperiment
{
    /// <summary>The command-line name, e.g. <c>bn-paper-fig1</c>.</summary>
    string Name { get; }

    /// <summary>One line saying what the experiment shows.</summary>
    string Description { get; }

    /// <summary>The options the experiment reads, one per line, with defaults.</summary>
    string OptionsHelp { get; }

    /// <summary>Runs the experiment. Reads all its options from <see cref="ExperimentContext.Options"/> and then calls
    /// <c>context.Options.RejectUnknown(Name)</c> before starting work, so a typo fails fast; writes only under
    /// <see cref="ExperimentContext.OutputDirectory"/>.</summary>
    ExperimentResult Run(ExperimentContext context);
}

/// <summary>What an experiment produced: its headline numbers (also in the report) and the files it wrote.</summary>
/// <param name="Numbers">Final numbers by name, e.g. <c>bn.final_test_accuracy</c>.</param>
/// <param name="Files">The files written, relative to the output folder.</param>
public sealed record ExperimentResult(IReadOnlyDictionary<string, double> Numbers, IReadOnlyList<string> Files);

/// <summary>Everything an experiment needs from its caller.</summary>
public sealed class ExperimentContext
{
    /// <summary>Creates a context; the output folder is created.</summary>
    public ExperimentContext(Options options, string outputDirectory, TextWriter log)
    {
        Options = options ?? throw new ArgumentNullException(nameof(options));
        Log = log ?? throw new ArgumentNullException(nameof(log));
        OutputDirectory = Path.GetFullPath(outputDirectory);
        Directory.CreateDirectory(OutputDirectory);
    }

    /// <summary>The experiment's options (the command line after the experiment's name).</summary>
    public Options Options { get; }

    /// <summary>Where the CSV, PNG and Markdown files go.</summary>
    public string OutputDirectory { get; }

    /// <summary>Progress lines for the user.</summary>
    public TextWriter Log { get; }

    /// <summary>The path of <paramref name="file"/> in the output folder.</summary>
    public string PathOf(string file) => Path.Combine(OutputDirectory, file);

    /// <summary>Reads <c>--dataset</c> (default <paramref name="defaultName"/>) and <c>--data-dir</c> and returns a
    /// function that loads the data set; call the option readers before any work, then the function.</summary>
    public Func<LoadedDataset> DatasetOption(string defaultName = "mnist-subset")
    {
        string name = Options.String("dataset", defaultName);
        string? dir = Options.String("data-dir");
        return () =>
        {
            LoadedDataset data = Datasets.Load(name, new DatasetOptions { DataDirectory = dir, Log = Log.WriteLine });
            Log.WriteLine($"data: {data.Train.Count} training and {data.Test.Count} test images of {data.Name} ({data.Source})");
            return data;
        };
    }
}

/// <summary>The experiments by name.</summary>
public static class ExperimentCatalog
{
    // The order of docs/experiments.md.
    private static readonly string[] s_order = { "bn-paper-fig1", "norm-compare", "learning-rate", "batch-size", "fcnn-regression", "lstm-layernorm", "gan" };

    private static readonly List<IExperiment> s_all = typeof(ExperimentCatalog).Assembly.GetTypes()
        .Where(t => typeof(IExperiment).IsAssignableFrom(t) && t is { IsClass: true, IsAbstract: false })
        .Select(t => (IExperiment)Activator.CreateInstance(t)!)
        .OrderBy(e => Array.IndexOf(s_order, e.Name) is int i && i >= 0 ? i : int.MaxValue)
        .ThenBy(e => e.Name, StringComparer.Ordinal)
        .ToList();

    /// <summary>Every experiment, in the order the docs present them.</summary>
    public static IReadOnlyList<IExperiment> All => s_all;

    /// <summary>The experiment called <paramref name="name"/>.</summary>
    public static IExperiment Find(string name) =>
        s_all.FirstOrDefault(e => e.Name == name)
        ?? throw new UsageException($"unknown experiment '{name}'; available: {string.Join(", ", s_all.Select(e => e.Name))}");
}
