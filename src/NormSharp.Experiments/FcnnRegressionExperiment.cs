using System.Globalization;
using NormSharp.Nn;
using NormSharp.Optim;
using NormSharp.Plotting;

namespace NormSharp.Experiments;

/// <summary>
/// <c>fcnn-regression</c>: seed 004's small fully connected network (Dense 64 with ReLU → normalization → Dense 1)
/// learning y = (x₁ + x₂)/2 from x uniform in [0, 1]², with BatchNorm, with LayerNorm and with no normalization, from
/// the same initial weights on the same batches. The seed's own "layer norm" averages over the batch axis (that is
/// batch normalization without running statistics); here LayerNorm normalizes each sample over its 64 features.
/// </summary>
public sealed class FcnnRegressionExperiment : IExperiment
{
    private const int Hidden = 64, TestSamples = 1000;
    private static readonly string[] s_variants = { "none", "batch", "layer" };

    /// <inheritdoc/>
    public string Name => "fcnn-regression";

    /// <inheritdoc/>
    public string Description => "seed 004's Dense 64 → norm → Dense 1 network learning y = (x1 + x2)/2 with BatchNorm, LayerNorm and neither: MSE curves and predictions on held-out data";

    /// <inheritdoc/>
    public string OptionsHelp => """
        --epochs N           passes over the training set, default 100 (the seed's)
        --samples N          training samples, default 1000 (the seed draws 100); the test set is 1000 more
        --batch-size N       default 32
        --lr RATE            SGD learning rate, default 0.01 (the seed's)
        --seed N             data, initial weights and batch order, default 1
        """;

    /// <inheritdoc/>
    public ExperimentResult Run(ExperimentContext context)
    {
        Options o = context.Options;
        int epochs = o.Int("epochs", 100, 1, 1_000_000);
        int samples = o.Int("samples", 1000, 2, 10_000_000);
        int batchSize = o.Int("batch-size", 32, 2, 1 << 20);
        double lr = o.Double("lr", 0.01, 0, 100);
        int seed = o.Int("seed", 1, 0);
        o.RejectUnknown(Name);

        var dataGenerator = new RandomGenerator((ulong)seed);
        (float[] trainX, float[] trainY) = Sample(samples, dataGenerator);
        (float[] testX, float[] testY) = Sample(TestSamples, dataGenerator);
        context.Log.WriteLine($"{samples} training and {TestSamples} test samples of y = (x1 + x2)/2; SGD lr {lr}, batch {batchSize}, {epochs} epochs");

        var runs = s_variants.Select(variant =>
        {
            Fit run = Train(variant, trainX, trainY, testX, testY, epochs, batchSize, lr, seed);
            context.Log.WriteLine($"{variant}: test MSE {run.TestMse[^1]:G4}");
            return run;
        }).ToList();

        double[] epochAxis = Enumerable.Range(1, epochs).Select(e => (double)e).ToArray();
        Csv.Write(context.PathOf("losses.csv"), new[] { "normalization", "epoch", "train_mse", "test_mse" },
            runs.SelectMany(r => Enumerable.Range(0, epochs).Select(e => (IReadOnlyList<object>)new object[] { r.Variant, e + 1, r.TrainMse[e], r.TestMse[e] })));
        Csv.Write(context.PathOf("predictions.csv"), new[] { "x1", "x2", "target" }.Concat(runs.Select(r => $"prediction_{r.Variant}")).ToArray(),
            Enumerable.Range(0, TestSamples).Select(i => (IReadOnlyList<object>)new object[] { testX[2 * i], testX[2 * i + 1], testY[i] }
                .Concat(runs.Select(r => (object)r.Predictions[i])).ToArray()));

        Figure.SavePanels(context.PathOf("losses.png"), new[]
        {
            ("Training set", "epoch", "MSE", (IReadOnlyList<Series>)runs.Select(r => new Series(Label(r.Variant), epochAxis, r.TrainMse)).ToList(), true),
            ("Held-out test set", "epoch", "MSE", runs.Select(r => new Series(Label(r.Variant), epochAxis, r.TestMse)).ToList(), true),
        });
        double[] targets = testY.Select(v => (double)v).ToArray();
        Figure.SaveScatterPanels(context.PathOf("predictions.png"), runs.Select(r =>
            (Label(r.Variant), "target (x1 + x2)/2", "prediction", new Series($"test MSE {r.TestMse[^1]:G3}", targets, r.Predictions.Select(v => (double)v).ToArray()))).ToList(),
            identityLine: true);

        WriteReport(context, runs, epochs, samples, batchSize, lr, seed);
        var numbers = new Dictionary<string, double>();
        foreach (Fit r in runs)
        {
            numbers[$"{r.Variant}.final_test_mse"] = r.TestMse[^1];
            numbers[$"{r.Variant}.final_train_mse"] = r.TrainMse[^1];
            numbers[$"{r.Variant}.largest_test_error"] = r.LargestError;
        }
        return new ExperimentResult(numbers, new[] { "report.md", "losses.png", "predictions.png", "losses.csv", "predictions.csv" });
    }

