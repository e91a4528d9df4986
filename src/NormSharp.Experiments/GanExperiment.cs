using System.Globalization;
using NormSharp.Data;
using NormSharp.Keras;
using NormSharp.Nn;
using NormSharp.Optim;
using NormSharp.Plotting;

namespace NormSharp.Experiments;

/// <summary>
/// <c>gan</c>: seed 004's DCGAN-style GAN with BatchNorm, trained correctly. The generator maps noise through
/// Dense → BatchNorm → LeakyReLU(0.2) → reshape (128, 7, 7) → two stride-2 transposed convolutions (to 14×14, then
/// 28×28), each followed by BatchNorm and LeakyReLU(0.2) → a 7×7 convolution to one channel → tanh. The discriminator
/// is a stride-2 convolution → LeakyReLU → Dropout 0.3 → a stride-2 convolution → BatchNorm → LeakyReLU → Dropout 0.3
/// → Flatten → Dense 1, a logit. Each step trains the discriminator on a real batch (label 1) and a generated batch
/// (label 0), then the generator to make the discriminator say 1 (the non-saturating loss of Goodfellow et al.
/// 2014), both with binary cross-entropy on logits and Adam (2e-4, β1 0.5; Radford et al. 2016). Seed 004 instead
/// stacks generator and discriminator and calls <c>gan.fit</c> on the data set's images and class labels, which does
/// not train a GAN at all.
/// </summary>
public sealed class GanExperiment : IExperiment
{
    private const int GridColumns = 8, GridSamples = 64, ProgressColumns = 10;
    private const double Confident = 0.9;

    /// <inheritdoc/>
    public string Name => "gan";

    /// <inheritdoc/>
    public string Description => "seed 004's GAN with BatchNorm, trained with alternating real/fake discriminator steps: sample grids per epoch and the two losses";

    /// <inheritdoc/>
    public string OptionsHelp => """
        --dataset NAME       mnist-subset (default), fashion-mnist, mnist, ...; --data-dir DIR reads its IDX files from DIR
        --epochs N           default 5
        --batch-size N       default 64
        --latent N           noise dimension, default 100
        --g-width N          channels of the generator's transposed convolutions, default 32 (the seed has 128)
        --d-width N          channels of the discriminator's convolutions, default 64 (the seed has 128)
        --lr RATE            Adam learning rate for both networks, default 2e-4
        --beta1 B            Adam's β1, default 0.5
        --train-size N       use the first N training images (default: all)
        --judge-epochs N     epochs of the seed 000 CNN that scores generated against test images; default 1, 0 skips it
        --judge-samples N    how many generated and test images it scores, default 1000
        --seed N             initialization, noise, dropout and batch order, default 0
        """;

