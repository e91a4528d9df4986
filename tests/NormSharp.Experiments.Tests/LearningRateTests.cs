namespace NormSharp.Experiments.Tests;

public class LearningRateTests
{
    [Fact]
    public void A_rate_of_ten_thousand_is_flagged_diverged_with_and_without_BatchNorm()
    {
        var (result, dir, _) = ExperimentHarness.Run("learning-rate", "--lrs", "10000", "--train-size", "256", "--test-size", "100", "--epochs", "1");

        Assert.Equal(1, result.Numbers["bn.lr10000.diverged"]);
        Assert.Equal(1, result.Numbers["none.lr10000.diverged"]);
        string[] rows = File.ReadAllLines(Path.Combine(dir, "results.csv"));
        Assert.All(rows.Skip(1), r => Assert.Equal("diverged", r.Split(',')[2]));
    }
}
