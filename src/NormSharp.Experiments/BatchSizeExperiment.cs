using System.Globalization;
using NormSharp.Data;
using NormSharp.Keras;
using NormSharp.Nn;
using NormSharp.Optim;
using NormSharp.Plotting;
using NormSharp.Training;

namespace NormSharp.Experiments;

/// <summary>
/// <c>batch-size</c>: Wu &amp; He (2018), Figure 1 in small: seed 000's CNN with BatchNorm and with GroupNorm (8
/// groups) trained at several batch sizes for the same number of epochs, by Adam at one learning rate (the seed's
/// optimizer) or by SGD with momentum and the learning rate scaled linearly with the batch size (Goyal et al. 2017, as
/// Wu &amp; He do), annealed to zero along a cosine over the run. BatchNorm's statistics come from the
/// batch, so they get noisier as it shrinks; GroupNorm's come from each sample alone. BatchNorm is tested with its
/// moving averages and with statistics re-estimated over the training set (precise BN), so that a lag of the moving
/// averages on a short run is not mistaken for the batch-size effect.
/// </summary>
public sealed class BatchSizeExperiment : IExperiment
{
    /// <inheritdoc/>
    public string Name => "batch-size";

    /// <inheritdoc/>
    public string Description => "BatchNorm versus GroupNorm across batch sizes (Wu & He 2018): BatchNorm degrades at small batches, GroupNorm does not";

    /// <inheritdoc/>
    public string OptionsHelp => DataBudget.Help + "\n" + """
        --batch-sizes LIST   default 2,4,8,16,32,128
        --epochs N           the same for every batch size, default 1
        --optimizer NAME     adam (default; one learning rate for every batch size) or sgd (rate scaled by batch/32)
        --lr RATE            Adam's learning rate (default 1e-3), or SGD's at batch 32 (default 0.01)
        --momentum M         SGD momentum, default 0.9
        --ghost-batch N      Ghost BatchNorm's virtual batch size, default 16
        """;