    /// <inheritdoc/>
    public ExperimentResult Run(ExperimentContext context)
    {
        Options o = context.Options;
        Func<LoadedDataset> load = context.DatasetOption();
        int epochs = o.Int("epochs", 5, 1, 10_000);
        int batchSize = o.Int("batch-size", 64, 2, 1 << 16);
        int latent = o.Int("latent", 100, 1, 1 << 16);
        int gWidth = o.Int("g-width", 32, 1, 4096);
        int dWidth = o.Int("d-width", 64, 1, 4096);
        double lr = o.Double("lr", 2e-4, 0, 1);
        double beta1 = o.Double("beta1", 0.5, 0, 0.999);
        int trainSize = o.Int("train-size", 0, 0);
        int judgeEpochs = o.Int("judge-epochs", 1, 0, 1000);
        int judgeSamples = o.Int("judge-samples", 1000, 1, 1_000_000);
        int seed = o.Int("seed", 0, 0);
        o.RejectUnknown(Name);

        LoadedDataset data = load();
        ImageClassificationDataset unitTrain = ClassifierRuns.Take(data.Train, trainSize);
        ImageClassificationDataset train = ToTanhRange(unitTrain);
        if (train.Channels != 1 || train.Height != 28 || train.Width != 28)
            throw new UsageException($"gan needs 28×28 grayscale images; {data.Name} has {train.Channels}×{train.Height}×{train.Width}");
        if (train.Count < batchSize) throw new UsageException($"--batch-size {batchSize} exceeds the {train.Count} training images");

        var init = new RandomGenerator((ulong)seed);
        Module generator = Generator(latent, gWidth, init);
        Module discriminator = Discriminator(dWidth, new RandomGenerator((ulong)seed + 1), init);
        var generatorOptimizer = new Adam(generator.Parameters(), lr, beta1);
        var discriminatorOptimizer = new Adam(discriminator.Parameters(), lr, beta1);
        var noise = new RandomGenerator((ulong)seed + 2);
        Tensor fixedNoise = Tensor.Normal(new[] { GridSamples, latent }, generator: new RandomGenerator((ulong)seed + 3));
        var loader = new DataLoader(train, batchSize, shuffle: true, seed: (ulong)seed, dropLast: true);
        context.Log.WriteLine($"{train.Count} images of {data.Name}, {loader.BatchCount} steps an epoch; generator {generator.ParameterCount():N0} and discriminator {discriminator.ParameterCount():N0} parameters");

        var steps = new List<StepRecord>();
        var files = new List<string> { "report.md", "losses.png", "losses.csv", "samples_progress.png" };
        var progress = new List<float>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int epoch = 1; epoch <= epochs; epoch++)
        {
            foreach (Batch batch in loader.Batches(epoch))
                using (batch)
                using (TensorScope.Begin())
                    steps.Add(Step(epoch, batch.Images, generator, discriminator, generatorOptimizer, discriminatorOptimizer, latent, noise));

            float[] samples = Sample(generator, fixedNoise);
            string grid = $"samples_epoch_{epoch}.png";
            ImageGrid.SaveGray(context.PathOf(grid), samples, GridSamples, 28, 28, GridColumns, low: -1, high: 1);
            files.Add(grid);
            progress.AddRange(samples.AsSpan(0, ProgressColumns * 28 * 28).ToArray());
            var last = steps.Where(s => s.Epoch == epoch).ToList();
            context.Log.WriteLine($"epoch {epoch}: D loss {last.Average(s => s.DiscriminatorLoss):F3}, G loss {last.Average(s => s.GeneratorLoss):F3}, " +
                $"D(x) {last.Average(s => s.RealScore):F3}, D(G(z)) {last.Average(s => s.FakeScore):F3} ({clock.Elapsed.TotalSeconds:F0}s)");
        }
        double seconds = clock.Elapsed.TotalSeconds;
        ImageGrid.SaveGray(context.PathOf("samples_progress.png"), progress.ToArray(), epochs * ProgressColumns, 28, 28, ProgressColumns, low: -1, high: 1);

        Csv.Write(context.PathOf("losses.csv"), new[] { "step", "epoch", "d_loss", "g_loss", "d_real", "d_fake" },
            steps.Select((s, i) => (IReadOnlyList<object>)new object[] { i + 1, s.Epoch, s.DiscriminatorLoss, s.GeneratorLoss, s.RealScore, s.FakeScore }));
        double[] x = steps.Select((_, i) => i + 1.0).ToArray();
        int window = Math.Max(1, loader.BatchCount / 5);
        Series Smoothed(string name, Func<StepRecord, double> value) => new(name, x, TrailingMean(steps.Select(value).ToArray(), window));
        Figure.SavePanels(context.PathOf("losses.png"), new[]
        {
            new Panel("Losses", "training step", "binary cross-entropy", new[]
            {
                Smoothed("discriminator (real + fake)", s => s.DiscriminatorLoss), Smoothed("generator (non-saturating)", s => s.GeneratorLoss),
            }),
            new Panel("Discriminator outputs", "training step", "mean probability of 'real'", new[]
            {
                Smoothed("D(x), real batch", s => s.RealScore), Smoothed("D(G(z)), generated batch", s => s.FakeScore),
            }),
        });

