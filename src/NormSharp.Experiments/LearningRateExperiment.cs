using System.Globalization;
using NormSharp.Data;
using NormSharp.Keras;
using NormSharp.Optim;
using NormSharp.Plotting;
using NormSharp.Training;

namespace NormSharp.Experiments;

/// <summary>
/// <c>learning-rate</c>: seed 000's CNN with and without BatchNorm trained by plain SGD at each of several learning
/// rates, from the same initial weights on the same batches. Each run is classified from its training loss and test
/// accuracy: it diverged when the loss became NaN or infinite, ended well above where it started, or blew up and left
/// the network at chance; it made no progress when it did not diverge but the accuracy stayed at chance; it is slow when
/// its loss has not yet halved; otherwise it converges. Ioffe &amp; Szegedy (2015, §3.3)
/// claim BatchNorm tolerates higher learning rates; this shows which rates each network survives.
/// </summary>
public sealed class LearningRateExperiment : IExperiment
{
    private static readonly (string Key, string Label, NormalizationKind Kind)[] s_models =
    {
        ("bn", "BatchNorm", NormalizationKind.Batch), ("none", "no normalization", NormalizationKind.None),
    };

    /// <inheritdoc/>
    public string Name => "learning-rate";

    /// <inheritdoc/>
    public string Description => "seed 000's CNN with and without BatchNorm under SGD at several learning rates: which converge, which diverge";

    /// <inheritdoc/>
    public string OptionsHelp => DataBudget.Help + "\n" + """
        --lrs LIST           SGD learning rates, default 0.001,0.01,0.1,1,10
        --epochs N           default 2
        --batch-size N       default 128
        --momentum M         SGD momentum, default 0 (plain SGD)
        """;

    /// <inheritdoc/>
    public ExperimentResult Run(ExperimentContext context)
    {
        Options o = context.Options;
        var budget = new DataBudget(context);
        double[] lrs = o.Doubles("lrs", new[] { 1e-3, 1e-2, 1e-1, 1, 10 });
        if (lrs.Length == 0 || lrs.Any(lr => !(lr > 0) || !double.IsFinite(lr))) throw new UsageException("--lrs must list positive, finite learning rates");
        int epochs = o.Int("epochs", 2, 1, 10_000);
        int batchSize = o.Int("batch-size", 128, 1, 1 << 16);
        double momentum = o.Double("momentum", 0, 0, 0.999);
        o.RejectUnknown(Name);

        var (data, train, test) = budget.Load();
        int seed = budget.Seed;
        double chance = 1.0 / train.ClassCount;
        context.Log.WriteLine($"{train.Count} training, {test.Count} test images; SGD (momentum {F(momentum)}), batch {batchSize}, {epochs} epochs");

        var runs = new List<LrRun>();
        foreach (var (key, label, kind) in s_models)
            foreach (double lr in lrs)
            {
                Keras.Sequential model = SeedModels.Cnn(kind, train.ClassCount, new RandomGenerator((ulong)seed));
                model.Compile(new SGD(model.Network.Parameters(), lr, momentum), "categorical_crossentropy", "accuracy");
                using var stop = new CancellationTokenSource();
                var steps = new StepLossRecorder(stop);
                History history = model.Fit(train, epochs, batchSize, null, new Callback[] { steps, new EpochLogger(context.Log, $"{key} lr {F(lr)}") }, (ulong)seed, stop.Token);
                TestScores scores = ClassifierRuns.Test(model, train, test);
                var run = new LrRun(key, label, lr, steps.Losses.ToArray(), history, scores, chance);
                context.Log.WriteLine($"{key} lr {F(lr)}: {run.Outcome} — test accuracy {Report.Percent(run.Accuracy)}");
                runs.Add(run);
            }

        Csv.Write(context.PathOf("steps.csv"), new[] { "model", "lr", "step", "loss" },
            runs.SelectMany(r => r.StepLosses.Select((loss, i) => (IReadOnlyList<object>)new object[] { r.Key, r.Lr, i + 1, loss })));
        Csv.Write(context.PathOf("results.csv"), new[] { "model", "lr", "outcome", "first_loss", "max_loss", "final_epoch_loss", "test_loss", "test_accuracy", "test_accuracy_moving_averages" },
            runs.Select(r => (IReadOnlyList<object>)new object[]
            {
                r.Key, r.Lr, r.Outcome, r.FirstLoss, r.MaxLoss, r.FinalEpochLoss, r.TestLoss, r.Accuracy, r.Scores.Accuracy,
            }));

        Panel LossPanel(string key, string label) => new(label, "training step", "cross-entropy",
            runs.Where(r => r.Key == key).Select(r => new Series($"lr {F(r.Lr)}", r.StepLosses.Select((_, i) => i + 1.0).ToArray(), r.StepLosses)).ToList(),
            LogY: true, IntegerX: true, YMax: 100);
        Figure.SavePanels(context.PathOf("loss.png"), s_models.Select(m => LossPanel(m.Key, m.Label)).ToList());

        string command = $"normsharp experiment {Name} {budget.CommandOptions(data)} --lrs {string.Join(',', lrs.Select(F))} --epochs {epochs} --batch-size {batchSize} --momentum {F(momentum)}";
        var report = new Report("Learning rates with and without BatchNorm", command)
            .Paragraph($"Seed 000's CNN with BatchNorm and without normalization, each trained from the same initial weights on the same batches " +
                $"by SGD (momentum {F(momentum)}) at learning rates {string.Join(", ", lrs.Select(F))}: batch {batchSize}, {epochs} epochs on {train.Count} " +
                $"images of {data.Name}, tested on {test.Count}. A run **diverged** if its training loss became NaN or infinite (training stops there) " +
                $"or its last epoch's mean loss ended more than 1.5 times its first step's loss, or its loss rose above 1.5 times the first step's and " +
                $"the test accuracy ended below {Report.Percent(2 * chance)} (twice chance: the network blew up and collapsed); it made **no progress** if " +
                "it did not diverge but the test accuracy stayed below twice chance; it is **slow** if its last epoch's mean loss is still above half its " +
                "first step's; otherwise it **converges**. BatchNorm test accuracies use statistics re-estimated " +
                "over the training set (precise BN); the last column has them with Keras's moving averages, which lag far behind the weights in so " +
                "few steps (see norm-compare).")
            .Figure("loss.png", "Training loss of every step per learning rate (log scale, cut at 100: a line leaving the top went higher; NaN and infinite steps are missing)")
            .Table(new[] { "model", "learning rate", "outcome", "first step's loss", "largest loss", "last epoch's mean loss", "test accuracy", "test accuracy, BN moving averages" },
                runs.Select(r => (IReadOnlyList<string>)new[]
                {
                    r.Label, F(r.Lr), r.Outcome, Report.Number(r.FirstLoss), Report.Number(r.MaxLoss), Report.Number(r.FinalEpochLoss), Report.Percent(r.Accuracy),
                    r.Scores.HasPreciseBn ? Report.Percent(r.Scores.Accuracy) : "",
                }))
            .Paragraph(Summary(runs, lrs));
        report.Save(context.PathOf("report.md"));

        var numbers = new Dictionary<string, double>();
        foreach (LrRun r in runs)
        {
            numbers[$"{r.Key}.lr{F(r.Lr)}.test_accuracy"] = r.Accuracy;
            numbers[$"{r.Key}.lr{F(r.Lr)}.diverged"] = r.Outcome == LrRun.Diverged ? 1 : 0;
        }
        return new ExperimentResult(numbers, new[] { "report.md", "loss.png", "steps.csv", "results.csv" });
    }