    /// <inheritdoc/>
    public ExperimentResult Run(ExperimentContext context)
    {
        Options o = context.Options;
        var budget = new DataBudget(context);
        int[] batchSizes = o.Ints("batch-sizes", new[] { 2, 4, 8, 16, 32, 128 });
        int epochs = o.Int("epochs", 1, 1, 10_000);
        string optimizer = o.Choice("optimizer", "adam", "adam", "sgd");
        double baseLr = o.Double("lr", optimizer == "sgd" ? 0.01 : 1e-3, 0, 10);
        double momentum = o.Double("momentum", 0.9, 0, 0.999);
        int ghostBatch = o.Int("ghost-batch", 16, 2, 1 << 20);
        string schedule = (optimizer == "sgd"
            ? $"SGD with momentum {F(momentum)} and a learning rate starting at {F(baseLr)} × batch/32 (the linear scaling rule Wu & He 2018 use)"
            : $"Adam with a learning rate starting at {F(baseLr)} at every batch size") + ", annealed to 0 along a cosine over the run's steps";
        o.RejectUnknown(Name);

        var (data, train, test) = budget.Load();
        int seed = budget.Seed;
        context.Log.WriteLine($"{train.Count} training, {test.Count} test images; {schedule}; {epochs} epoch(s) per batch size");

        var runs = new List<(string Norm, int BatchSize, double Lr, int Steps, TestScores Test, double Seconds)>();
        foreach (int batchSize in batchSizes)
            foreach (var (kind, norm) in s_norms)
            {
                double lr = optimizer == "sgd" ? baseLr * batchSize / 32 : baseLr; // linear scaling rule for SGD
                int steps = epochs * ((train.Count + batchSize - 1) / batchSize);
                Keras.Sequential model = SeedModels.Cnn(kind, train.ClassCount, new RandomGenerator((ulong)seed), RenormSchedule(steps), ghostBatch);
                Optimizer sgdOrAdam = optimizer == "sgd" ? new SGD(model.Network.Parameters(), lr, momentum) : new Adam(model.Network.Parameters(), lr);
                model.Compile(sgdOrAdam, "categorical_crossentropy", "accuracy");
                var annealing = new PerStepSchedule(new CosineAnnealingLR(sgdOrAdam, steps));
                History history = model.Fit(train, epochs, batchSize, null, new[] { annealing }, (ulong)seed);
                TestScores scores = ClassifierRuns.Test(model, train, test);
                double seconds = history.Epochs.Sum(e => e.Seconds);
                context.Log.WriteLine($"{norm} batch {batchSize} (lr {F(lr)}, {steps} steps, {seconds:F0}s): test accuracy {Report.Percent(scores.Accuracy)}"
                    + (scores.HasPreciseBn ? $", {Report.Percent(scores.PreciseBnAccuracy)} with precise BN" : ""));
                runs.Add((norm, batchSize, lr, steps, scores, seconds));
            }

        Csv.Write(context.PathOf("results.csv"), new[] { "norm", "batch_size", "lr", "steps", "test_loss", "test_accuracy", "test_loss_precise_bn", "test_accuracy_precise_bn", "first_bn_variance_ratio", "train_seconds" },
            runs.Select(r => (IReadOnlyList<object>)new object[]
            {
                r.Norm, r.BatchSize, r.Lr, r.Steps, r.Test.Loss, r.Test.Accuracy, r.Test.PreciseBnLoss, r.Test.PreciseBnAccuracy, r.Test.FirstVarianceRatio, r.Seconds,
            }));

        var bn = runs.Where(r => r.Norm == "batch").ToList();
        var gn = runs.Where(r => r.Norm == "group").ToList();
        var renorm = runs.Where(r => r.Norm == "batch-renorm").ToList();
        var ghost = runs.Where(r => r.Norm == "ghost-batch").ToList();
        double[] X<T>(List<T> rows, Func<T, int> size) => rows.Select(r => (double)size(r)).ToArray();
        // Test error on a log scale, as Wu & He plot it: the few points between GroupNorm and precise BN and the tens of
        // points the moving averages lose stay readable in one chart.
        double[] Error(IEnumerable<double> accuracy) => accuracy.Select(a => 100 * (1 - a)).ToArray();
        Figure.SavePanels(context.PathOf("error.png"), new[]
        {
            new Panel("Test error against batch size", "batch size (log scale)", "test error, %", new[]
            {
                new Series("GroupNorm", X(gn, r => r.BatchSize), Error(gn.Select(r => r.Test.Accuracy))),
                new Series("BatchNorm, precise BN", X(bn, r => r.BatchSize), Error(bn.Select(r => r.Test.PreciseBnAccuracy))),
                new Series("BatchNorm, moving averages", X(bn, r => r.BatchSize), Error(bn.Select(r => r.Test.Accuracy))),
                new Series("Batch Renorm, precise BN", X(renorm, r => r.BatchSize), Error(renorm.Select(r => r.Test.PreciseBnAccuracy))),
                new Series($"Ghost BN ({ghostBatch}), precise BN", X(ghost, r => r.BatchSize), Error(ghost.Select(r => r.Test.PreciseBnAccuracy))),
            }, LogY: true, Log2X: true, Legend: LegendPosition.UpperLeft),
        }, panelWidth: 800, height: 500);

        string command = $"normsharp experiment {Name} {budget.CommandOptions(data)} --batch-sizes {string.Join(',', batchSizes)} --epochs {epochs} --optimizer {optimizer} --lr {F(baseLr)}"
            + (optimizer == "sgd" ? $" --momentum {F(momentum)}" : "") + $" --ghost-batch {ghostBatch}";
        var report = new Report("BatchNorm and GroupNorm across batch sizes", command)
            .Paragraph($"Seed 000's CNN with BatchNorm and with GroupNorm (8 groups) trained from the same initial weights for {epochs} epoch(s) of " +
                $"{train.Count} images of {data.Name} at each batch size, by {schedule}, then tested on {test.Count} images. " +
                $"The same number of epochs means a batch of {batchSizes.Min()} takes {batchSizes.Max() / batchSizes.Min()} times the steps of a batch of {batchSizes.Max()}.")
            .Figure("error.png", "Test error against batch size (both axes logarithmic)")
            .Table(new[] { "batch size", "initial learning rate", "steps", "GroupNorm", "BatchNorm, precise BN", "BatchNorm, moving averages", "first BN: moving / re-estimated variance",
                    "Batch Renorm, precise BN", "Batch Renorm, moving averages", $"Ghost BN ({ghostBatch}), precise BN", $"Ghost BN ({ghostBatch}), moving averages" },
                batchSizes.Select(b =>
                {
                    var g = gn.First(r => r.BatchSize == b);
                    var n = bn.First(r => r.BatchSize == b);
                    var rn = renorm.First(r => r.BatchSize == b);
                    var gh = ghost.First(r => r.BatchSize == b);
                    return (IReadOnlyList<string>)new[]
                    {
                        b.ToString(CultureInfo.InvariantCulture), F(g.Lr), g.Steps.ToString(CultureInfo.InvariantCulture),
                        Report.Percent(g.Test.Accuracy), Report.Percent(n.Test.PreciseBnAccuracy), Report.Percent(n.Test.Accuracy), Report.Number(n.Test.FirstVarianceRatio, 3),
                        Report.Percent(rn.Test.PreciseBnAccuracy), Report.Percent(rn.Test.Accuracy), Report.Percent(gh.Test.PreciseBnAccuracy), Report.Percent(gh.Test.Accuracy),
                    };
                }))
            .Paragraph($"Batch Renorm (Ioffe 2017) uses Keras's BatchNormalization(renorm=True) with the paper's schedule scaled to each run: rmax = 1, dmax = 0 " +
                $"(plain BatchNorm) for the first 5 % of the steps, then relaxed linearly to rmax = 3 at 25 % and dmax = 5 at 16 % of the steps (the paper: 5k, 40k, 25k " +
                $"of 160k). Ghost BN (Hoffer et al. 2017) normalizes virtual batches of {ghostBatch} samples; at batch sizes up to {ghostBatch} it is BatchNorm.")
            .Paragraph("\"Moving averages\" tests BatchNorm as Keras would, with the decay-0.99 averages accumulated during training; " +
                "\"precise BN\" re-estimates the statistics over the training set with the final weights (Wu & Johnson 2021). With few " +
                "steps (large batches) the moving averages have not caught up with the weights, which depresses that line for reasons " +
                "that have nothing to do with the batch statistics' noise. " + ClassifierRuns.MovingAverageLag(bn.MaxBy(r => r.BatchSize).Test, bn.MaxBy(r => r.BatchSize).Steps))
            .Paragraph(Verdict(bn.Select(r => (r.BatchSize, r.Test.PreciseBnAccuracy)).ToList(), gn.Select(r => (r.BatchSize, r.Test.Accuracy)).ToList()))
            .Paragraph(SmallBatchVerdict(bn.Select(r => (r.BatchSize, r.Test.PreciseBnAccuracy)).ToList(), renorm.Select(r => (r.BatchSize, r.Test.PreciseBnAccuracy)).ToList(),
                ghost.Select(r => (r.BatchSize, r.Test.PreciseBnAccuracy)).ToList(), ghostBatch));
        report.Save(context.PathOf("report.md"));

        var numbers = new Dictionary<string, double>();
        foreach (var r in runs)
        {
            numbers[$"{r.Norm}.b{r.BatchSize}.test_accuracy"] = r.Test.Accuracy;
            if (r.Test.HasPreciseBn) numbers[$"{r.Norm}.b{r.BatchSize}.test_accuracy_precise_bn"] = r.Test.PreciseBnAccuracy;
        }
        return new ExperimentResult(numbers, new[] { "report.md", "error.png", "results.csv" });
    }

