using NormSharp.Experiments;
using System.Globalization;
using System.Text.Json;
using NormSharp.Data;
using NormSharp.Keras;
using NormSharp.Keras.Optimizers;
using NormSharp.Nn;
using NormSharp.Optim;
using NormSharp.Plotting;
using NormSharp.Serialization;
using NormSharp.Training;

namespace NormSharp.Cli;

/// <summary><c>normsharp train</c>: trains a seed model and writes history, plots, the model and the settings to
/// an output folder. With no options: the seed 000 CNN on the embedded MNIST subset, Adam 1e-3, batch 128.</summary>
internal static class TrainCommand
{
    public const string Help = """
        normsharp train [options]
          --model NAME         seed-cnn (default), seed-cnn-small, mlp
          --norm KIND          batch (default), batch-renorm (Ioffe 2017 with the paper's schedule: BatchNorm for
                               5,000 steps, then rmax to 3 by step 40k, dmax to 5 by 25k), ghost-batch (Hoffer
                               et al. 2017), layer, group, none
          --ghost-batch-size N ghost-batch's virtual batch size, default 16
          --dataset NAME       mnist-subset (default: the embedded 10,000 digits), mnist, fashion-mnist, emnist-*
          --data-dir DIR       read the data set's IDX files from DIR
          --epochs N           default 10
          --batch-size N       default 128
          --optimizer NAME     adam (default), adamw, sgd, rmsprop: Keras's optimizers with Keras's defaults and update
                               rules (Adam's epsilon-hat 1e-7; sgd with momentum 0.9)
          --lr RATE            default 1e-3 (adam/adamw/rmsprop), 1e-2 (sgd)
          --weight-decay L     Keras's decoupled decay p -= p*L*lr; default 0.004 for adamw, none otherwise
          --schedule NAME      none (default), cosine (to 0 over the epochs), step (×0.1 every third of the epochs)
          --label-smoothing E  categorical_crossentropy's label smoothing, default 0
          --shift N            augment: shift each training image by up to N pixels (edge pixels repeat), default 0
          --flip               augment: mirror half of the training images left-right
          --random-erasing P   augment: with probability P replace a rectangle of 2-40 % of the image by noise
                               (Zhong et al. 2017), default 0
                               (the Fashion-MNIST recipe, 93 % in 10 epochs, docs/fashion-mnist.md: --optimizer
                               adamw --schedule cosine --label-smoothing 0.1 --shift 1 --flip --batch-size 64)
          --seed N             default 0: fixes initialization and batch order
          --threads N          default: all processors
          --output DIR         default runs/<model>-<norm>-<time>
          --resume FILE        continue from a checkpoint.safetensors written by an earlier run
          --no-terminate-on-nan  train on when a batch's loss is NaN or infinite (default: stop at that batch,
                               keeping the last good checkpoint)
          --no-precise-bn      keep the moving averages of batch normalization as they are after training instead
                               of re-estimating them over 20 fixed training batches of 256 ("precise BN") before the
                               final test, and show only the moving-average validation each epoch (by default each
                               epoch shows both: val_accuracy and val_accuracy_precise_bn)
        """ + "\n" + DistributedTraining.Help;

    /// <summary>Training batches of 256 that re-estimate BatchNorm's statistics for each epoch's precise-BN
    /// validation and for the final test: 5,120 images, forward only (a small fraction of an epoch's cost), the same
    /// sample every time, so the last epoch's <c>val_accuracy_precise_bn</c> is the final test accuracy.</summary>
    private const int PreciseBatchNormBatches = 20;

    public static int Run(Options args, TextWriter output, CancellationToken cancellation)
    {
        DistributedTraining? distributed = DistributedTraining.FromOptions(args);
        return distributed is null ? Train(args, output, cancellation, null)
            : distributed.Guard(() => Train(args, distributed.IsLead ? output : TextWriter.Null, cancellation, distributed));
    }

