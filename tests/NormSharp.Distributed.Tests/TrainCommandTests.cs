using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace NormSharp.Distributed.Tests;

/// <summary><c>mpirun -np 2 normsharp train --distributed</c>: one run folder, resuming on another number of
/// processes, settings that differ between processes, and a process that dies mid-epoch.</summary>
public sealed class TrainCommandTests
{
    private static string Cli => MpiRun.Program("NormSharp.Cli");

    private const string SmallRun = "train --model mlp --epochs 1 --no-precise-bn";

    [Fact]
    public void Two_processes_write_one_run_folder_that_resumes_in_one_process()
    {
        string directory = Directory.CreateTempSubdirectory("normsharp-cli-mpi-").FullName;
        try
        {
            var (exitCode, output) = MpiRun.Run($"-np 2 dotnet {Cli} {SmallRun} --distributed --output run", directory, TimeSpan.FromMinutes(4));
            Assert.True(exitCode == 0, $"exit code {exitCode}:\n{output}");
            // Only rank 0 prints and writes.
            Assert.Equal(1, CountOf(output, "test accuracy:"));
            Assert.Equal(1, CountOf(output, "Total params"));
            using JsonDocument run = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "run", "run.json")));
            Assert.Equal(2, run.RootElement.GetProperty("processes").GetInt32());
            Assert.True(run.RootElement.GetProperty("sync_batch_norm").GetBoolean());

            // The checkpoint holds nothing tied to the number of processes.
            int code = NormSharp.Cli.Program.Main(["train", "--model", "mlp", "--epochs", "2", "--no-precise-bn",
                "--resume", Path.Combine(directory, "run", "checkpoint.safetensors"), "--output", Path.Combine(directory, "resumed")]);
            Assert.Equal(0, code);
            string history = File.ReadAllText(Path.Combine(directory, "resumed", "history.csv"));
            Assert.Equal(3, history.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length); // header, epoch 1 (from the 2-process run), epoch 2
        }
        finally { Directory.Delete(directory, recursive: true); }
    }

    [Fact]
    public void Processes_with_different_settings_stop_at_the_start_naming_the_difference()
    {
        string directory = Directory.CreateTempSubdirectory("normsharp-cli-mpi-").FullName;
        try
        {
            var (exitCode, output) = MpiRun.Run($"-np 1 dotnet {Cli} {SmallRun} --batch-size 128 --output a : -np 1 dotnet {Cli} {SmallRun} --batch-size 64 --output b",
                directory, TimeSpan.FromMinutes(3));
            Assert.NotEqual(0, exitCode);
            Assert.Contains("rank 0 has 'setting batch_size=128' where rank 1 has 'setting batch_size=64'", output);
            Assert.False(Directory.Exists(Path.Combine(directory, "a")), "rank 0 started a run folder before the check");
        }
        finally { Directory.Delete(directory, recursive: true); }
    }

    [Fact]
    public void Killing_one_process_mid_epoch_stops_the_other_within_60_seconds_with_an_error_naming_it()
    {
        string directory = Directory.CreateTempSubdirectory("normsharp-cli-mpi-").FullName;
        var output = new StringBuilder();
        using Process mpirun = MpiRun.Start($"-np 2 dotnet {Cli} train --model mlp --epochs 100 --distributed --output run", directory, output);
        try
        {
            // Rank 0 writes the checkpoint at the end of epoch 1; the kill then falls into a later epoch.
            string checkpoint = Path.Combine(directory, "run", "checkpoint.safetensors");
            var started = Stopwatch.StartNew();
            while (!File.Exists(checkpoint) && !mpirun.HasExited && started.Elapsed < TimeSpan.FromMinutes(3)) Thread.Sleep(200);
            Assert.True(File.Exists(checkpoint), $"training did not finish an epoch:\n{output}");
            int[] ranks = RankProcesses(mpirun.Id);
            Assert.Equal(2, ranks.Length);

            Process.GetProcessById(ranks[1]).Kill();
            var clock = Stopwatch.StartNew();
            bool stopped = MpiRun.WaitOrKill(mpirun, TimeSpan.FromSeconds(60));
            Assert.True(stopped, $"the job was still running 60 s after rank 1 was killed:\n{output}");
            Assert.False(File.Exists($"/proc/{ranks[0]}/stat") && !File.ReadAllText($"/proc/{ranks[0]}/stat").Contains(") Z "), "rank 0 is still alive");
            Assert.NotEqual(0, mpirun.ExitCode);
            string printed;
            lock (output) printed = output.ToString();
            Assert.Matches(@"process rank 1 with PID \d+ on node \S+ exited on signal 9", printed);
            // The survivor's own message: mpirun's SIGTERM, and which process ended.
            Assert.Matches($@"NormSharp.Distributed: rank 0 of 2: stopped by SIGTERM while [^:]+: rank 1 \(PID {ranks[1]}\) has ended", printed);
            // Rank 0 writes its checkpoints with AtomicFile: the one left is whole.
            Assert.NotEmpty(NormSharp.Serialization.SafeTensors.Load(checkpoint).Tensors);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60));
        }
        finally
        {
            if (!mpirun.HasExited) mpirun.Kill(entireProcessTree: true);
            Directory.Delete(directory, recursive: true);
        }
    }

    private static int CountOf(string text, string part) => (text.Length - text.Replace(part, "").Length) / part.Length;

    /// <summary>The processes mpirun started, by rank (from OMPI_COMM_WORLD_RANK in their environment).</summary>
    private static int[] RankProcesses(int mpirunId)
    {
        var ranks = new SortedDictionary<int, int>();
        foreach (string dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            try
            {
                string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                int parent = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1]);
                if (parent != mpirunId) continue;
                string rank = File.ReadAllText(Path.Combine(dir, "environ")).Split('\0').FirstOrDefault(v => v.StartsWith("OMPI_COMM_WORLD_RANK=")) ?? "";
                if (rank.Length > 0) ranks[int.Parse(rank["OMPI_COMM_WORLD_RANK=".Length..])] = pid;
            }
            catch (IOException) { } // the process ended meanwhile
            catch (UnauthorizedAccessException) { }
        }
        return ranks.Values.ToArray();
    }
}