    private static string Verdict(List<(int BatchSize, double Accuracy)> bn, List<(int BatchSize, double Accuracy)> gn)
    {
        var (smallest, largest) = (bn.MinBy(r => r.BatchSize), bn.MaxBy(r => r.BatchSize));
        var (gnSmallest, gnLargest) = (gn.MinBy(r => r.BatchSize), gn.MaxBy(r => r.BatchSize));
        return $"From batch {largest.BatchSize} down to batch {smallest.BatchSize}, BatchNorm (precise BN) goes from {Report.Percent(largest.Accuracy)} to " +
            $"{Report.Percent(smallest.Accuracy)} and GroupNorm from {Report.Percent(gnLargest.Accuracy)} to {Report.Percent(gnSmallest.Accuracy)}. " +
            $"At batch {smallest.BatchSize}, GroupNorm is {Report.Number((gnSmallest.Accuracy - smallest.Accuracy) * 100, 3)} points " +
            $"{(gnSmallest.Accuracy >= smallest.Accuracy ? "above" : "below")} BatchNorm; at batch {largest.BatchSize}, " +
            $"{Report.Number(Math.Abs(gnLargest.Accuracy - largest.Accuracy) * 100, 3)} points {(gnLargest.Accuracy >= largest.Accuracy ? "above" : "below")}. " +
            "With a fixed number of epochs the large batches take few steps, so a network that learns less per step loses accuracy there for lack " +
            "of steps rather than because of its statistics (Wu & He train ResNet-50 for 100 epochs of ImageNet, hundreds of thousands of steps at " +
            "every batch size). One seed per point: rerun with " +
            "other --seed values before reading much into differences of a point or less.";
    }

