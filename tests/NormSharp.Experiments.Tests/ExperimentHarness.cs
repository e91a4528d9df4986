using NormSharp.Experiments;

namespace NormSharp.Experiments.Tests;

/// <summary>Runs an experiment on a tiny budget in a temporary folder and checks what every experiment must produce:
/// report.md, at least one CSV and one PNG, every listed file present, and finite numbers.</summary>
public static class ExperimentHarness
{
    public static (ExperimentResult Result, string Directory, string Log) Run(string name, params string[] options)
    {
        string dir = System.IO.Directory.CreateTempSubdirectory("normsharp-exp-").FullName;
        var log = new StringWriter();
        var context = new ExperimentContext(new Options(options), dir, log);
        ExperimentResult result = ExperimentCatalog.Find(name).Run(context);

        Assert.Contains("report.md", result.Files);
        Assert.Contains(result.Files, f => f.EndsWith(".csv", StringComparison.Ordinal));
        Assert.Contains(result.Files, f => f.EndsWith(".png", StringComparison.Ordinal));
        foreach (string f in result.Files)
        {
            string path = Path.Combine(dir, f);
            Assert.True(File.Exists(path), $"{f} listed but not written");
            if (f.EndsWith(".png", StringComparison.Ordinal))
                Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(path)[..4]);
        }
        string report = File.ReadAllText(Path.Combine(dir, "report.md"));
        foreach (string png in result.Files.Where(f => f.EndsWith(".png", StringComparison.Ordinal)))
            Assert.Contains($"]({png})", report);
        Assert.NotEmpty(result.Numbers);
        foreach (var (key, value) in result.Numbers) Assert.True(double.IsFinite(value), $"{key} = {value}");
        return (result, dir, log.ToString());
    }
}
