using System.Globalization;

namespace NormSharp.Experiments.Tests;

public class FcnnRegressionTests
{
    [Fact]
    public void Every_variant_lowers_its_training_loss()
    {
        var (result, dir, _) = ExperimentHarness.Run("fcnn-regression", "--epochs", "8", "--samples", "200");

        var rows = File.ReadAllLines(Path.Combine(dir, "losses.csv")).Skip(1).Select(l => l.Split(',')).ToList();
        foreach (string variant in new[] { "none", "batch", "layer" })
        {
            double[] train = rows.Where(r => r[0] == variant).Select(r => double.Parse(r[2], CultureInfo.InvariantCulture)).ToArray();
            Assert.Equal(8, train.Length);
            Assert.True(train[^1] < train[0], $"{variant}: training MSE {train[0]} after the first epoch, {train[^1]} after the last");
            Assert.Equal(result.Numbers[$"{variant}.final_train_mse"], train[^1], 12);
        }
    }

    [Fact]
    public void Predictions_file_holds_the_targets_of_the_held_out_set()
    {
        var (_, dir, _) = ExperimentHarness.Run("fcnn-regression", "--epochs", "1", "--samples", "50");
        string[] lines = File.ReadAllLines(Path.Combine(dir, "predictions.csv"));
        Assert.Equal("x1,x2,target,prediction_none,prediction_batch,prediction_layer", lines[0]);
        Assert.Equal(1000, lines.Length - 1);
        foreach (string line in lines.Skip(1))
        {
            double[] v = line.Split(',').Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray();
            Assert.Equal((v[0] + v[1]) / 2, v[2], tolerance: 1e-6);
        }
    }

    [Fact]
    public void Same_seed_gives_the_same_losses()
    {
        var (_, first, _) = ExperimentHarness.Run("fcnn-regression", "--epochs", "2", "--samples", "100", "--seed", "4");
        var (_, second, _) = ExperimentHarness.Run("fcnn-regression", "--epochs", "2", "--samples", "100", "--seed", "4");
        Assert.Equal(File.ReadAllText(Path.Combine(first, "losses.csv")), File.ReadAllText(Path.Combine(second, "losses.csv")));
    }

    [Fact]
    public void Unknown_option_is_rejected()
    {
        var e = Assert.Throws<UsageException>(() => ExperimentHarness.Run("fcnn-regression", "--epoch", "2"));
        Assert.Contains("--epoch", e.Message);
    }
}