        JudgeScores? judged = null;
        if (judgeEpochs > 0)
        {
            judged = Judge(generator, latent, unitTrain, ClassifierRuns.Take(data.Test, judgeSamples), judgeSamples, judgeEpochs, seed);
            context.Log.WriteLine($"judge (test accuracy {Report.Percent(judged.JudgeAccuracy)}): mean confidence {judged.Generated.MeanConfidence:F3} on generated images, {judged.Real.MeanConfidence:F3} on real ones");
            Csv.Write(context.PathOf("judge.csv"), new[] { "images", "count", "mean_confidence", "confident_fraction" }.Concat(Enumerable.Range(0, data.Train.ClassCount).Select(c => $"class_{c}")).ToArray(),
                new[] { ("generated", judged.Generated), ("real", judged.Real) }.Select(r => (IReadOnlyList<object>)new object[]
                {
                    r.Item1, r.Item2.Count, r.Item2.MeanConfidence, r.Item2.ConfidentFraction,
                }.Concat(r.Item2.ClassCounts.Cast<object>()).ToArray()));
            files.Add("judge.csv");
        }

        var final = steps.Where(s => s.Epoch == epochs).ToList();
        double dLoss = final.Average(s => s.DiscriminatorLoss), gLoss = final.Average(s => s.GeneratorLoss);
        double dReal = final.Average(s => s.RealScore), dFake = final.Average(s => s.FakeScore);
        string command = $"normsharp experiment {Name} --dataset {data.Name} --epochs {epochs} --batch-size {batchSize} --latent {latent} --g-width {gWidth} --d-width {dWidth} " +
            $"--lr {F(lr)} --beta1 {F(beta1)} --judge-epochs {judgeEpochs} --seed {seed}" + (trainSize > 0 ? $" --train-size {trainSize}" : "");
        var report = new Report("A GAN with BatchNorm (seed 004), trained correctly", command)
            .Paragraph($"Generator: Dense {latent} → {128 * 7 * 7} → BatchNorm → LeakyReLU(0.2) → reshape (128, 7, 7) → ConvTranspose 4×4 stride 2 to " +
                $"({gWidth}, 14, 14) → BatchNorm → LeakyReLU(0.2) → ConvTranspose 4×4 stride 2 to ({gWidth}, 28, 28) → BatchNorm → LeakyReLU(0.2) → " +
                $"Conv 7×7 to 1 channel → tanh ({generator.ParameterCount():N0} parameters). Discriminator: Conv 4×4 stride 2 to ({dWidth}, 14, 14) → " +
                $"LeakyReLU(0.2) → Dropout 0.3 → Conv 4×4 stride 2 to ({dWidth}, 7, 7) → BatchNorm → LeakyReLU(0.2) → Dropout 0.3 → Flatten → Dense 1, " +
                $"a logit ({discriminator.ParameterCount():N0} parameters). Weights start from N(0, 0.02) (Radford et al. 2016). Trained on " +
                $"{train.Count} images of {data.Name} scaled to [−1, 1], batch {batchSize}, {epochs} epochs ({steps.Count} steps, {seconds:F0} s), " +
                $"Adam (learning rate {F(lr)}, β1 {F(beta1)}) for each network.")
            .Paragraph("Each step: (1) the discriminator takes one gradient step on binary cross-entropy with logits over a real batch labelled 1 " +
                "and a generated batch labelled 0 (the generated images detached, so the generator is not changed); (2) the generator takes one " +
                "step on the same generated batch, now scored by the updated discriminator and labelled 1 — the non-saturating loss " +
                "−log D(G(z)) of Goodfellow et al. (2014). Both networks' BatchNorm layers see all-real or all-generated batches, as in DCGAN.")
            .Paragraph("**What seed 004 got wrong.** It builds `gan = Sequential([generator, discriminator])` and calls " +
                "`gan.fit(X_train, y_train, ...)`: the stacked model's input is the noise vector, so feeding it images (and digit labels as " +
                "targets for a one-logit real/fake output) does not even match the shapes, and nothing ever shows the discriminator a real " +
                "image labelled real or a generated image labelled fake. A GAN needs two optimizers and alternating updates, as here. " +
                "Even the usual Keras recipe — train the discriminator on real and generated batches, then train the stacked model on noise " +
                "labelled 1 — needs the discriminator frozen inside the stack (`discriminator.trainable = False` before compiling `gan`), " +
                "which the seed omits; without it the generator's step also teaches the discriminator to call generated images real. " +
                "The seed also compiles `binary_crossentropy` on a Dense(1) output without a sigmoid (so the loss would treat logits as " +
                "probabilities; here the loss takes logits), and its text says the discriminator uses layer normalization while its code uses " +
                "BatchNorm (here: BatchNorm, as in the code). The seed's extra Dense 128 ReLU before the 7×7×128 dense layer is left out, " +
                "and the seed's Adam learning rate is 1e-4 where DCGAN's 2e-4 is the default here (--lr 1e-4 gives the seed's).")
            .Figure($"samples_epoch_{epochs}.png", $"64 samples from fixed noise after epoch {epochs}")
            .Figure("samples_progress.png", "The first ten fixed noise vectors after each epoch (one row per epoch)")
            .Figure("losses.png", $"Losses and discriminator outputs, each point the mean of the last {window} steps (every step is in losses.csv)")
            .Table(new[] { "last epoch, mean of steps", "value" }, new[]
            {
                new[] { "discriminator loss (real + fake)", Report.Number(dLoss) },
                new[] { "generator loss", Report.Number(gLoss) },
                new[] { "D(x) on real batches", Report.Number(dReal, 3) },
                new[] { "D(G(z)) on generated batches", Report.Number(dFake, 3) },
            })
            .Paragraph("A GAN's losses do not fall to zero the way a classifier's do: at the equilibrium the discriminator cannot tell the two " +
                "apart, D outputs 1/2 on both, and its loss is 2·ln 2 ≈ 1.386. The samples, not the losses, show whether the generator " +
                "has learnt digits. Samples are drawn with the generator in evaluation mode (BatchNorm's running statistics) from 64 noise " +
                "vectors fixed before training. The grid after each epoch: " +
                string.Join(", ", Enumerable.Range(1, epochs).Select(e => $"[epoch {e}](samples_epoch_{e}.png)")) + ".");
        if (judged is not null)
            report.Paragraph($"**A classifier's view.** Seed 000's CNN (BatchNorm), trained for {judgeEpochs} epoch(s) on the same {unitTrain.Count} images " +
                    $"(test accuracy {Report.Percent(judged.JudgeAccuracy)}), classifies {judged.Generated.Count} generated images and {judged.Real.Count} real test images. " +
                    $"Its confidence (the largest softmax probability) says how much a sample looks like some class; the predicted classes of the confident " +
                    $"(≥ {Confident}) samples show whether the generator covers all classes or has collapsed onto a few. This is a rough stand-in for the " +
                    "Inception Score, not a measure of image quality.")
                .Table(new[] { "images", "mean confidence", $"confidence ≥ {Confident}", "confident predictions per class" }, new[] { ("generated", judged.Generated), ("real (test)", judged.Real) }
                    .Select(r => (IReadOnlyList<string>)new[]
                    {
                        r.Item1, Report.Number(r.Item2.MeanConfidence, 3), Report.Percent(r.Item2.ConfidentFraction), string.Join(" · ", r.Item2.ClassCounts),
                    }));
        report.Save(context.PathOf("report.md"));

