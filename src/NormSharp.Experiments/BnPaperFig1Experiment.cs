using System.Diagnostics;
using System.Globalization;
using NormSharp.Data;
using NormSharp.Nn;
using NormSharp.Optim;
using NormSharp.Plotting;

namespace NormSharp.Experiments;

/// <summary>
/// <c>bn-paper-fig1</c>: Ioffe &amp; Szegedy 2015, Figure 1. A fully connected network 784 → 100 → 100 → 100 → 10 with
/// sigmoid hidden units, trained by SGD on batches of 60 twice from the same initial weights and batch order: plain, and
/// with BatchNorm before each sigmoid. Records (a) the test accuracy against training steps and (b, c) the 15th, 50th
/// and 85th percentiles, over the test set, of the input to one sigmoid of the last hidden layer.
/// </summary>
public sealed class BnPaperFig1Experiment : IExperiment
{
    private const int BatchSize = 60, Hidden = 100;
    private static readonly double[] s_percentiles = { 15, 50, 85 };

    /// <inheritdoc/>
    public string Name => "bn-paper-fig1";

    /// <inheritdoc/>
    public string Description => "Ioffe & Szegedy 2015 Figure 1: a 3×100 sigmoid network with and without BatchNorm; test accuracy and the 15/50/85th percentiles of one sigmoid's input over training";

    /// <inheritdoc/>
    public string OptionsHelp => """
        --steps N            training steps of 60 images, default 50000 (the paper's)
        --eval-every N       steps between evaluations on the test set, default 500
        --lr RATE            SGD learning rate (no momentum) for both networks, default 0.5
        --init-std S         weights start N(0, S²) ("small random Gaussian values"), biases 0; default 0.01
        --dataset NAME       mnist-subset (default), mnist, fashion-mnist; --data-dir DIR reads its IDX files from DIR
        --seed N             initial weights, batch order and the monitored unit, default 1
        """;