    private static string SmallBatchVerdict(List<(int BatchSize, double Accuracy)> bn, List<(int BatchSize, double Accuracy)> renorm,
        List<(int BatchSize, double Accuracy)> ghost, int ghostBatch)
    {
        string Gap(double a, double b) => $"{Report.Number(Math.Abs(a - b) * 100, 3)} points {(a >= b ? "above" : "below")}";
        int smallest = bn.Min(r => r.BatchSize), largest = bn.Max(r => r.BatchSize);
        double At(List<(int BatchSize, double Accuracy)> rows, int b) => rows.First(r => r.BatchSize == b).Accuracy;
        return $"At batch {smallest}, Batch Renorm is {Gap(At(renorm, smallest), At(bn, smallest))} BatchNorm (both with precise BN); at batch {largest}, " +
            $"{Gap(At(renorm, largest), At(bn, largest))}. Ghost BN with virtual batches of {ghostBatch} is BatchNorm up to batch {ghostBatch}; at batch {largest} it is " +
            $"{Gap(At(ghost, largest), At(bn, largest))} BatchNorm.";
    }

    private static readonly (NormalizationKind Kind, string Name)[] s_norms =
    {
        (NormalizationKind.Batch, "batch"), (NormalizationKind.Group, "group"), (NormalizationKind.BatchRenorm, "batch-renorm"), (NormalizationKind.GhostBatch, "ghost-batch"),
    };

    /// <summary>Ioffe (2017)'s schedule — plain BatchNorm for 5k of 160k steps, dmax reaching 5 at 25k and rmax 3 at
    /// 40k — scaled to a run of <paramref name="steps"/> steps.</summary>
    private static BatchRenormClipping RenormSchedule(int steps) => new(3, 5, WarmupSteps: steps / 20, RMaxSteps: steps / 4, DMaxSteps: steps / 6);

    private static string F(double v) => v.ToString("G4", CultureInfo.InvariantCulture);
}