    private static int Train(Options args, TextWriter output, CancellationToken cancellation, DistributedTraining? distributed)
    {
        bool lead = distributed?.IsLead ?? true;
        string modelName = args.Choice("model", "seed-cnn", SeedModels.Names.ToArray());
        string normName = args.Choice("norm", "batch", SeedModels.NormalizationNames.ToArray());
        if (normName != "ghost-batch" && args.String("ghost-batch-size") is not null)
            throw new UsageException($"--ghost-batch-size applies only to --norm ghost-batch; got --norm {normName}");
        int? ghostBatchSize = normName == "ghost-batch" ? args.Int("ghost-batch-size", SeedModels.DefaultGhostBatchSize, 2, 1 << 20) : null;
        string dataset = args.String("dataset", "mnist-subset");
        string? dataDir = args.String("data-dir");
        int epochs = args.Int("epochs", 10, 1, 100_000);
        int batchSize = args.Int("batch-size", 128, 1, 1 << 20);
        string optimizerName = args.Choice("optimizer", "adam", KerasOptimizer.Names.ToArray());
        double lr = args.Double("lr", optimizerName == "sgd" ? 1e-2 : 1e-3, 0, 10);
        double weightDecay = args.Double("weight-decay", optimizerName == "adamw" ? 0.004 : 0, 0, 1);
        string schedule = args.Choice("schedule", "none", "none", "cosine", "step");
        double labelSmoothing = args.Double("label-smoothing", 0, 0, 1);
        int maxShift = args.Int("shift", 0, 0, 14);
        bool flip = args.Flag("flip");
        double randomErasing = args.Double("random-erasing", 0, 0, 1);
        int seed = args.Int("seed", 0, 0);
        int threads = args.Int("threads", distributed is null ? Environment.ProcessorCount : DistributedTraining.DefaultThreads(), 1, 1024);
        string? resume = args.String("resume");
        bool preciseBatchNorm = !args.Flag("no-precise-bn");
        bool terminateOnNaN = !args.Flag("no-terminate-on-nan");
        string outputDir = args.String("output") ?? Path.Combine("runs", $"{modelName}-{normName}-{DateTime.Now:yyyyMMdd-HHmmss}");
        args.RejectUnknown("train");

        Parallelism.ThreadCount = threads;
        LoadedDataset data = Datasets.Load(dataset, new DatasetOptions { DataDirectory = dataDir, Log = line => output.WriteLine(line) });
        output.WriteLine($"data: {data.Train} (train), {data.Test.Count} test images, from {data.Source} {data.Location}");

        Keras.Sequential model = SeedModels.Create(modelName, SeedModels.ParseNormalization(normName), data.Train.ClassCount,
            new RandomGenerator((ulong)seed), ghostBatchSize ?? SeedModels.DefaultGhostBatchSize);
        double? decay = weightDecay > 0 ? weightDecay : null;
        Optimizer optimizer = optimizerName switch
        {
            "sgd" => new Keras.Optimizers.SGD(model.Network.Parameters(), lr, momentum: 0.9, weightDecay: decay),
            "adamw" => new Keras.Optimizers.AdamW(model.Network.Parameters(), lr, weightDecay),
            "rmsprop" => new RMSprop(model.Network.Parameters(), lr, weightDecay: decay),
            _ => new Keras.Optimizers.Adam(model.Network.Parameters(), lr, weightDecay: decay),
        };
        model.Compile(optimizer, new CategoricalCrossentropy(labelSmoothing: labelSmoothing), "accuracy");
        model.TerminateOnNaN = terminateOnNaN;
        if (preciseBatchNorm) model.PreciseBatchNormBatches = PreciseBatchNormBatches;
        var augmentation = new ImageAugmentation(maxShift, flip, randomErasing, (ulong)seed);
        if (!augmentation.IsIdentity) model.Augmentation = augmentation;
        if (resume is not null)
        {
            model.LoadCheckpoint(resume);
            output.WriteLine($"resumed from {resume} after epoch {model.EpochsCompleted}");
        }
        distributed?.Attach(model, batchSize, [$"model={modelName}", $"norm={normName}", $"dataset={data.Name} ({data.Train.Count} training images)",
            $"epochs={epochs}", $"batch_size={batchSize}", $"optimizer={optimizerName}", $"lr={lr}", $"schedule={schedule}", $"seed={seed}",
            $"epochs_completed={model.EpochsCompleted}"]);
        output.WriteLine(model.Summary().ToString());

        // Claimed (by the process that writes the run folder) before anything is written, so a second run pointed at
        // this folder is refused and changes nothing.
        using OutputFolderLock? outputLock = lead ? OutputFolderLock.Acquire(outputDir) : null;
        var settings = new Dictionary<string, object?>
        {
            ["command"] = "normsharp " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1)),
            ["model"] = modelName, ["norm"] = normName, ["ghost_batch_size"] = ghostBatchSize, ["dataset"] = data.Name, ["data_source"] = data.Source.ToString(),
            ["data_location"] = data.Location, ["epochs"] = epochs, ["batch_size"] = batchSize, ["optimizer"] = optimizerName,
            ["learning_rate"] = lr, ["weight_decay"] = weightDecay, ["schedule"] = schedule, ["label_smoothing"] = labelSmoothing,
            ["shift"] = maxShift, ["flip"] = flip, ["random_erasing"] = randomErasing, ["seed"] = seed, ["threads"] = threads, ["resume"] = resume,
            ["normsharp_version"] = typeof(Tensor).Assembly.GetName().Version?.ToString(),
            ["runtime"] = System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription,
            ["started"] = DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture),
            ["processes"] = distributed?.Group.Size ?? 1, ["sync_batch_norm"] = distributed?.SyncBatchNorm,
        };
        if (lead)
        {
            AtomicFile.WriteAllText(Path.Combine(outputDir, "run.json"), JsonSerializer.Serialize(settings, new JsonSerializerOptions { WriteIndented = true }));
            AtomicFile.WriteAllText(Path.Combine(outputDir, "summary.txt"), model.Summary().ToString() + Environment.NewLine);
        }

        bool interactive = TrainingConsole.IsInteractive;
        string checkpoint = Path.Combine(outputDir, "checkpoint.safetensors");
        var callbacks = new List<Callback> { new TrainingConsole(output, interactive) };
        if (lead) callbacks.AddRange([new ModelCheckpoint(checkpoint), new RunArtifacts(outputDir)]);
        if (schedule != "none")
            callbacks.Add(new LearningRateCallback(schedule == "cosine"
                ? new CosineAnnealingLR(optimizer, tMax: epochs)
                : new StepLR(optimizer, stepSize: Math.Max(1, epochs / 3))));
        var allocationMeter = new AllocationMeter();
        callbacks.Add(allocationMeter);
        History history = model.Fit(data.Train, epochs, batchSize, data.Test, callbacks, (ulong)seed, cancellation);
        MemoryReport memory = MemoryReport.After(allocationMeter);

        var metadata = ModelFile.Metadata(modelName, normName, data.Train.ClassCount, ghostBatchSize);
        if (cancellation.IsCancellationRequested)
        {
            string interrupted = Path.Combine(outputDir, "interrupted.safetensors");
            if (lead) model.Network.SaveSafeTensors(interrupted, metadata);
            output.WriteLine($"stopped: weights saved to {interrupted}; resume the completed epochs with --resume {checkpoint}");
            return 130;
        }
        TrainingConsole.PrintTable(output, history, interactive, memory.ToString());
        IReadOnlyDictionary<string, double> test = model.Evaluate(data.Test);
        var results = new Dictionary<string, double> { ["test_loss"] = test["loss"], ["test_accuracy"] = test["accuracy"] };
        memory.AddTo(results);
        if (preciseBatchNorm && model.Network.NamedModules().Any(m => m.Module is BatchNorm { TrackRunningStats: true }))
        {
            // With decay 0.99 the moving averages trail the weights by ~100 steps; on a small data set (63 steps an
            // epoch here) that lag is visible. Re-estimating them with the final weights (Wu & Johnson 2021) fixes it.
            output.WriteLine($"test accuracy with the moving averages: {test["accuracy"]:P2} (loss {test["loss"]:F4})");
            int batches = model.RecomputeBatchNormStatistics(data.Train);
            test = model.Evaluate(data.Test);
            output.WriteLine($"batch-norm statistics re-estimated over a fixed sample of the training set ({batches} batches of 256), as each epoch's val_accuracy_precise_bn");
            results["test_loss_precise_bn"] = test["loss"];
            results["test_accuracy_precise_bn"] = test["accuracy"];
        }
        if (lead)
        {
            model.Network.SaveSafeTensors(Path.Combine(outputDir, "model.safetensors"), metadata);
            AtomicFile.WriteAllText(Path.Combine(outputDir, "results.json"), JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true }));
        }
        output.WriteLine($"test accuracy: {test["accuracy"]:P2} (loss {test["loss"]:F4}) on {data.Test.Count} images");
        output.WriteLine($"wrote {outputDir}: model.safetensors, checkpoint.safetensors, history.csv/json, loss.png, accuracy.png, run.json, results.json, summary.txt");
        return 0;
    }
}