    /// <inheritdoc/>
    public ExperimentResult Run(ExperimentContext context)
    {
        Options o = context.Options;
        int steps = o.Int("steps", 50_000, 1, 10_000_000);
        int evalEvery = o.Int("eval-every", 500, 1, 10_000_000);
        double lr = o.Double("lr", 0.5, 0, 100);
        double initStd = o.Double("init-std", 0.01, 0, 100);
        Func<LoadedDataset> load = context.DatasetOption();
        int seed = o.Int("seed", 1, 0);
        o.RejectUnknown(Name);

        LoadedDataset data = load();
        int unit = new RandomGenerator((ulong)seed + 1000).NextInt(Hidden);
        context.Log.WriteLine($"SGD lr {lr}, batch {BatchSize}, {steps} steps, weights N(0, {initStd}²); monitoring unit {unit} of the last hidden layer");

        var runs = new[] { Train("without BN", batchNorm: false), Train("with BN", batchNorm: true) };

        Curve Train(string label, bool batchNorm)
        {
            var clock = Stopwatch.StartNew();
            var run = new Curve(label, TrainNetwork(data, batchNorm, steps, evalEvery, lr, initStd, seed, unit, context.Log, label), 0);
            run = run with { Seconds = clock.Elapsed.TotalSeconds };
            context.Log.WriteLine($"{label}: test accuracy {Report.Percent(run.Points[^1].Accuracy)} after {steps} steps ({run.Seconds:F0}s)");
            return run;
        }

        Curve plain = runs[0], bn = runs[1];
        var rows = plain.Points.Zip(bn.Points, (p, b) => (Plain: p, Bn: b)).ToList();
        Csv.Write(context.PathOf("fig1.csv"), new[] { "step", "test_accuracy_without_bn", "test_accuracy_with_bn", "train_loss_without_bn", "train_loss_with_bn" },
            rows.Select(r => (IReadOnlyList<object>)new object[] { r.Plain.Step, r.Plain.Accuracy, r.Bn.Accuracy, r.Plain.TrainLoss, r.Bn.TrainLoss }));
        Csv.Write(context.PathOf("fig1-percentiles.csv"),
            new[] { "step", "p15_without_bn", "p50_without_bn", "p85_without_bn", "p15_with_bn", "p50_with_bn", "p85_with_bn" },
            rows.Select(r => (IReadOnlyList<object>)new object[] { r.Plain.Step }.Concat(r.Plain.Percentiles.Cast<object>()).Concat(r.Bn.Percentiles.Cast<object>()).ToArray()));

        double[] x = plain.Points.Select(p => (double)p.Step).ToArray();
        Figure.SaveLines(context.PathOf("fig1a.png"), "(a) Test accuracy", "training steps", "test accuracy",
            runs.Select(r => new Series(r.Label, x, r.Points.Select(p => p.Accuracy).ToArray())), legendBelow: true);
        IReadOnlyList<Series> PercentileLines(Curve r) => s_percentiles.Select((q, k) =>
            new Series($"{q}th percentile", x, r.Points.Select(p => p.Percentiles[k]).ToArray())).ToList();
        Figure.SavePanels(context.PathOf("fig1bc.png"), new[]
        {
            ("(b) Without BN", "training steps", $"input to sigmoid unit {unit}", PercentileLines(plain), false),
            ("(c) With BN", "training steps", $"input to sigmoid unit {unit}", PercentileLines(bn), false),
        });

        WriteReport(context, data, runs, steps, evalEvery, lr, initStd, seed, unit);
        var numbers = new Dictionary<string, double>();
        foreach (var (run, key) in new[] { (plain, "without_bn"), (bn, "with_bn") })
        {
            Point last = run.Points[^1];
            numbers[$"{key}.final_test_accuracy"] = last.Accuracy;
            for (int k = 0; k < s_percentiles.Length; k++) numbers[$"{key}.final_p{s_percentiles[k]}"] = last.Percentiles[k];
            numbers[$"{key}.seconds"] = run.Seconds;
        }
        return new ExperimentResult(numbers, new[] { "report.md", "fig1a.png", "fig1bc.png", "fig1.csv", "fig1-percentiles.csv" });
    }

    /// <summary>The network of Figure 1: three hidden layers of 100 sigmoid units, with BatchNorm1d between each Linear and
    /// its sigmoid when <paramref name="batchNorm"/> (the paper's "BN added to each hidden layer"; the Linear bias is kept
    /// so both networks start from identical weights, BN's β makes it redundant).</summary>
    private static Sequential Network(bool batchNorm, double initStd, int seed)
    {
        var generator = new RandomGenerator((ulong)seed);
        var net = new Sequential();
        int inputs = 784;
        for (int layer = 0; layer < 3; layer++)
        {
            net.Add(GaussianLinear(inputs, Hidden, initStd, generator));
            if (batchNorm) net.Add(new BatchNorm1d(Hidden));
            net.Add(new Sigmoid());
            inputs = Hidden;
        }
        return net.Add(GaussianLinear(Hidden, 10, initStd, generator));
    }

    private static Linear GaussianLinear(int inputs, int outputs, double std, RandomGenerator generator)
    {
        var layer = new Linear(inputs, outputs);
        Init.Normal(layer.Weight, 0, std, generator);
        Init.Constant(layer.Bias!, 0);
        return layer;
    }

