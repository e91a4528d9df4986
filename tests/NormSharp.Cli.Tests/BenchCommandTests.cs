using NormSharp.Cli;
using NormSharp.Experiments;

namespace NormSharp.Cli.Tests;

/// <summary><c>normsharp bench</c>: option checks, finding the benchmark project and <c>dotnet</c>, and the child
/// command line. The benchmark itself is never run here (it builds libtorch into bench/ and takes minutes).</summary>
[Collection("Console")]
public sealed class BenchCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("normsharp-bench-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A fake checkout: <c>_dir/repo/bench/NormSharp.Benchmarks/NormSharp.Benchmarks.csproj</c> and a
    /// nested folder <c>_dir/repo/src/deep</c> to search from.</summary>
    private (string Project, string Nested) FakeCheckout()
    {
        string project = Path.Combine(_dir, "repo", BenchCommand.ProjectInRepository);
        Directory.CreateDirectory(Path.GetDirectoryName(project)!);
        File.WriteAllText(project, "<Project />");
        string nested = Directory.CreateDirectory(Path.Combine(_dir, "repo", "src", "deep")).FullName;
        return (project, nested);
    }

    private static IReadOnlyList<string> DotnetArguments(string nested, params string[] args) =>
        BenchCommand.Plan(new Options(args), new[] { nested }).DotnetArguments;

    [Fact]
    public void Quick_mode_passes_words_threads_and_seconds_after_quick()
    {
        var (project, nested) = FakeCheckout();
        Assert.Equal(new[] { "run", "-c", "Release", "--project", project, "--", "quick", "dense 128", "LayerNorm", "--threads", "1,2", "--seconds", "0.2" },
            DotnetArguments(nested, "dense 128", "LayerNorm", "--threads", "1,2", "--seconds", "0.2"));
    }

    [Fact]
    public void Width_is_passed_to_the_benchmark_in_both_modes()
    {
        var (project, nested) = FakeCheckout();
        Assert.Equal(new[] { "run", "-c", "Release", "--project", project, "--", "quick", "conv", "--width", "256" },
            DotnetArguments(nested, "conv", "--width", "256"));
        Assert.Equal(new[] { "run", "-c", "Release", "--project", project, "--", "--filter", "*SideBySide*", "--width", "128" },
            DotnetArguments(nested, "--full", "--width", "128"));
    }

    [Fact]
    public void Without_options_the_benchmarks_own_defaults_apply()
    {
        var (project, nested) = FakeCheckout();
        Assert.Equal(new[] { "run", "-c", "Release", "--project", project, "--", "quick" }, DotnetArguments(nested));
    }

    [Fact]
    public void Full_mode_turns_each_word_into_a_side_by_side_filter()
    {
        var (project, nested) = FakeCheckout();
        Assert.Equal(new[] { "run", "-c", "Release", "--project", project, "--", "--filter", "*SideBySide*" }, DotnetArguments(nested, "--full"));
        Assert.Equal(new[] { "run", "-c", "Release", "--project", project, "--", "--filter", "*SideBySide*conv*", "*SideBySide*LayerNorm 8192*" },
            DotnetArguments(nested, "conv", "LayerNorm 8192", "--full"));
    }

    [Fact]
    public void Project_option_takes_the_csproj_or_its_folder_and_output_is_kept()
    {
        var (project, _) = FakeCheckout();
        BenchPlan byFile = BenchCommand.Plan(new Options(new[] { "--project", project, "--output", "table.md" }), new[] { _dir });
        Assert.Equal(project, byFile.Project);
        Assert.Equal("table.md", byFile.OutputFile);
        BenchPlan byFolder = BenchCommand.Plan(new Options(new[] { "--project", Path.GetDirectoryName(project)! }), new[] { _dir });
        Assert.Equal(project, byFolder.Project);
        Assert.Null(byFolder.OutputFile);
    }

    [Fact]
    public void The_search_goes_on_from_the_next_start_folder()
    {
        var (project, nested) = FakeCheckout();
        string elsewhere = Directory.CreateDirectory(Path.Combine(_dir, "elsewhere")).FullName;
        Assert.Equal(project, BenchCommand.FindProject(null, new[] { elsewhere, nested }));
    }

    [Fact]
    public void A_missing_project_names_every_folder_searched()
    {
        string first = Directory.CreateDirectory(Path.Combine(_dir, "a")).FullName;
        string second = Directory.CreateDirectory(Path.Combine(_dir, "b")).FullName;
        var e = Assert.Throws<UsageException>(() => BenchCommand.FindProject(null, new[] { first, second + Path.DirectorySeparatorChar, first }));
        Assert.Equal($"cannot find {BenchCommand.ProjectInRepository} in {first} or {second} or any folder above; run from a NormSharp checkout or pass --project PATH", e.Message);
    }

    [Fact]
    public void A_project_option_without_a_project_is_a_usage_error()
    {
        string missing = Path.Combine(_dir, "nope");
        var (code, _, err) = CliTests.Run("bench", "--project", missing);
        Assert.Equal(2, code);
        Assert.Contains($"--project: no benchmark project at '{missing}'", err);
        var (folderCode, _, folderErr) = CliTests.Run("bench", "--project", _dir);
        Assert.Equal(2, folderCode);
        Assert.Contains($"--project: no benchmark project at '{Path.Combine(_dir, "NormSharp.Benchmarks.csproj")}'", folderErr);
    }

    [Theory]
    [InlineData("bench --threads 0", "--threads must list positive integers")]
    [InlineData("bench --threads one", "--threads must be comma-separated numbers; got 'one'")]
    [InlineData("bench --seconds 0", "--seconds must be a number in [0.01, 3600]; got '0'")]
    [InlineData("bench --full --threads 1", "--threads and --seconds set the quick comparison")]
    [InlineData("bench gemm --full --seconds 2", "--threads and --seconds set the quick comparison")]
    [InlineData("bench --filter *Gemm*", "'bench' does not take --filter")]
    [InlineData("bench --width 64", "--width must be one of 512, 256, 128; got '64'")]
    public void Bad_options_are_usage_errors_before_anything_runs(string line, string message)
    {
        var (code, output, err) = CliTests.Run(line.Split(' '));
        Assert.Equal(2, code);
        Assert.Contains(message, err);
        Assert.DoesNotContain("running:", output);
    }

    [Fact]
    public void Dotnet_is_found_in_the_first_path_folder_that_has_it()
    {
        string empty = Directory.CreateDirectory(Path.Combine(_dir, "empty")).FullName;
        string sdk = Directory.CreateDirectory(Path.Combine(_dir, "sdk")).FullName;
        string program = Path.Combine(sdk, OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet");
        File.WriteAllText(program, "");
        Assert.Equal(program, BenchCommand.FindDotnet(empty + Path.PathSeparator + sdk));
    }

    [Fact]
    public void Dotnet_missing_from_path_names_the_folders_searched()
    {
        string empty = Directory.CreateDirectory(Path.Combine(_dir, "empty")).FullName;
        var e = Assert.Throws<UsageException>(() => BenchCommand.FindDotnet(empty));
        Assert.Contains($"is not on PATH (searched: {empty})", e.Message);
        Assert.Contains("PATH is empty", Assert.Throws<UsageException>(() => BenchCommand.FindDotnet(null)).Message);
    }

    [Fact]
    public void Help_lists_bench_and_its_options()
    {
        var (code, usage, _) = CliTests.Run("help");
        Assert.Equal(0, code);
        Assert.Contains("normsharp bench ", usage);
        var (_, help, _) = CliTests.Run("help", "bench");
        Assert.Contains("--full ", help);
        Assert.Contains("--output FILE", help);
    }
}