    private static string Label(string variant) => variant switch { "batch" => "BatchNorm", "layer" => "LayerNorm", _ => "no normalization" };

    /// <summary><paramref name="count"/> points x uniform in [0, 1]² (row-major (count, 2)) and their targets (x₁ + x₂)/2.</summary>
    private static (float[] X, float[] Y) Sample(int count, RandomGenerator generator)
    {
        var x = new float[2 * count];
        var y = new float[count];
        for (int i = 0; i < count; i++)
        {
            x[2 * i] = (float)generator.NextDouble();
            x[2 * i + 1] = (float)generator.NextDouble();
            y[i] = (x[2 * i] + x[2 * i + 1]) / 2;
        }
        return (x, y);
    }

    /// <summary>Seed 004's network: Dense(2 → 64) with ReLU, then the normalization (the seed applies it after the
    /// activation), then Dense(64 → 1). The Dense layers draw from the same generator in every variant, so all three
    /// start from the same weights.</summary>
    private static Sequential Network(string variant, int seed)
    {
        var generator = new RandomGenerator((ulong)seed + 1);
        var net = new Sequential(new Linear(2, Hidden, generator: generator), new ReLU());
        if (variant == "batch") net.Add(new BatchNorm1d(Hidden));
        if (variant == "layer") net.Add(new LayerNorm(Hidden));
        return net.Add(new Linear(Hidden, 1, generator: generator));
    }

    private static Fit Train(string variant, float[] trainX, float[] trainY, float[] testX, float[] testY, int epochs, int batchSize, double lr, int seed)
    {
        Sequential net = Network(variant, seed);
        var optimizer = new SGD(net.Parameters(), lr);
        int samples = trainY.Length;
        var trainMse = new double[epochs];
        var testMse = new double[epochs];
        var x = new float[2 * batchSize];
        var y = new float[batchSize];
        float[] predictions = Array.Empty<float>();
        for (int epoch = 0; epoch < epochs; epoch++)
        {
            int[] order = Enumerable.Range(0, samples).ToArray();
            new RandomGenerator((ulong)seed + 0x9E3779B97F4A7C15UL * (ulong)(epoch + 1)).Shuffle(order.AsSpan());
            // A last batch of one sample is dropped: BatchNorm cannot normalize a single sample.
            for (int start = 0; start + 1 < samples; start += batchSize)
            {
                int count = Math.Min(batchSize, samples - start);
                for (int i = 0; i < count; i++)
                {
                    x[2 * i] = trainX[2 * order[start + i]];
                    x[2 * i + 1] = trainX[2 * order[start + i] + 1];
                    y[i] = trainY[order[start + i]];
                }
                using var scope = TensorScope.Begin();
                Tensor loss = Functional.MseLoss(net.Forward(Tensor.FromArray(x[..(2 * count)], count, 2)), Tensor.FromArray(y[..count], count, 1));
                optimizer.ZeroGrad();
                loss.Backward();
                optimizer.Step();
            }
            trainMse[epoch] = Mse(Predict(net, trainX), trainY);
            predictions = Predict(net, testX);
            testMse[epoch] = Mse(predictions, testY);
        }
        double largestError = predictions.Select((p, i) => Math.Abs((double)p - testY[i])).Max();
        return new Fit(variant, trainMse, testMse, predictions, largestError);
    }

    /// <summary>The network's outputs for every row of <paramref name="x"/> in evaluation mode (BatchNorm uses its
    /// running statistics, as at inference).</summary>
    private static float[] Predict(Sequential net, float[] x)
    {
        net.Eval();
        float[] result;
        using (Tensor.NoGrad())
        using (TensorScope.Begin())
            result = net.Forward(Tensor.FromArray(x, x.Length / 2, 2)).ToArray();
        net.Train();
        return result;
    }