/// <summary>Rewrites the history files and the plots after every epoch, so a crash loses at most one epoch.</summary>
internal sealed class RunArtifacts(string directory) : Callback
{
    public override void OnEpochEnd(EpochRecord record, TrainingContext context) => Write(directory, context.History);

    public static void Write(string directory, History history)
    {
        history.SaveCsv(Path.Combine(directory, "history.csv"));
        history.SaveJson(Path.Combine(directory, "history.json"));
        double[] epochs = history.Epochs.Select(e => (double)e.Epoch).ToArray();
        Series S(string name, string metric) => new(name, epochs, history.Values(metric));
        bool precise = history.MetricNames.Contains("val_accuracy_precise_bn");
        Series[] With(Series train, Series validation, string preciseMetric) =>
            precise ? new[] { train, validation with { Name = "validation (moving averages)" }, S("validation (precise BN)", preciseMetric) } : new[] { train, validation };
        Figure.SaveLines(Path.Combine(directory, "loss.png"), "Loss per epoch", "epoch", "cross-entropy",
            With(S("train", "loss"), S("validation", "val_loss"), "val_loss_precise_bn"), logY: true, integerX: true);
        Figure.SaveLines(Path.Combine(directory, "accuracy.png"), "Accuracy per epoch", "epoch", "accuracy",
            With(S("train", "accuracy"), S("validation", "val_accuracy"), "val_accuracy_precise_bn"), integerX: true, legendBelow: true);
    }
}

