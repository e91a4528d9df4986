namespace NormSharp.Experiments.Tests;

public class BatchSizeTests
{
    [Fact]
    public void Has_a_row_per_batch_size_with_both_normalizations()
    {
        var (result, dir, _) = ExperimentHarness.Run("batch-size", "--batch-sizes", "2,4", "--train-size", "64", "--test-size", "50");

        string[] rows = File.ReadAllLines(Path.Combine(dir, "results.csv")).Skip(1).ToArray();
        Assert.Equal(new[] { "batch,2", "group,2", "batch-renorm,2", "ghost-batch,2", "batch,4", "group,4", "batch-renorm,4", "ghost-batch,4" },
            rows.Select(r => string.Join(',', r.Split(',')[..2])));
        string report = File.ReadAllText(Path.Combine(dir, "report.md"));
        Assert.Contains("\n| 2 | ", report);
        Assert.Contains("\n| 4 | ", report);
        Assert.InRange(result.Numbers["batch.b2.test_accuracy_precise_bn"], 0, 1);
        Assert.InRange(result.Numbers["batch-renorm.b4.test_accuracy_precise_bn"], 0, 1);
        // Ghost BN with its default virtual batch of 16 is BatchNorm at batch 2 and 4: same initial weights, same batches.
        Assert.Equal(result.Numbers["batch.b4.test_accuracy_precise_bn"], result.Numbers["ghost-batch.b4.test_accuracy_precise_bn"]);
        Assert.Contains("Batch Renorm", report);
    }
}
