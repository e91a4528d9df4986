using System.Globalization;
using NormSharp.Data;
using NormSharp.Keras;
using NormSharp.Nn;
using NormSharp.Optim;
using NormSharp.Plotting;
using NormSharp.Training;

namespace NormSharp.Experiments;

/// <summary>
/// <c>norm-compare</c>: seed 000's CNN trained four times — with BatchNorm, LayerNorm, GroupNorm and without
/// normalization — from the same initial convolution and dense weights, on the same batches, with the same optimizer
/// and budget. Draws the training and validation loss and accuracy per epoch, and tabulates the test accuracy and the
/// time per epoch. BatchNorm models are tested twice: with the moving averages Keras keeps (decay 0.99, which trail
/// the weights by about a hundred steps and so lag on a small data set) and after re-estimating the statistics with
/// the final weights (precise BN).
/// </summary>
public sealed class NormCompareExperiment : IExperiment
{
    private static readonly string[] s_norms = { "batch", "layer", "group", "none" };

    /// <inheritdoc/>
    public string Name => "norm-compare";

    /// <inheritdoc/>
    public string Description => "seed 000's CNN with BatchNorm, LayerNorm, GroupNorm and no normalization: loss and accuracy curves, test accuracy, time per epoch";

    /// <inheritdoc/>
    public string OptionsHelp => DataBudget.Help + "\n" + """
        --norms LIST         default batch,layer,group,none
        --epochs N           default 4
        --batch-size N       default 128 (the seed's)
        --lr RATE            Adam learning rate, default 1e-3 (the seed's optimizer)
        --validation F       fraction of the training set held out for the validation curves, default 0.1
        """;

