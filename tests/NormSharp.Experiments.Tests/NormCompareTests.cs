namespace NormSharp.Experiments.Tests;

public class NormCompareTests
{
    [Fact]
    public void Reports_every_normalization_and_precise_BN_only_for_BatchNorm()
    {
        var (result, dir, _) = ExperimentHarness.Run("norm-compare", "--train-size", "200", "--test-size", "100", "--epochs", "1", "--batch-size", "50");

        string[] rows = File.ReadAllLines(Path.Combine(dir, "results.csv"));
        Assert.Equal(new[] { "batch", "layer", "group", "none" }, rows.Skip(1).Select(r => r.Split(',')[0]));
        foreach (string norm in new[] { "batch", "layer", "group", "none" })
            Assert.InRange(result.Numbers[$"{norm}.test_accuracy"], 0, 1);
        Assert.Equal(new[] { "batch.test_accuracy_precise_bn" }, result.Numbers.Keys.Where(k => k.EndsWith("precise_bn", StringComparison.Ordinal)));
        Assert.Equal(1 + 4, File.ReadAllLines(Path.Combine(dir, "history.csv")).Length);
    }
}
