using System.Globalization;

namespace NormSharp.Experiments.Tests;

public class LstmLayerNormTests
{
    private static readonly string[] s_tiny = { "--steps", "40", "--sequence-length", "6", "--hidden", "8", "--batch-size", "16", "--eval-every", "10" };

    [Fact]
    public void Both_models_lower_their_training_loss()
    {
        var (result, dir, _) = ExperimentHarness.Run("lstm-layernorm", s_tiny);

        string[] lines = File.ReadAllLines(Path.Combine(dir, "losses.csv"));
        Assert.Equal("step,train_mse_lstm,test_mse_lstm,train_mse_ln_lstm,test_mse_ln_lstm", lines[0]);
        double[][] rows = lines.Skip(1).Select(l => l.Split(',').Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray()).ToArray();
        Assert.Equal(new double[] { 10, 20, 30, 40 }, rows.Select(r => r[0]));
        Assert.True(rows[^1][1] < rows[0][1], $"LSTM: {rows[0][1]} → {rows[^1][1]}");
        Assert.True(rows[^1][3] < rows[0][3], $"LN-LSTM: {rows[0][3]} → {rows[^1][3]}");
        Assert.Equal(result.Numbers["ln_lstm.final_test_mse"], rows[^1][4], 12);
    }

    [Fact]
    public void Same_seed_gives_the_same_losses()
    {
        string[] options = { "--steps", "6", "--sequence-length", "5", "--hidden", "4", "--batch-size", "8", "--eval-every", "3", "--seed", "2", "--classic-inputs" };
        var (_, first, _) = ExperimentHarness.Run("lstm-layernorm", options);
        var (_, second, _) = ExperimentHarness.Run("lstm-layernorm", options);
        Assert.Equal(File.ReadAllText(Path.Combine(first, "losses.csv")), File.ReadAllText(Path.Combine(second, "losses.csv")));
        Assert.Contains("--classic-inputs", File.ReadAllText(Path.Combine(first, "report.md")));
    }

    [Fact]
    public void Unknown_option_is_rejected()
    {
        var e = Assert.Throws<UsageException>(() => ExperimentHarness.Run("lstm-layernorm", "--hidden-size", "8"));
        Assert.Contains("--hidden-size", e.Message);
    }
}