    /// <inheritdoc/>
    public ExperimentResult Run(ExperimentContext context)
    {
        Options o = context.Options;
        var budget = new DataBudget(context);
        string[] norms = o.String("norms", string.Join(',', s_norms)).Split(',');
        foreach (string n in norms)
            if (!s_norms.Contains(n)) throw new UsageException($"--norms takes a comma-separated list of {string.Join(", ", s_norms)}; got '{n}'");
        int epochs = o.Int("epochs", 4, 1, 10_000);
        int batchSize = o.Int("batch-size", 128, 1, 1 << 16);
        double lr = o.Double("lr", 1e-3, 0, 10);
        double validationFraction = o.Double("validation", 0.1, 0.001, 0.9);
        o.RejectUnknown(Name);

        var (data, trainAndValidation, test) = budget.Load();
        int seed = budget.Seed;
        var (train, validation) = trainAndValidation.Split(validationFraction, (ulong)seed);
        context.Log.WriteLine($"{train.Count} training, {validation.Count} validation, {test.Count} test images; Adam {lr}, batch {batchSize}, {epochs} epochs");

        var runs = new List<(string Norm, History History, PreciseBnValidation? Precise, TestScores Test, long Parameters)>();
        foreach (string norm in norms)
        {
            NormalizationKind kind = SeedModels.ParseNormalization(norm);
            Keras.Sequential model = SeedModels.Cnn(kind, train.ClassCount, new RandomGenerator((ulong)seed));
            model.Compile(new Adam(model.Network.Parameters(), lr), "categorical_crossentropy", "accuracy");
            PreciseBnValidation? precise = kind == NormalizationKind.Batch ? new PreciseBnValidation(train, validation) : null;
            var callbacks = new List<Callback> { new EpochLogger(context.Log, norm) };
            if (precise is not null) callbacks.Insert(0, precise);
            History history = model.Fit(train, epochs, batchSize, validation, callbacks, (ulong)seed);
            TestScores scores = ClassifierRuns.Test(model, train, test);
            context.Log.WriteLine($"{norm}: test accuracy {Report.Percent(scores.Accuracy)}" + (scores.HasPreciseBn ? $", {Report.Percent(scores.PreciseBnAccuracy)} with precise BN" : ""));
            runs.Add((norm, history, precise, scores, model.Network.ParameterCount()));
        }

        Csv.Write(context.PathOf("history.csv"), new[] { "norm", "epoch", "loss", "accuracy", "val_loss", "val_accuracy", "val_loss_precise_bn", "val_accuracy_precise_bn", "seconds" },
            runs.SelectMany(r => r.History.Epochs.Select((e, i) => (IReadOnlyList<object>)new object[]
            {
                r.Norm, e.Epoch, e.Metrics["loss"], e.Metrics["accuracy"], e.Metrics["val_loss"], e.Metrics["val_accuracy"],
                r.Precise?.Loss[i] ?? double.NaN, r.Precise?.Accuracy[i] ?? double.NaN, e.Seconds,
            })));
        Csv.Write(context.PathOf("results.csv"), new[] { "norm", "trainable_parameters", "test_loss", "test_accuracy", "test_loss_precise_bn", "test_accuracy_precise_bn", "first_bn_variance_ratio", "seconds_per_epoch" },
            runs.Select(r => (IReadOnlyList<object>)new object[]
            {
                r.Norm, r.Parameters, r.Test.Loss, r.Test.Accuracy, r.Test.PreciseBnLoss, r.Test.PreciseBnAccuracy, r.Test.FirstVarianceRatio, SecondsPerEpoch(r.History),
            }));

        // One colour per normalization: training solid, validation dashed; BatchNorm's validation with re-estimated
        // statistics dashed and with its moving averages dotted.
        var styles = new List<LineStyle>();
        // Accuracy is drawn as the error 1 − accuracy on a log scale, so that the curves between 95 % and 100 % and the
        // moving averages' chance-level validation fit one readable chart.
        static double[] Error(IEnumerable<double> accuracy) => accuracy.Select(a => 100 * (1 - a)).ToArray();
        IReadOnlyList<Series> Curves(string metric)
        {
            Func<IEnumerable<double>, double[]> value = metric == "loss" ? v => v.ToArray() : Error;
            var curves = new List<Series>();
            styles.Clear();
            foreach (var (r, color) in runs.Select((r, i) => (r, i)))
            {
                double[] epochsDone = r.History.Epochs.Select(e => (double)e.Epoch).ToArray();
                curves.Add(new Series($"{r.Norm} train", epochsDone, value(r.History.Values(metric))));
                styles.Add(new LineStyle(color));
                if (r.Precise is not null)
                {
                    curves.Add(new Series($"{r.Norm} validation, precise BN", epochsDone, value(metric == "loss" ? r.Precise.Loss : r.Precise.Accuracy)));
                    styles.Add(new LineStyle(color, LineDash.Dashed));
                    curves.Add(new Series($"{r.Norm} validation, moving averages", epochsDone, value(r.History.Values("val_" + metric))));
                    styles.Add(new LineStyle(color, LineDash.Dotted));
                }
                else
                {
                    curves.Add(new Series($"{r.Norm} validation", epochsDone, value(r.History.Values("val_" + metric))));
                    styles.Add(new LineStyle(color, LineDash.Dashed));
                }
            }
            return curves;
        }
        IReadOnlyList<Series> lossCurves = Curves("loss");
        LineStyle[] curveStyles = styles.ToArray();
        Figure.SavePanels(context.PathOf("curves.png"), new[]
        {
            new Panel("Loss", "epoch", "cross-entropy", lossCurves, LogY: true, IntegerX: true, Legend: LegendPosition.OutsideRight, Styles: curveStyles),
            new Panel("Accuracy, drawn as error", "epoch", "error = 100 % − accuracy, %", Curves("accuracy"), LogY: true, IntegerX: true, Legend: LegendPosition.None, Styles: curveStyles),
        }, panelWidth: 760, height: 520);

        string command = $"normsharp experiment {Name} {budget.CommandOptions(data)} --epochs {epochs} --batch-size {batchSize} --lr {F(lr)}";
        var report = new Report("Normalization layers compared on seed 000's CNN", command)
            .Paragraph($"Seed 000's CNN (three blocks of 3×3 convolution → normalization → ReLU → 2×2 max-pool with 32, 64 and 128 filters, " +
                $"then Dense 128 ReLU → normalization → Dense {train.ClassCount} softmax) trained with each normalization from the same initial " +
                $"weights on the same batches: Adam (learning rate {F(lr)}), batch {batchSize}, {epochs} epochs on {train.Count} images of {data.Name}; " +
                $"the validation curves use {validation.Count} held-out training images, the test accuracy {test.Count} test images. " +
                "GroupNorm uses 8 groups; LayerNorm normalizes each sample over all its (C, H, W) values.")
            .Figure("curves.png", "Training and validation loss and accuracy (as error, 100 % − accuracy) per epoch, both on log scales")
            .Table(new[] { "normalization", "trainable parameters", "test accuracy", "test accuracy, precise BN", "test loss", "seconds per epoch" },
                runs.Select(r => (IReadOnlyList<string>)new[]
                {
                    r.Norm, r.Parameters.ToString(CultureInfo.InvariantCulture), Report.Percent(r.Test.Accuracy), Report.Percent(r.Test.PreciseBnAccuracy),
                    Report.Number(r.Test.HasPreciseBn ? r.Test.PreciseBnLoss : r.Test.Loss), Report.Number(SecondsPerEpoch(r.History), 3),
                }))
            .Paragraph("The BatchNorm model's validation curve and its first test accuracy use Keras's moving averages (decay 0.99), which " +
                $"lag behind the weights on a data set this small ({(train.Count + batchSize - 1) / batchSize} steps an epoch); \"precise BN\" re-estimates " +
                "the statistics over the training set with the final weights before testing (Wu & Johnson 2021), and the test loss column uses " +
                "those for BatchNorm. " + string.Concat(runs.Where(r => r.Test.HasPreciseBn).Select(r => ClassifierRuns.MovingAverageLag(r.Test, r.History.Epochs.Count * ((train.Count + batchSize - 1) / batchSize)))) +
                $" Times are wall-clock seconds of the training batches only, on this machine with {Parallelism.ThreadCount} threads, and vary with what else runs.")
            .Paragraph(Verdict(runs.Select(r => (r.Norm, r.Test.HasPreciseBn ? r.Test.PreciseBnAccuracy : r.Test.Accuracy)).ToList()));
        report.Save(context.PathOf("report.md"));

        var numbers = new Dictionary<string, double>();
        foreach (var r in runs)
        {
            numbers[$"{r.Norm}.test_accuracy"] = r.Test.Accuracy;
            if (r.Test.HasPreciseBn) numbers[$"{r.Norm}.test_accuracy_precise_bn"] = r.Test.PreciseBnAccuracy;
            numbers[$"{r.Norm}.seconds_per_epoch"] = SecondsPerEpoch(r.History);
        }
        return new ExperimentResult(numbers, new[] { "report.md", "curves.png", "history.csv", "results.csv" });
    }

