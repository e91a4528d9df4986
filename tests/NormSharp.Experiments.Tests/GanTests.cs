using System.Buffers.Binary;

namespace NormSharp.Experiments.Tests;

public class GanTests
{
    [Fact]
    public void Writes_an_8_by_8_sample_grid_per_epoch_and_finite_losses_for_every_step()
    {
        var (result, dir, _) = ExperimentHarness.Run("gan", "--train-size", "128", "--epochs", "2", "--batch-size", "32", "--g-width", "8", "--d-width", "8", "--latent", "16", "--judge-samples", "100");

        // 8 columns of 28×28 images drawn at 2× with 2-pixel gaps: 8·56 + 9·2 = 466 pixels a side.
        foreach (string grid in new[] { "samples_epoch_1.png", "samples_epoch_2.png" })
        {
            Assert.Contains(grid, result.Files);
            byte[] png = File.ReadAllBytes(Path.Combine(dir, grid));
            Assert.Equal(466, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)));
            Assert.Equal(466, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20)));
        }
        string[] steps = File.ReadAllLines(Path.Combine(dir, "losses.csv")).Skip(1).ToArray();
        Assert.Equal(2 * 128 / 32, steps.Length);
        foreach (string step in steps)
            foreach (string value in step.Split(',')[2..])
                Assert.True(double.IsFinite(double.Parse(value, System.Globalization.CultureInfo.InvariantCulture)), step);
        Assert.InRange(result.Numbers["final_d_real"], 0, 1);
    }
}