    private static List<Point> TrainNetwork(LoadedDataset data, bool batchNorm, int steps, int evalEvery, double lr, double initStd, int seed, int unit,
        TextWriter log, string label)
    {
        Sequential net = Network(batchNorm, initStd, seed);
        var optimizer = new SGD(net.Parameters(), lr);
        var loader = new DataLoader(data.Train, BatchSize, shuffle: true, seed: (ulong)seed, dropLast: true);
        Tensor test = data.Test.ToTensor().Reshape(data.Test.Count, -1);
        int[] testLabels = data.Test.Labels.ToArray();

        var points = new List<Point>();
        double lossSum = 0;
        int lossCount = 0, step = 0;
        for (int epoch = 0; step < steps; epoch++)
        {
            foreach (Batch batch in loader.Batches(epoch))
            {
                using (batch)
                using (TensorScope.Begin())
                {
                    Tensor logits = net.Forward(batch.Images.Reshape(batch.Count, -1));
                    Tensor loss = Functional.CrossEntropy(logits, batch.Labels);
                    optimizer.ZeroGrad();
                    loss.Backward();
                    optimizer.Step();
                    lossSum += loss.Item();
                    lossCount++;
                }
                step++;
                if (step % evalEvery == 0 || step == steps)
                {
                    points.Add(Evaluate(net, test, testLabels, unit, step, lossSum / lossCount));
                    (lossSum, lossCount) = (0, 0);
                    if (step % (evalEvery * 10) == 0) log.WriteLine($"{label} step {step}: test accuracy {Report.Percent(points[^1].Accuracy)}");
                }
                if (step == steps) break;
            }
        }
        return points;
    }

    /// <summary>Test accuracy and the percentiles of the input to sigmoid <paramref name="unit"/> of the last hidden
    /// layer over the test set, in evaluation mode (BN uses its running statistics, as at inference).</summary>
    private static Point Evaluate(Sequential net, Tensor test, int[] labels, int unit, int step, double trainLoss)
    {
        net.Eval();
        int correct = 0;
        var unitInputs = new double[labels.Length];
        const int chunk = 500;
        using (Tensor.NoGrad())
            for (int start = 0; start < labels.Length; start += chunk)
            {
                using var scope = TensorScope.Begin();
                int count = Math.Min(chunk, labels.Length - start);
                Tensor x = test.Narrow(0, start, count), lastSigmoidInput = x;
                foreach (Module layer in net.Layers)
                {
                    if (layer is Sigmoid) lastSigmoidInput = x;
                    x = layer.Forward(x);
                }
                int[] predicted = x.ArgMax(-1);
                float[] pre = lastSigmoidInput.ToArray();
                for (int i = 0; i < count; i++)
                {
                    if (predicted[i] == labels[start + i]) correct++;
                    unitInputs[start + i] = pre[i * Hidden + unit];
                }
            }
        net.Train();
        Array.Sort(unitInputs);
        return new Point(step, (double)correct / labels.Length, s_percentiles.Select(q => Percentile(unitInputs, q)).ToArray(), trainLoss);
    }

    /// <summary>The q-th percentile of sorted values by linear interpolation between closest ranks (NumPy's default).</summary>
    internal static double Percentile(double[] sorted, double q)
    {
        double position = q / 100 * (sorted.Length - 1);
        int below = (int)Math.Floor(position);
        int above = Math.Min(below + 1, sorted.Length - 1);
        return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
    }

