using System.Diagnostics;
using System.Globalization;
using System.Text;
using NormSharp.Experiments;
using NormSharp.Serialization;

namespace NormSharp.Cli;

/// <summary>
/// <c>normsharp bench</c>: the side-by-side comparison with libtorch. libtorch (TorchSharp-cpu) may only be referenced
/// by the benchmark project, so this command runs that project as a child process (<c>dotnet run</c>), streams its
/// output and returns its exit code.
/// </summary>
internal static class BenchCommand
{
    /// <summary>Where the benchmark project sits relative to the repository root.</summary>
    public static readonly string ProjectInRepository = Path.Combine("bench", "NormSharp.Benchmarks", "NormSharp.Benchmarks.csproj");

    public const string Help = """
        normsharp bench [WORD...] [--threads 1,2] [--seconds S] [--width 512|256|128] [--full] [--project PATH] [--output FILE]
          times NormSharp and libtorch (TorchSharp-cpu) on the same workloads and prints a Markdown table: milliseconds,
          GFLOP/s or GB/s, speed-up and NormSharp's allocated bytes per call; runs the benchmark project with
          'dotnet run -c Release', which builds it first (it copies libtorch, about 600 MB, on the first run)
          WORD           run the cases whose suite or name contains a word (gemm, normalization, conv, seed-cnn,
                         layers, "LayerNorm 8192", ...); default: all cases. The word memory runs the memory
                         suite instead: each workload as a plain loop, inside a TensorScope and in libtorch, each in
                         its own process for 500 steps at the first thread count (step time, collections per 100
                         steps, peak working set; docs/memory.md)
          --threads LIST thread counts to time, e.g. 1,2 (the benchmark's default: 1,2)
          --seconds S    time each engine for at least S seconds per case (the benchmark's default: 1)
          --width BITS   run both engines with vectors of 512 (AVX-512), 256 (AVX2) or 128 bits (SSE4.1): .NET through
                         DOTNET_EnableAVX512/EnableAVX2, libtorch through ATEN_CPU_CAPABILITY and ONEDNN_MAX_CPU_ISA
                         (and its MKL through MKL_CBWR=COMPATIBLE at 128), set before either starts; the report's
                         header names the instruction sets each engine ran with (default: the machine's widest)
          --full         run BenchmarkDotNet instead of the quick mode (minutes per case): the cases matching the
                         glob *SideBySide*WORD* for each WORD (all side-by-side cases when none); put the words
                         before --full; BenchmarkDotNet writes its reports to BenchmarkDotNet.Artifacts/
          --project PATH the benchmark project (a .csproj or its folder); default: bench/NormSharp.Benchmarks found
                         from the current folder or the normsharp program's folder, walking up
          --output FILE  also write what the benchmark printed to FILE, replaced atomically
        on Debian 12, run enable-torchsharp.sh (in the shared tools) once so that libtorch loads
        """;