    private static string Summary(List<LrRun> runs, double[] lrs)
    {
        string Rates(string key, string outcome)
        {
            var rates = runs.Where(r => r.Key == key && r.Outcome == outcome).Select(r => F(r.Lr)).ToList();
            return rates.Count == 0 ? "none" : string.Join(", ", rates);
        }
        return $"Converging learning rates — with BatchNorm: {Rates("bn", LrRun.Converges)}; without: {Rates("none", LrRun.Converges)}. " +
            $"Diverged — with BatchNorm: {Rates("bn", LrRun.Diverged)}; without: {Rates("none", LrRun.Diverged)}. " +
            $"Slow — with BatchNorm: {Rates("bn", LrRun.Slow)}; without: {Rates("none", LrRun.Slow)}. " +
            $"No progress — with BatchNorm: {Rates("bn", LrRun.NoProgress)}; without: {Rates("none", LrRun.NoProgress)}. " +
            "The budget is short, so \"converges\" means the loss is falling and the accuracy is well above chance, not that training has finished.";
    }

    private static string F(double v) => v.ToString("G", CultureInfo.InvariantCulture);

    /// <summary>One training run and how it ended.</summary>
    private sealed class LrRun
    {
        public const string Diverged = "diverged", NoProgress = "no progress", Slow = "slow", Converges = "converges";

        public LrRun(string key, string label, double lr, double[] stepLosses, History history, TestScores scores, double chance)
        {
            (Key, Label, Lr, StepLosses, Scores) = (key, label, lr, stepLosses, scores);
            FirstLoss = stepLosses.Length > 0 ? stepLosses[0] : double.NaN;
            MaxLoss = stepLosses.Where(double.IsFinite).DefaultIfEmpty(double.NaN).Max();
            bool completed = history.Epochs.Count > 0 && stepLosses.All(double.IsFinite);
            FinalEpochLoss = completed ? history.Epochs[^1].Metrics["loss"] : double.NaN;
            bool atChance = Accuracy < 2 * chance;
            // The first step's loss is one batch's, so "above the start" needs a margin to be more than noise.
            Outcome = !completed || FinalEpochLoss > 1.5 * FirstLoss ? Diverged
                : atChance && MaxLoss > 1.5 * FirstLoss ? Diverged // blew up, and what is left predicts nothing
                : atChance ? NoProgress
                : FinalEpochLoss > 0.5 * FirstLoss ? Slow
                : Converges;
        }

        public string Key { get; }
        public string Label { get; }
        public double Lr { get; }
        public double[] StepLosses { get; }
        public TestScores Scores { get; }
        public double FirstLoss { get; }
        public double MaxLoss { get; }
        public double FinalEpochLoss { get; }
        public string Outcome { get; }
        public double Accuracy => Scores.HasPreciseBn ? Scores.PreciseBnAccuracy : Scores.Accuracy;
        public double TestLoss => Scores.HasPreciseBn ? Scores.PreciseBnLoss : Scores.Loss;
    }
}