/// <summary>What a saved model file says about how to rebuild its network.</summary>
internal static class ModelFile
{
    public static Dictionary<string, string> Metadata(string model, string norm, int classes, int? ghostBatchSize = null)
    {
        var metadata = new Dictionary<string, string>
        {
            ["format"] = "normsharp-model-1",
            ["architecture"] = model,
            ["norm"] = norm,
            ["classes"] = classes.ToString(CultureInfo.InvariantCulture),
        };
        if (ghostBatchSize is int size) metadata["ghost_batch_size"] = size.ToString(CultureInfo.InvariantCulture);
        return metadata;
    }

    /// <summary>Rebuilds the network described by a model file's metadata and loads its weights.</summary>
    public static Keras.Sequential Load(string path)
    {
        SafeTensorsContent content = SafeTensors.Load(path);
        if (!content.Metadata.TryGetValue("architecture", out string? architecture) || !content.Metadata.TryGetValue("norm", out string? norm))
            throw new InvalidDataException($"'{path}' does not say which architecture it holds (no 'architecture'/'norm' metadata); was it written by 'normsharp train'?");
        int classes = int.Parse(content.Metadata.GetValueOrDefault("classes", "10"), CultureInfo.InvariantCulture);
        // Inference never splits a batch; the virtual batch size matters to a model trained further after loading.
        int ghostBatchSize = content.Metadata.TryGetValue("ghost_batch_size", out string? size) ? int.Parse(size, CultureInfo.InvariantCulture) : SeedModels.DefaultGhostBatchSize;
        Keras.Sequential model = SeedModels.Create(architecture, SeedModels.ParseNormalization(norm), classes, ghostBatchSize: ghostBatchSize);
        model.Network.LoadSafeTensors(path);
        return model;
    }
}