    public static int Run(Options args, TextWriter output)
    {
        BenchPlan plan = Plan(args, new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory });
        string dotnet = FindDotnet(Environment.GetEnvironmentVariable("PATH"));
        output.WriteLine($"running: dotnet {string.Join(' ', plan.DotnetArguments.Select(Quote))}");
        var (exitCode, printed) = RunStreaming(dotnet, plan.DotnetArguments, output);
        if (exitCode != 0)
        {
            Console.Error.WriteLine($"normsharp: the benchmark exited with code {exitCode}");
            return exitCode;
        }
        if (plan.OutputFile is not null)
        {
            AtomicFile.WriteAllText(plan.OutputFile, printed);
            output.WriteLine($"wrote {plan.OutputFile}");
        }
        return 0;
    }

    /// <summary>Reads and checks the options, finds the benchmark project (searching up from each of
    /// <paramref name="searchFrom"/> unless --project is given) and builds the arguments for <c>dotnet</c>.</summary>
    internal static BenchPlan Plan(Options args, IReadOnlyList<string> searchFrom)
    {
        int[] threads = args.Ints("threads", Array.Empty<int>());
        double seconds = args.Double("seconds", double.NaN, 0.01, 3600);
        string? width = args.String("width") is null ? null : args.Choice("width", "", "512", "256", "128");
        bool full = args.Flag("full");
        string? projectOption = args.String("project");
        string? outputFile = args.String("output");
        args.RejectUnknown("bench");
        if (full && (threads.Length > 0 || !double.IsNaN(seconds)))
            throw new UsageException("--threads and --seconds set the quick comparison; --full runs BenchmarkDotNet, which times 1 and 2 threads with its own iteration counts");

        string project = FindProject(projectOption, searchFrom);
        var arguments = new List<string> { "run", "-c", "Release", "--project", project, "--" };
        if (full)
        {
            // BenchmarkDotNet runs a case when its full name (type, method and parameters, which include the
            // workload's "suite: name") matches any pattern, so each word narrows to the side-by-side cases naming it.
            arguments.Add("--filter");
            arguments.AddRange(args.Positional.Count == 0 ? new[] { "*SideBySide*" } : args.Positional.Select(w => $"*SideBySide*{w}*"));
        }
        else
        {
            arguments.Add("quick");
            arguments.AddRange(args.Positional);
            if (threads.Length > 0) arguments.AddRange(new[] { "--threads", string.Join(',', threads) });
            if (!double.IsNaN(seconds)) arguments.AddRange(new[] { "--seconds", seconds.ToString("R", CultureInfo.InvariantCulture) });
        }
        // The benchmark program sets the width's environment and starts itself again before anything loads.
        if (width is not null) arguments.AddRange(new[] { "--width", width });
        return new BenchPlan(project, arguments, outputFile);
    }

    /// <summary>The benchmark project: <paramref name="projectOption"/> (a .csproj, or a folder holding
    /// NormSharp.Benchmarks.csproj) when given, else bench/NormSharp.Benchmarks under the first of
    /// <paramref name="searchFrom"/> or their parents that has it.</summary>
    internal static string FindProject(string? projectOption, IReadOnlyList<string> searchFrom)
    {
        string fileName = Path.GetFileName(ProjectInRepository);
        if (projectOption is not null)
        {
            string candidate = Directory.Exists(projectOption) ? Path.Combine(projectOption, fileName) : projectOption;
            return File.Exists(candidate) ? Path.GetFullPath(candidate)
                : throw new UsageException($"--project: no benchmark project at '{Path.GetFullPath(candidate)}'");
        }
        var searched = new List<string>();
        foreach (string start in searchFrom.Select(f => Path.TrimEndingDirectorySeparator(Path.GetFullPath(f))).Distinct())
        {
            for (DirectoryInfo? folder = new(start); folder is not null; folder = folder.Parent)
            {
                string candidate = Path.Combine(folder.FullName, ProjectInRepository);
                if (File.Exists(candidate)) return candidate;
            }
            searched.Add(start);
        }
        throw new UsageException($"cannot find {ProjectInRepository} in {string.Join(" or ", searched)} or any folder above; " +
            "run from a NormSharp checkout or pass --project PATH");
    }

    /// <summary>The full path of the <c>dotnet</c> program in the first folder of <paramref name="pathVariable"/>
    /// (a PATH value) that has it.</summary>
    internal static string FindDotnet(string? pathVariable)
    {
        string program = OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet";
        string[] folders = (pathVariable ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        return folders.Select(f => Path.Combine(f, program)).FirstOrDefault(File.Exists)
            ?? throw new UsageException($"'{program}' is not on PATH (searched: {(folders.Length == 0 ? "PATH is empty" : string.Join(Path.PathSeparator, folders))}); " +
                "bench runs the benchmark project with the .NET SDK");
    }

    /// <summary>Runs <paramref name="program"/>, passing each line of its standard output to <paramref name="output"/>
    /// and of its standard error to the console's, as they come; returns the exit code and everything it printed.</summary>
    private static (int ExitCode, string Printed) RunStreaming(string program, IReadOnlyList<string> arguments, TextWriter output)
    {
        var start = new ProcessStartInfo(program) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in arguments) start.ArgumentList.Add(a);
        var printed = new StringBuilder();
        using var child = new Process { StartInfo = start };
        child.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (printed)
            {
                printed.AppendLine(e.Data);
                output.WriteLine(e.Data);
            }
        };
        child.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null) Console.Error.WriteLine(e.Data);
        };
        child.Start();
        child.BeginOutputReadLine();
        child.BeginErrorReadLine();
        child.WaitForExit(); // without a timeout this also waits for both streams to be read to their end
        return (child.ExitCode, printed.ToString());
    }

    private static string Quote(string argument) => argument.Contains(' ') || argument.Contains('*') ? $"'{argument}'" : argument;
}

/// <summary>What <c>normsharp bench</c> runs: the benchmark project, the arguments after <c>dotnet</c>, and the
/// file to copy the printed report to (or null).</summary>
internal sealed record BenchPlan(string Project, IReadOnlyList<string> DotnetArguments, string? OutputFile);
