using NormSharp.Cli;

namespace NormSharp.Cli.Tests;

[CollectionDefinition("Console", DisableParallelization = true)]
public sealed class ConsoleCollection;

/// <summary>Runs the real <c>normsharp</c> entry point with captured output.</summary>
[Collection("Console")]
public sealed class CliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("normsharp-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Runs the entry point with <paramref name="args"/>, capturing the exit code, stdout and stderr.</summary>
    internal static (int Code, string Out, string Err) Run(params string[] args)
    {
        TextWriter oldOut = Console.Out, oldErr = Console.Error;
        var o = new StringWriter();
        var e = new StringWriter();
        Console.SetOut(o);
        Console.SetError(e);
        try { return (Program.Main(args), o.ToString(), e.ToString()); }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
    }

    [Fact]
    public void Train_writes_every_artifact_and_resume_continues_the_history()
    {
        string run = Path.Combine(_dir, "run");
        var (code, output, err) = Run("train", "--model", "mlp", "--epochs", "1", "--output", run, "--threads", "1");
        Assert.True(code == 0, err + output);
        foreach (string f in new[] { "model.safetensors", "checkpoint.safetensors", "history.csv", "history.json", "loss.png", "accuracy.png", "run.json", "summary.txt" })
            Assert.True(File.Exists(Path.Combine(run, f)), $"{f} missing");
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(Path.Combine(run, "loss.png"))[..4]);
        Assert.Contains("\"model\": \"mlp\"", File.ReadAllText(Path.Combine(run, "run.json")));
        Assert.Equal(2, File.ReadAllLines(Path.Combine(run, "history.csv")).Length);
        var accuracyLine = output.Split('\n').Single(l => l.StartsWith("test accuracy:", StringComparison.Ordinal));
        double accuracy = double.Parse(accuracyLine.Split(' ')[2].TrimEnd('%'), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(accuracy, 75, 100); // one epoch: the moving averages (decay 0.99) are still warming up
        using (var results = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "results.json"))))
        {
            // The test host holds the MLP's data set (8,000 × 784 floats, 25 MB) in memory; a step allocates at least
            // its progress record, and far less than the 8,000-image training set.
            Assert.InRange(results.RootElement.GetProperty("peak_working_set_bytes").GetDouble(), 25e6, 64e9);
            Assert.InRange(results.RootElement.GetProperty("allocated_bytes_per_step").GetDouble(), 1, 25e6);
        }
        Assert.Contains("managed allocation per training step (epoch 1)", output);
        Assert.Contains("peak working set ", output);

        var (code2, output2, err2) = Run("train", "--model", "mlp", "--epochs", "2", "--output", run, "--threads", "1",
            "--resume", Path.Combine(run, "checkpoint.safetensors"));
        Assert.True(code2 == 0, err2 + output2);
        Assert.Contains("resumed from", output2);
        Assert.Equal(3, File.ReadAllLines(Path.Combine(run, "history.csv")).Length);

        string model = Path.Combine(run, "model.safetensors");
        var (code3, evaluated, _) = Run("evaluate", "--model-file", model);
        Assert.Equal(0, code3);
        Assert.Contains("mnist-subset test (2000 images): accuracy", evaluated);
        var (code4, predicted, _) = Run("predict", "--model-file", model, "--index", "3");
        Assert.Equal(0, code4);
        Assert.Contains("mnist-subset test image 3: predicted", predicted);
    }

    [Theory]
    [InlineData("batch-renorm", null)]
    [InlineData("ghost-batch", 8)]
    public void Train_with_batch_renorm_or_ghost_batch_norm_trains_and_saves_a_model_whose_batch_norms_are_those(string norm, int? ghostBatchSize)
    {
        string run = Path.Combine(_dir, norm);
        string[] ghost = ghostBatchSize is int size ? ["--ghost-batch-size", size.ToString(System.Globalization.CultureInfo.InvariantCulture)] : [];
        var (code, output, err) = Run(["train", "--model", "mlp", "--norm", norm, .. ghost, "--epochs", "1", "--output", run, "--threads", "1"]);
        Assert.True(code == 0, err + output);
        Assert.Contains($"\"norm\": \"{norm}\"", File.ReadAllText(Path.Combine(run, "run.json")));
        var accuracyLine = output.Split('\n').Single(l => l.StartsWith("test accuracy:", StringComparison.Ordinal));
        Assert.InRange(double.Parse(accuracyLine.Split(' ')[2].TrimEnd('%'), System.Globalization.CultureInfo.InvariantCulture), 50, 100);

        NormSharp.Nn.BatchNorm[] batchNorms = ModelFile.Load(Path.Combine(run, "model.safetensors")).Network.NamedModules()
            .Select(m => m.Module).OfType<NormSharp.Nn.BatchNorm>().ToArray();
        Assert.Equal(2, batchNorms.Length); // the MLP's two hidden layers
        Assert.All(batchNorms, b =>
        {
            Assert.Equal(norm == "batch-renorm", b.Renorm is not null);
            Assert.Equal(ghostBatchSize, b.VirtualBatchSize);
        });
    }

    [Fact]
    public void Train_into_a_folder_another_run_holds_is_refused_before_writing_anything()
    {
        string run = Path.Combine(_dir, "busy");
        using (NormSharp.Training.OutputFolderLock.Acquire(run))
        {
            var (code, output, err) = Run("train", "--model", "mlp", "--epochs", "1", "--output", run, "--threads", "1");
            Assert.True(code == 1, err + output);
            Assert.Contains($"is in use by another training run (PID {Environment.ProcessId}", err);
        }
        Assert.Equal(new[] { NormSharp.Training.OutputFolderLock.LockFileName }, Directory.GetFiles(run).Select(Path.GetFileName));
    }

    [Fact]
    public void Summary_of_the_seed_cnn_has_kerass_parameter_counts()
    {
        var (code, output, _) = Run("summary");
        Assert.Equal(0, code);
        Assert.Contains("Total params: 242,954", output);
        Assert.Contains("Non-trainable params: 704", output);
    }

    [Theory]
    [InlineData("train --epoch 3", "'train' does not take --epoch")]
    [InlineData("train --epochs many", "--epochs must be an integer")]
    [InlineData("train --norm batchy", "--norm must be one of batch, batch-renorm, ghost-batch, layer, group, none; got 'batchy'")]
    [InlineData("train --ghost-batch-size 8", "--ghost-batch-size applies only to --norm ghost-batch; got --norm batch")]
    [InlineData("train --norm ghost-batch --ghost-batch-size 1", "--ghost-batch-size must be an integer in [2,")]
    [InlineData("train --random-erasing 1.5", "--random-erasing must be")]
    [InlineData("frobnicate", "unknown command 'frobnicate'")]
    [InlineData("predict --model-file x.safetensors", "exactly one of --image PNG and --index N")]
    public void Bad_command_lines_say_what_to_change(string line, string message)
    {
        var (code, _, err) = Run(line.Split(' '));
        Assert.Equal(2, code);
        Assert.Contains(message, err);
    }

    [Fact]
    public void A_missing_model_file_is_reported_not_thrown()
    {
        var (code, _, err) = Run("evaluate", "--model-file", Path.Combine(_dir, "nope.safetensors"));
        Assert.Equal(1, code);
        Assert.Contains("nope.safetensors", err);
    }
}
