using NormSharp.Experiments;

namespace NormSharp.Cli;

/// <summary><c>normsharp experiment NAME [options]</c>: runs one experiment into an output folder.</summary>
internal static class ExperimentCommand
{
    public static string Help => "normsharp experiment NAME [--output DIR] [--threads N] [options]\n" +
        "  writes CSV data, PNG figures and report.md to DIR (default runs/experiments/NAME)\n\n" +
        string.Join("\n\n", ExperimentCatalog.All.Select(e => $"  {e.Name}: {e.Description}\n{Indent(e.OptionsHelp)}"));

    public static int Run(Options args, TextWriter output)
    {
        string name = args.Positional.FirstOrDefault() ?? throw new UsageException("experiment needs a NAME; see 'normsharp help experiment'");
        IExperiment experiment = ExperimentCatalog.Find(name);
        string outputDir = args.String("output") ?? Path.Combine("runs", "experiments", name);
        Parallelism.ThreadCount = args.Int("threads", Environment.ProcessorCount, 1, 1024);
        var context = new ExperimentContext(args, outputDir, output);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        ExperimentResult result = experiment.Run(context);
        output.WriteLine($"{name} finished in {clock.Elapsed.TotalSeconds:F0}s; wrote {context.OutputDirectory}: {string.Join(", ", result.Files)}");
        foreach (var (key, value) in result.Numbers) output.WriteLine($"  {key} = {value:G5}");
        return 0;
    }

    private static string Indent(string text) => string.Join("\n", text.Split('\n').Select(l => "    " + l.TrimStart()));
}
