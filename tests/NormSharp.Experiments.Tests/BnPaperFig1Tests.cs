using System.Globalization;

namespace NormSharp.Experiments.Tests;

public class BnPaperFig1Tests
{
    private static readonly string[] s_tiny = { "--steps", "30", "--eval-every", "10" };

    [Fact]
    public void Tiny_run_writes_ordered_percentiles_for_both_networks()
    {
        var (result, dir, _) = ExperimentHarness.Run("bn-paper-fig1", s_tiny);

        string[] lines = File.ReadAllLines(Path.Combine(dir, "fig1-percentiles.csv"));
        Assert.Equal("step,p15_without_bn,p50_without_bn,p85_without_bn,p15_with_bn,p50_with_bn,p85_with_bn", lines[0]);
        Assert.Equal(3, lines.Length - 1);
        foreach (string line in lines.Skip(1))
        {
            double[] v = line.Split(',').Select(s => double.Parse(s, CultureInfo.InvariantCulture)).ToArray();
            Assert.True(v[1] <= v[2] && v[2] <= v[3], $"without BN: {line}");
            Assert.True(v[4] <= v[5] && v[5] <= v[6], $"with BN: {line}");
        }
        Assert.InRange(result.Numbers["with_bn.final_test_accuracy"], 0, 1);
        Assert.InRange(result.Numbers["without_bn.final_test_accuracy"], 0, 1);
    }

    [Fact]
    public void Same_seed_gives_the_same_curves()
    {
        var (_, first, _) = ExperimentHarness.Run("bn-paper-fig1", "--steps", "10", "--eval-every", "5", "--seed", "3");
        var (_, second, _) = ExperimentHarness.Run("bn-paper-fig1", "--steps", "10", "--eval-every", "5", "--seed", "3");
        Assert.Equal(File.ReadAllText(Path.Combine(first, "fig1.csv")), File.ReadAllText(Path.Combine(second, "fig1.csv")));
        Assert.Equal(File.ReadAllText(Path.Combine(first, "fig1-percentiles.csv")), File.ReadAllText(Path.Combine(second, "fig1-percentiles.csv")));
    }

    [Fact]
    public void Percentiles_interpolate_between_closest_ranks_as_numpy_does()
    {
        double[] sorted = { 1, 2, 3, 4 };
        Assert.Equal(2.5, BnPaperFig1Experiment.Percentile(sorted, 50), 12);
        Assert.Equal(1.45, BnPaperFig1Experiment.Percentile(sorted, 15), 12); // rank 0.45 of 3
        Assert.Equal(3.55, BnPaperFig1Experiment.Percentile(sorted, 85), 12);
        Assert.Equal(4, BnPaperFig1Experiment.Percentile(sorted, 100), 12);
    }

    [Fact]
    public void Unknown_option_is_rejected()
    {
        var e = Assert.Throws<UsageException>(() => ExperimentHarness.Run("bn-paper-fig1", "--step", "10"));
        Assert.Contains("--step", e.Message);
    }
}