        var numbers = new Dictionary<string, double>
        {
            ["final_d_loss"] = dLoss, ["final_g_loss"] = gLoss, ["final_d_real"] = dReal, ["final_d_fake"] = dFake, ["seconds"] = seconds,
        };
        if (judged is not null)
        {
            numbers["judge_test_accuracy"] = judged.JudgeAccuracy;
            numbers["generated_mean_confidence"] = judged.Generated.MeanConfidence;
            numbers["generated_confident_fraction"] = judged.Generated.ConfidentFraction;
            numbers["real_mean_confidence"] = judged.Real.MeanConfidence;
        }
        return new ExperimentResult(numbers, files);
    }

    /// <summary>One GAN step on a real batch: the discriminator on real (1) and generated (0) images, then the
    /// generator against the updated discriminator.</summary>
    private static StepRecord Step(int epoch, Tensor real, Module generator, Module discriminator, Optimizer generatorOptimizer,
        Optimizer discriminatorOptimizer, int latent, RandomGenerator noise)
    {
        int n = real.Shape[0];
        Tensor ones = Tensor.Ones(new[] { n, 1 }), zeros = Tensor.Zeros(new[] { n, 1 });
        Tensor fake = generator.Forward(Tensor.Normal(new[] { n, latent }, generator: noise));

        discriminatorOptimizer.ZeroGrad();
        Tensor realLogits = discriminator.Forward(real);
        Tensor fakeLogits = discriminator.Forward(fake.Detach());
        Tensor discriminatorLoss = Functional.BinaryCrossEntropyWithLogits(realLogits, ones) + Functional.BinaryCrossEntropyWithLogits(fakeLogits, zeros);
        discriminatorLoss.Backward();
        discriminatorOptimizer.Step();

        // Non-saturating generator loss: maximize log D(G(z)) rather than minimize log(1 − D(G(z))), whose gradient
        // vanishes while the discriminator still rejects the samples confidently (Goodfellow et al. 2014, §3).
        generatorOptimizer.ZeroGrad();
        Tensor generatorLoss = Functional.BinaryCrossEntropyWithLogits(discriminator.Forward(fake), ones);
        generatorLoss.Backward();
        generatorOptimizer.Step();

        return new StepRecord(epoch, discriminatorLoss.Item(), generatorLoss.Item(), MeanProbability(realLogits), MeanProbability(fakeLogits));
    }

    private static Module Generator(int latent, int width, RandomGenerator init)
    {
        var g = new Nn.Sequential(
            new Linear(latent, 128 * 7 * 7, bias: false), new BatchNorm1d(128 * 7 * 7), new LeakyReLU(0.2), new Reshape(128, 7, 7),
            // Hout = (H − 1)·2 − 2·1 + 4 = 2H: 7 → 14 → 28.
            new ConvTranspose2d(128, width, 4, stride: 2, padding: 1, bias: false), new BatchNorm2d(width), new LeakyReLU(0.2),
            new ConvTranspose2d(width, width, 4, stride: 2, padding: 1, bias: false), new BatchNorm2d(width), new LeakyReLU(0.2),
            new Conv2d(width, 1, 7, padding: ConvPadding.Same), new Tanh());
        DcganInitialize(g, init);
        return g;
    }

    private static Module Discriminator(int width, RandomGenerator dropout, RandomGenerator init)
    {
        var d = new Nn.Sequential(
            // Hout = ⌊(H + 2·1 − 4)/2⌋ + 1 = H/2: 28 → 14 → 7.
            new Conv2d(1, width, 4, stride: 2, padding: 1), new LeakyReLU(0.2), new Nn.Dropout(0.3, dropout),
            new Conv2d(width, width, 4, stride: 2, padding: 1), new BatchNorm2d(width), new LeakyReLU(0.2), new Nn.Dropout(0.3, dropout),
            new Nn.Flatten(), new Linear(width * 7 * 7, 1));
        DcganInitialize(d, init);
        return d;
    }

    /// <summary>Radford et al. (2016), §4: all weights from N(0, 0.02).</summary>
    private static void DcganInitialize(Module network, RandomGenerator init)
    {
        foreach (Module m in network.NamedModules().Select(m => m.Module))
            if (m is ConvolutionBase c) c.Weight.FillNormal(0, 0.02, init);
            else if (m is Linear l) l.Weight.FillNormal(0, 0.02, init);
    }

    /// <summary>The generator's images for <paramref name="noise"/> in evaluation mode, as (N·28·28) values in [−1, 1].</summary>
    private static float[] Sample(Module generator, Tensor noise)
    {
        generator.Eval();
        try
        {
            using (Tensor.NoGrad())
            using (TensorScope.Begin())
                return generator.Forward(noise).ToArray();
        }
        finally { generator.Train(); }
    }

    /// <summary>Trains seed 000's CNN on <paramref name="train"/> (pixels in [0, 1]) and scores generated images and
    /// the real <paramref name="test"/> images with it.</summary>
    private static JudgeScores Judge(Module generator, int latent, ImageClassificationDataset train, ImageClassificationDataset test, int samples, int epochs, int seed)
    {
        Keras.Sequential judge = SeedModels.Cnn(NormalizationKind.Batch, train.ClassCount, new RandomGenerator((ulong)seed + 4));
        judge.Compile(new Adam(judge.Network.Parameters()), "categorical_crossentropy", "accuracy");
        judge.Fit(train, epochs, 128, seed: (ulong)seed);
        TestScores accuracy = ClassifierRuns.Test(judge, train, test);

        float[] generated = Sample(generator, Tensor.Normal(new[] { samples, latent }, generator: new RandomGenerator((ulong)seed + 5)));
        foreach (ref float p in generated.AsSpan()) p = (p + 1) / 2; // tanh's range back to the judge's [0, 1]
        ClassScores Score(float[] images, int count) =>
            ClassScores.Of(judge.Predict(Tensor.FromArray(images, count, 1, 28, 28)).ToArray(), train.ClassCount);
        return new JudgeScores(accuracy.PreciseBnAccuracy, Score(generated, samples), Score(test.Pixels.ToArray(), test.Count));
    }

    /// <summary>Each value replaced by the mean of it and the up to <paramref name="window"/> − 1 values before it.</summary>
    private static double[] TrailingMean(double[] values, int window)
    {
        var means = new double[values.Length];
        double sum = 0;
        for (int i = 0; i < values.Length; i++)
        {
            sum += values[i];
            if (i >= window) sum -= values[i - window];
            means[i] = sum / Math.Min(i + 1, window);
        }
        return means;
    }

    private static double MeanProbability(Tensor logits)
    {
        double sum = 0;
        foreach (float z in logits.ToArray()) sum += 1 / (1 + Math.Exp(-z));
        return sum / logits.Length;
    }

    /// <summary>The images mapped from [0, 1] to [−1, 1], the range of the generator's tanh.</summary>
    private static ImageClassificationDataset ToTanhRange(ImageClassificationDataset data)
    {
        float[] pixels = data.Pixels.ToArray();
        foreach (ref float p in pixels.AsSpan()) p = 2 * p - 1;
        return new ImageClassificationDataset(pixels, data.Labels.ToArray(), data.Channels, data.Height, data.Width, data.ClassCount, data.Name, data.ClassNames);
    }

    private static string F(double v) => v.ToString("G", CultureInfo.InvariantCulture);

    private sealed record StepRecord(int Epoch, double DiscriminatorLoss, double GeneratorLoss, double RealScore, double FakeScore);

    private sealed record JudgeScores(double JudgeAccuracy, ClassScores Generated, ClassScores Real);

    /// <summary>A classifier's verdict on a set of images: its mean largest softmax probability, the fraction of images
    /// with one at least <see cref="Confident"/>, and how many of those it assigns to each class.</summary>
    private sealed record ClassScores(int Count, double MeanConfidence, double ConfidentFraction, int[] ClassCounts)
    {
        public static ClassScores Of(float[] probabilities, int classes)
        {
            int count = probabilities.Length / classes;
            var counts = new int[classes];
            double confidenceSum = 0;
            int confident = 0;
            for (int i = 0; i < count; i++)
            {
                ReadOnlySpan<float> p = probabilities.AsSpan(i * classes, classes);
                int best = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(p);
                confidenceSum += p[best];
                if (p[best] >= Confident) { confident++; counts[best]++; }
            }
            return new ClassScores(count, confidenceSum / count, (double)confident / count, counts);
        }
    }
}
