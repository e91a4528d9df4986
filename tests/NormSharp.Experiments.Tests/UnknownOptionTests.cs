namespace NormSharp.Experiments.Tests;

public class UnknownOptionTests
{
    [Theory]
    [InlineData("norm-compare")]
    [InlineData("learning-rate")]
    [InlineData("batch-size")]
    [InlineData("gan")]
    public void A_misspelt_option_is_rejected_before_training(string experiment)
    {
        var e = Assert.Throws<UsageException>(() => ExperimentHarness.Run(experiment, "--epoch", "1"));
        Assert.Contains("--epoch", e.Message);
        Assert.Contains(experiment, e.Message);
    }
}