    private void WriteReport(ExperimentContext context, LoadedDataset data, Curve[] runs, int steps, int evalEvery, double lr, double initStd, int seed, int unit)
    {
        string F(double v) => v.ToString("G", CultureInfo.InvariantCulture);
        Curve plain = runs[0], bn = runs[1];
        string command = $"normsharp experiment {Name} --dataset {data.Name} --steps {steps} --eval-every {evalEvery} --lr {F(lr)} --init-std {F(initStd)} --seed {seed}";
        string Spread(Point p) => $"{Report.Number(p.Percentiles[0], 3)} / {Report.Number(p.Percentiles[1], 3)} / {Report.Number(p.Percentiles[2], 3)}";
        int quarter = plain.Points.FindIndex(p => p.Step >= steps / 4);
        var report = new Report("Batch normalization paper, Figure 1 (Ioffe & Szegedy 2015)", command)
            .Paragraph($"A fully connected network 784 → 100 → 100 → 100 → 10 with sigmoid hidden units and a softmax cross-entropy loss, " +
                $"trained by plain SGD (learning rate {F(lr)}, no momentum or weight decay) on batches of {BatchSize} images of {data.Name} " +
                $"({data.Train.Count} training images) for {steps} steps, twice from the same initial weights (N(0, {F(initStd)}²), biases 0) and the " +
                $"same batches: once as is and once with BatchNorm before each sigmoid. Every {evalEvery} steps the network is evaluated on the " +
                $"{data.Test.Count} test images in inference mode (BN with its running averages); (b) and (c) show the 15th, 50th and 85th " +
                $"percentiles over the test set of the input to sigmoid unit {unit} (chosen at random by the seed) of the last hidden layer.")
            .Figure("fig1a.png", "(a) Test accuracy against training steps")
            .Figure("fig1bc.png", "(b, c) 15th, 50th and 85th percentiles of the input to one sigmoid of the last hidden layer, without and with BN")
            .Table(new[] { "network", "final test accuracy", $"test accuracy at step {plain.Points[quarter].Step}", $"p15 / p50 / p85 at step {plain.Points[0].Step}",
                    $"at step {plain.Points[quarter].Step}", $"at step {steps}", "training time" },
                runs.Select(r => (IReadOnlyList<string>)new[]
                {
                    r.Label, Report.Percent(r.Points[^1].Accuracy), Report.Percent(r.Points[quarter].Accuracy), Spread(r.Points[0]),
                    Spread(r.Points[quarter]), Spread(r.Points[^1]), $"{r.Seconds:F0} s",
                }))
            .Paragraph(Verdict(plain, bn))
            .Paragraph($"What differs from the paper: it trains on the 60,000 images of full MNIST (this run: {data.Train.Count} images of " +
                $"{data.Name}) and does not state the learning rate or the scale of its \"small random Gaussian\" initial weights; " +
                "learning rate 0.5 and N(0, 0.01²) are the defaults here because they reproduce the figure's shape. The exact accuracies " +
                "therefore differ from the paper's; the comparison between the two networks is what the figure is about.");
        report.Save(context.PathOf("report.md"));
    }

    private static string Verdict(Curve plain, Curve bn)
    {
        double Width(Point p) => p.Percentiles[2] - p.Percentiles[0];
        double plainDrift = plain.Points.Max(p => p.Percentiles[1]) - plain.Points.Min(p => p.Percentiles[1]);
        double bnDrift = bn.Points.Max(p => p.Percentiles[1]) - bn.Points.Min(p => p.Percentiles[1]);
        double gap = bn.Points[^1].Accuracy - plain.Points[^1].Accuracy;
        bool ahead = bn.Points[0].Accuracy > plain.Points[0].Accuracy;
        return $"Measured: at the first evaluation (step {bn.Points[0].Step}) the test accuracy is {Report.Percent(bn.Points[0].Accuracy)} with BN and " +
            $"{Report.Percent(plain.Points[0].Accuracy)} without; at the end it is {Report.Percent(bn.Points[^1].Accuracy)} against " +
            $"{Report.Percent(plain.Points[^1].Accuracy)} ({(gap >= 0 ? "+" : "")}{gap * 100:F2} points). Over training, the median input to the monitored sigmoid moves over a range of " +
            $"{Report.Number(plainDrift, 3)} without BN and {Report.Number(bnDrift, 3)} with BN, and the 15–85th percentile spread goes from " +
            $"{Report.Number(Width(plain.Points[0]), 3)} to {Report.Number(Width(plain.Points[^1]), 3)} without BN and from " +
            $"{Report.Number(Width(bn.Points[0]), 3)} to {Report.Number(Width(bn.Points[^1]), 3)} with BN. " +
            (ahead && gap > 0 && bnDrift < plainDrift
                ? "This reproduces the figure's message: the BN network trains faster and to a higher accuracy, and the distribution of its sigmoid inputs changes less over training than the plain network's."
                : "This run does not show the figure's full message; see the numbers above.");
    }

    private sealed record Point(int Step, double Accuracy, double[] Percentiles, double TrainLoss);

    private sealed record Curve(string Label, List<Point> Points, double Seconds);
}
