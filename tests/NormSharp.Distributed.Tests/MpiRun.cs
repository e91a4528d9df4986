using System.Diagnostics;
using System.Text;

namespace NormSharp.Distributed.Tests;

/// <summary>Starts a program under mpirun on this machine (loopback only, as root allowed) with a time limit, and
/// kills every process it started when the limit passes.</summary>
internal static class MpiRun
{
    /// <summary>The flags that work on a root-only, loopback-only machine (checked on Debian 12's Open MPI 4.1).</summary>
    public const string LocalFlags = "--oversubscribe --mca btl self,vader --mca oob_tcp_if_include lo";

    /// <summary>A program built next to the tests (referenced by this project), started with dotnet.</summary>
    public static string Program(string assemblyName)
    {
        string path = Path.Combine(AppContext.BaseDirectory, assemblyName + ".dll");
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} was not built; build tests/NormSharp.Distributed.Tests, which references it.");
        return path;
    }

    /// <summary>mpirun with <paramref name="mpirunArguments"/> (e.g. "-np 2 dotnet x.dll ..."), in
    /// <paramref name="directory"/>.</summary>
    public static Process Start(string mpirunArguments, string directory, StringBuilder output)
    {
        var info = new ProcessStartInfo("mpirun", $"{LocalFlags} {mpirunArguments}")
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        info.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        Process process;
        try { process = System.Diagnostics.Process.Start(info)!; }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("mpirun was not found; install Open MPI with 'apt-get install openmpi-bin libopenmpi-dev' (.ci/run does).", e);
        }
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Runs to the end within <paramref name="limit"/>; returns the exit code and everything printed.</summary>
    public static (int ExitCode, string Output) Run(string mpirunArguments, string directory, TimeSpan limit)
    {
        var output = new StringBuilder();
        using Process process = Start(mpirunArguments, directory, output);
        bool finished = WaitOrKill(process, limit);
        lock (output)
        {
            Assert.True(finished, $"mpirun {mpirunArguments} did not finish within {limit.TotalSeconds} s and was killed; output:\n{output}");
            return (process.ExitCode, output.ToString());
        }
    }

    /// <summary>Waits for <paramref name="process"/>; past the limit kills it and its children and returns false.</summary>
    public static bool WaitOrKill(Process process, TimeSpan limit)
    {
        if (process.WaitForExit(limit)) { process.WaitForExit(); return true; }
        process.Kill(entireProcessTree: true);
        process.WaitForExit();
        return false;
    }
}
