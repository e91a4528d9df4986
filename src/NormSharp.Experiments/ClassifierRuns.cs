using NormSharp.Data;
using NormSharp.Nn;
using NormSharp.Optim;
using NormSharp.Training;

namespace NormSharp.Experiments;

/// <summary>What the classifier experiments (norm-compare, learning-rate, batch-size) share: trimming a data set to
/// the budget, recording every step's loss, and testing a BatchNorm model both ways.</summary>
internal static class ClassifierRuns
{
    /// <summary>The first <paramref name="count"/> samples of <paramref name="data"/> (all of them when the count is 0
    /// or not smaller than the data set).</summary>
    public static ImageClassificationDataset Take(ImageClassificationDataset data, int count) =>
        count <= 0 || count >= data.Count ? data : data.Subset(Enumerable.Range(0, count).ToArray());

    /// <summary>Why a Keras BatchNorm model tests badly with its moving averages after <paramref name="steps"/> steps,
    /// in numbers: its first layer's moving variance against the re-estimated one, and the weight the average still
    /// gives its starting value of 1.</summary>
    public static string MovingAverageLag(TestScores scores, int steps) =>
        $"After {steps} steps the first BatchNorm layer's moving variance is {Report.Number(scores.FirstVarianceRatio, 3)} times the variance " +
        $"re-estimated with the final weights. A moving variance starts at 1 and still gives that start a weight of 0.99^{steps} = " +
        $"{Report.Number(Math.Pow(0.99, steps), 2)}, so for a layer whose inputs vary much less than 1 — here a 3×3 convolution of [0, 1] pixels " +
        "with Glorot-initialized weights — the start dominates long after the weights have moved on, and every later layer sees inputs on the wrong scale.";

    /// <summary>The test loss and accuracy with the moving averages a BatchNorm model ends training with, and — for a
    /// model with BatchNorm — again after re-estimating the statistics over <paramref name="train"/> with the final
    /// weights (precise BN, Wu &amp; Johnson 2021). The re-estimated statistics stay in the model.</summary>
    public static TestScores Test(Model model, ImageClassificationDataset train, ImageClassificationDataset test)
    {
        IReadOnlyDictionary<string, double> moving = model.Evaluate(test);
        BatchNorm? first = model.Network.NamedModules().Select(m => m.Module).OfType<BatchNorm>().FirstOrDefault(b => b.TrackRunningStats);
        if (first is null) return new TestScores(moving["loss"], moving["accuracy"], double.NaN, double.NaN, double.NaN);
        double movingVariance = first.RunningVar!.ToArray().Average();
        model.Network.RecomputeBatchNormStatistics(new DataLoader(train, 256, shuffle: false).Batches(0).Select(b => b.Images));
        IReadOnlyDictionary<string, double> precise = model.Evaluate(test);
        return new TestScores(moving["loss"], moving["accuracy"], precise["loss"], precise["accuracy"], movingVariance / first.RunningVar!.ToArray().Average());
    }
}

/// <summary>The data options the classifier experiments share (<c>--dataset</c>, <c>--data-dir</c>,
/// <c>--train-size</c>, <c>--test-size</c>, <c>--seed</c>), read when constructed — before any work — and the data
/// they select.</summary>
internal sealed class DataBudget
{
    public const string Help = """
        --dataset NAME       mnist-subset (default), fashion-mnist, mnist, ...; --data-dir DIR reads its IDX files from DIR
        --train-size N       use the first N training images (default: all)
        --test-size N        use the first N test images (default: all)
        --seed N             initialization and batch order, default 0
        """;

    private readonly Func<LoadedDataset> _load;

    public DataBudget(ExperimentContext context)
    {
        _load = context.DatasetOption();
        TrainSize = context.Options.Int("train-size", 0, 0);
        TestSize = context.Options.Int("test-size", 0, 0);
        Seed = context.Options.Int("seed", 0, 0);
    }

    /// <summary>How many training images to use; 0 means all.</summary>
    public int TrainSize { get; }

    /// <summary>How many test images to use; 0 means all.</summary>
    public int TestSize { get; }