    private static double SecondsPerEpoch(History history) => history.Epochs.Average(e => e.Seconds);

    /// <summary>After each epoch, the validation loss and accuracy of a BatchNorm model with its statistics
    /// re-estimated over the training set (precise BN); the moving averages are restored afterwards, so training goes
    /// on exactly as it would without this.</summary>
    private sealed class PreciseBnValidation(ImageClassificationDataset train, ImageClassificationDataset validation) : Callback
    {
        public List<double> Loss { get; } = new();
        public List<double> Accuracy { get; } = new();

        public override void OnEpochEnd(EpochRecord record, TrainingContext context)
        {
            Module network = context.Model.Network;
            var movingAverages = network.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value.CloneData());
            network.RecomputeBatchNormStatistics(new DataLoader(train, 256, shuffle: false).Batches(0).Select(b => b.Images));
            IReadOnlyDictionary<string, double> scores = context.Model.Evaluate(validation);
            network.LoadStateDict(movingAverages);
            Loss.Add(scores["loss"]);
            Accuracy.Add(scores["accuracy"]);
        }
    }

    private static string Verdict(IReadOnlyList<(string Norm, double Accuracy)> runs)
    {
        var ranked = runs.OrderByDescending(r => r.Accuracy).ToList();
        return "Ranked by test accuracy (precise BN for BatchNorm): " +
            string.Join(" > ", ranked.Select(r => $"{r.Norm} {Report.Percent(r.Accuracy)}")) +
            ". This is one seed and a short budget; rerun with other --seed values before reading much into small gaps.";
    }

    private static string F(double v) => v.ToString("G", CultureInfo.InvariantCulture);
}