    private static double Mse(float[] predictions, float[] targets)
    {
        double sum = 0;
        for (int i = 0; i < targets.Length; i++) sum += ((double)predictions[i] - targets[i]) * ((double)predictions[i] - targets[i]);
        return sum / targets.Length;
    }

    private void WriteReport(ExperimentContext context, List<Fit> runs, int epochs, int samples, int batchSize, double lr, int seed)
    {
        string F(double v) => v.ToString("G", CultureInfo.InvariantCulture);
        string command = $"normsharp experiment {Name} --epochs {epochs} --samples {samples} --batch-size {batchSize} --lr {F(lr)} --seed {seed}";
        Fit best = runs.Where(r => double.IsFinite(r.TestMse[^1])).MinBy(r => r.TestMse[^1]) ?? runs[0];
        new Report("Seed 004's regression network with BatchNorm, LayerNorm and neither", command)
            .Paragraph($"Seed 004's fully connected network, Dense(2 → {Hidden}) with ReLU → normalization → Dense({Hidden} → 1), learns " +
                $"y = (x₁ + x₂)/2 for x uniform in [0, 1]² from {samples} samples, trained by SGD (learning rate {F(lr)}) on batches of {batchSize} " +
                $"for {epochs} epochs with a mean-squared-error loss, three times from the same initial Dense weights on the same batches: " +
                $"with BatchNorm1d({Hidden}), with LayerNorm({Hidden}) and with no normalization. Errors are measured in evaluation mode " +
                $"on the whole training set and on {TestSamples} held-out samples after every epoch.")
            .Paragraph("Done correctly: the seed's `layer_norm` takes the mean and variance over axis 0, the batch, which makes it a second " +
                "batch normalization (without running statistics); LayerNorm here normalizes each sample over its own 64 features, so a " +
                "sample's prediction does not depend on the rest of its batch. The seed's hand-written backward pass and its N(0, 1) " +
                "initial weights are not reproduced; the layers use PyTorch's initialization and the autograd's gradients.")
            .Figure("losses.png", "MSE per epoch on the training and held-out sets (log scale)")
            .Figure("predictions.png", "Prediction against target on the held-out set after training; the dashed line is a perfect fit")
            .Table(new[] { "normalization", "final training MSE", "final test MSE", "largest absolute test error" },
                runs.Select(r => (IReadOnlyList<string>)new[] { Label(r.Variant), Report.Number(r.TrainMse[^1], 3), Report.Number(r.TestMse[^1], 3), Report.Number(r.LargestError, 3) }))
            .Paragraph($"Measured: the lowest held-out MSE is {Label(best.Variant)}'s ({Report.Number(best.TestMse[^1], 3)}). " + Reading(runs))
            .Save(context.PathOf("report.md"));
    }

    private static string Reading(List<Fit> runs)
    {
        Fit none = runs.First(r => r.Variant == "none"), batch = runs.First(r => r.Variant == "batch");
        string Compare(Fit r) => !double.IsFinite(r.TestMse[^1]) ? $"{Label(r.Variant)} diverged (its error became infinite or NaN; try a lower --lr)"
            : r.TestMse[^1] < none.TestMse[^1]
            ? $"{Label(r.Variant)} ends {none.TestMse[^1] / r.TestMse[^1]:F1}× below the network without normalization"
            : $"{Label(r.Variant)} ends {r.TestMse[^1] / none.TestMse[^1]:F1}× above the network without normalization";
        string seedClaim = batch.TestMse[^1] < none.TestMse[^1]
            ? "This run agrees with the seed's statement that the BatchNorm model's predictions are closer to the true values."
            : "This run does not bear out the seed's statement that the BatchNorm model's predictions are closer to the true values.";
        return string.Join("; ", runs.Where(r => r != none).Select(Compare)) + ". " + seedClaim + " The target is a linear function of " +
            "two inputs that already lie in [0, 1], fitted through one hidden layer, so there is little for normalization to fix. " +
            "One seed; rerun with other --seed values before reading much into small gaps.";
    }

    private sealed record Fit(string Variant, double[] TrainMse, double[] TestMse, float[] Predictions, double LargestError);
}