    /// <summary>The seed of initialization and batch order.</summary>
    public int Seed { get; }

    /// <summary>Loads the data set and cuts it to the budget.</summary>
    public (LoadedDataset Data, ImageClassificationDataset Train, ImageClassificationDataset Test) Load()
    {
        LoadedDataset data = _load();
        return (data, ClassifierRuns.Take(data.Train, TrainSize), ClassifierRuns.Take(data.Test, TestSize));
    }

    /// <summary>These options as they appear on a command line that reproduces the run.</summary>
    public string CommandOptions(LoadedDataset data) => $"--dataset {data.Name} --seed {Seed}"
        + (TrainSize > 0 ? $" --train-size {TrainSize}" : "") + (TestSize > 0 ? $" --test-size {TestSize}" : "");
}

/// <summary>A model's test scores.</summary>
/// <param name="Loss">Cross-entropy with the statistics the model has after training.</param>
/// <param name="Accuracy">Accuracy with those statistics.</param>
/// <param name="PreciseBnLoss">Cross-entropy after re-estimating BatchNorm statistics (NaN without BatchNorm).</param>
/// <param name="PreciseBnAccuracy">Accuracy after re-estimating BatchNorm statistics (NaN without BatchNorm).</param>
/// <param name="FirstVarianceRatio">For the first BatchNorm layer, the mean moving variance after training divided by
/// the mean re-estimated variance: how far the moving average still is from the statistics it tracks (NaN without
/// BatchNorm).</param>
internal sealed record TestScores(double Loss, double Accuracy, double PreciseBnLoss, double PreciseBnAccuracy, double FirstVarianceRatio)
{
    /// <summary>Whether the model has BatchNorm statistics that were re-estimated.</summary>
    public bool HasPreciseBn => !double.IsNaN(PreciseBnAccuracy);
}

/// <summary>Records the loss of every training step of <see cref="Model.Fit"/> and, when asked, stops training at the
/// first non-finite loss (a diverged run would otherwise spend the rest of its budget on NaNs).</summary>
internal sealed class StepLossRecorder(CancellationTokenSource? stopOnNonFinite = null) : Callback
{
    private readonly List<double> _losses = new();
    private double _epochLossSum;
    private int _epochSamples;

    /// <summary>The loss of each step, in order over all epochs.</summary>
    public IReadOnlyList<double> Losses => _losses;

    /// <summary>Whether a step's loss was NaN or infinite.</summary>
    public bool SawNonFinite { get; private set; }

    public override void OnEpochBegin(int epoch, TrainingContext context) => (_epochLossSum, _epochSamples) = (0, 0);

    public override void OnBatchEnd(BatchProgress progress, TrainingContext context)
    {
        // Fit reports the running mean over the epoch; the step's own loss is the change in the running sum.
        double sum = progress.Loss * progress.Samples;
        double loss = (sum - _epochLossSum) / (progress.Samples - _epochSamples);
        (_epochLossSum, _epochSamples) = (sum, progress.Samples);
        _losses.Add(SawNonFinite ? double.NaN : loss);
        if (!double.IsFinite(loss))
        {
            SawNonFinite = true;
            stopOnNonFinite?.Cancel();
        }
    }
}

/// <summary>Advances a learning-rate schedule after every training step rather than every epoch, so a run of one
/// epoch can still anneal (the schedule's "epochs" count steps).</summary>
internal sealed class PerStepSchedule(LearningRateScheduler schedule) : Callback
{
    public override void OnBatchEnd(BatchProgress progress, TrainingContext context) => schedule.Step();
}

/// <summary>Writes one progress line per epoch to the experiment's log.</summary>
internal sealed class EpochLogger(TextWriter log, string label) : Callback
{
    public override void OnEpochEnd(EpochRecord record, TrainingContext context)
    {
        string metrics = string.Join(", ", record.Metrics.Select(m => $"{m.Key} {m.Value:G4}"));
        log.WriteLine($"{label} epoch {record.Epoch}: {metrics} ({record.Seconds:F1}s)");
    }
}
