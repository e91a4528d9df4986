using System.Diagnostics;
using System.Globalization;
using NormSharp.Data;
using NormSharp.Keras.Optimizers;
using KerasLoss = NormSharp.Keras.KerasLoss;
using CategoricalCrossentropy = NormSharp.Keras.CategoricalCrossentropy;
using NormSharp.Nn;
using NormSharp.Optim;
using NormSharp.Serialization;

namespace NormSharp.Training;

/// <summary>
/// Keras-style training on top of a module: <c>Compile</c>, <see cref="Fit"/>, <see cref="Evaluate"/>,
/// <see cref="Predict"/>, <see cref="Summary"/>. Images stay NCHW. If the network is a <see cref="Sequential"/> ending
/// in <see cref="Softmax"/>, training computes the cross-entropy from the logits before that softmax (as TF-Keras does
/// for <c>Dense(..., activation='softmax')</c> with <c>categorical_crossentropy</c>), which is the same loss without the
/// round-off of log(softmax); otherwise the network's outputs are taken to be logits, as in PyTorch.
/// </summary>
public class Model
{
    private static readonly string[] s_metrics = { "accuracy", "acc", "categorical_accuracy", "sparse_categorical_accuracy" };
    private Optimizer? _optimizer;
    // Predict and Evaluate may run on several threads at once: the first to start puts the network in evaluation mode
    // and the last to end restores the mode it found, so none of them can switch another into training mode. Fit on
    // another thread at the same time is refused (it changes the mode and the weights under them).
    private readonly object _modeLock = new();
    private int _inferenceCalls;
    private bool _trainingBeforeInference;
    private int _fitThread;

    /// <summary>Wraps <paramref name="network"/>, which takes inputs of shape (N, *<paramref name="inputShape"/>).</summary>
    public Model(Module network, int[] inputShape)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(inputShape);
        Network = network;
        InputShape = (int[])inputShape.Clone();
    }

    /// <summary>The module trained.</summary>
    public Module Network { get; }

    /// <summary>The shape of one input sample, e.g. (1, 28, 28).</summary>
    public IReadOnlyList<int> InputShape { get; }

    /// <summary>Whether <see cref="Evaluate"/> and <see cref="Predict"/> run the inference copy of the network
    /// (<see cref="InferenceFusion.Fuse(Module)"/>: BatchNorm folded into the neighbouring convolution or Linear, ReLU fused into
    /// its output), which gives the same results up to float rounding. The copy is rebuilt on every call, so it always
    /// reflects the current weights; building it writes the folded weights into the call's pooled buffers and shares
    /// the others (about 0.1 ms for the seed CNN), which only matters when predicting a handful of samples per call.
    /// True by default; false runs the network itself in evaluation mode.</summary>
    public bool FuseForInference { get; set; } = true;

    /// <summary>Whether <see cref="Fit"/> stops at the first batch whose loss is NaN or infinite (Keras's
    /// <c>TerminateOnNaN</c>), by throwing a <see cref="NonFiniteLossException"/> that names the epoch and batch. That
    /// batch's update is not applied and its epoch is neither recorded nor passed to the callbacks, so a
    /// <see cref="ModelCheckpoint"/> keeps the last good checkpoint. <see cref="TrainOnBatch(Tensor, int[])"/> returns such a loss
    /// without applying its update. True by default; false trains on.</summary>
    public bool TerminateOnNaN { get; set; } = true;

    /// <summary>Random shifts and flips applied to every training batch by <see cref="Fit"/> (Keras's
    /// <c>ImageDataGenerator</c>); null (the default) trains on the images as they are. Evaluation never augments.</summary>
    public ImageAugmentation? Augmentation { get; set; }

    /// <summary>How many training batches of 256 (a fixed sample, the same every time) re-estimate the BatchNorm
    /// statistics for the precise-BN figures (Wu &amp; Johnson 2021): with a positive value and validation data,
    /// <see cref="Fit"/> reports each epoch's validation twice, with the moving averages (<c>val_loss</c>,
    /// <c>val_accuracy</c>, as Keras does) and with precise statistics (<c>val_loss_precise_bn</c>,
    /// <c>val_accuracy_precise_bn</c>, as <see cref="RecomputeBatchNormStatistics"/> leaves the model), restoring the
    /// moving averages afterwards so training is unchanged. 0 (the default) reports only the first; a network without
    /// BatchNorm is not affected.</summary>
    public int PreciseBatchNormBatches
    {
        get => _preciseBatchNormBatches;
        set => _preciseBatchNormBatches = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value), $"Model: PreciseBatchNormBatches must be ≥ 0, got {value}.");
    }

    private int _preciseBatchNormBatches;

    /// <summary>Replaces the moving averages of every BatchNorm with precise statistics over the fixed sample of
    /// <see cref="PreciseBatchNormBatches"/> batches of 256 of <paramref name="train"/> (all of it when 0), exactly as
    /// the per-epoch precise figures are computed. Returns the number of batches used.</summary>
    public int RecomputeBatchNormStatistics(ImageClassificationDataset train)
    {
        ArgumentNullException.ThrowIfNull(train);
        return Network.RecomputeBatchNormStatistics(PreciseBatchNormSample(train), MaxPreciseBatches);
    }

    private int? MaxPreciseBatches => _preciseBatchNormBatches > 0 ? _preciseBatchNormBatches : null;

    /// <summary>The images of a fixed shuffled order of <paramref name="train"/> in batches of 256, each returned to
    /// the pool once the next is requested.</summary>
    private static IEnumerable<Tensor> PreciseBatchNormSample(ImageClassificationDataset train)
    {
        foreach (Batch b in new DataLoader(train, 256, shuffle: true, seed: 0x9B5EED).Batches(0))
            using (b)
                yield return b.Images;
    }

    private bool HasBatchNorm => Network.NamedModules().Any(m => m.Module is BatchNorm { TrackRunningStats: true, IsFrozen: false });

    /// <summary>The optimizer given to <see cref="Compile(Optimizer, KerasLoss, string[])"/>.</summary>
    public Optimizer Optimizer => _optimizer ?? throw new InvalidOperationException("Model: call Compile(optimizer, loss, metrics) before training.");

    /// <summary>Keras's name of the loss given to <see cref="Compile(Optimizer, KerasLoss, string[])"/>.</summary>
    public string Loss => LossFunction.Name;

    /// <summary>The loss given to <see cref="Compile(Optimizer, KerasLoss, string[])"/>, with its label convention.</summary>
    public KerasLoss LossFunction { get; private set; } = new CategoricalCrossentropy();

    /// <summary>The metrics tracked besides the loss ("accuracy", whichever Keras name selected it).</summary>
    public IReadOnlyList<string> Metrics { get; private set; } = Array.Empty<string>();

    /// <summary>The epochs completed so far, across <see cref="Fit"/> calls and restored checkpoints.</summary>
    public History History { get; private set; } = new();

    /// <summary>The number of epochs completed (the epoch a resumed <see cref="Fit"/> continues after).</summary>
    public int EpochsCompleted => History.Epochs.Count == 0 ? 0 : History.Epochs[^1].Epoch;

    /// <summary>Keras's <c>model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])</c>:
    /// the optimizer by Keras name (<see cref="KerasOptimizer.Names"/>) with Keras's defaults and update rule, over the
    /// network's parameters; the loss by Keras name (<see cref="KerasLoss.Names"/>).</summary>
    public void Compile(string optimizer, string loss = "categorical_crossentropy", params string[] metrics) =>
        Compile(optimizer, KerasLoss.FromName(loss), metrics);

    /// <summary>Compiles with a Keras optimizer by name and a loss object.</summary>
    public void Compile(string optimizer, KerasLoss loss, params string[] metrics)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        Compile(KerasOptimizer.Create(optimizer, Network.Parameters()), loss, metrics);
    }

    /// <summary>Compiles with an optimizer object (a Keras one from <see cref="Keras.Optimizers"/> or a PyTorch one
    /// from <see cref="NormSharp.Optim"/>) and a loss by Keras name.</summary>
    public void Compile(Optimizer optimizer, string loss = "categorical_crossentropy", params string[] metrics) =>
        Compile(optimizer, KerasLoss.FromName(loss), metrics);

    /// <summary>Sets the optimizer, the loss and the metrics (<c>accuracy</c>, <c>acc</c>, and the one of
    /// <c>categorical_accuracy</c>/<c>sparse_categorical_accuracy</c> that matches the loss's labels). Throws, listing
    /// the valid choices, on an unknown metric or one of the other label convention, and when a loss on probabilities
    /// (from_logits false) meets a network that does not end in a softmax.</summary>
    public void Compile(Optimizer optimizer, KerasLoss loss, params string[] metrics)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(loss);
        string matching = loss.TakesClassLabels ? "sparse_categorical_accuracy" : "categorical_accuracy";
        foreach (string m in metrics)
            if (!s_metrics.Contains(m) || (m.EndsWith("categorical_accuracy", StringComparison.Ordinal) && m != matching))
                throw new ArgumentException($"Model.Compile: metric '{m}' does not fit {loss.Name}; valid choices: accuracy, acc, {matching}.");
        if (!loss.FromLogits && !EndsInSoftmax(Network))
            throw new ArgumentException($"Model.Compile: {loss} takes probabilities, but the network does not end in a softmax. "
                + "Valid choices: end the network with a softmax (Dense(..., activation: \"softmax\")), or give the loss fromLogits: true.");
        _optimizer = optimizer;
        LossFunction = loss;
        Metrics = metrics.Length == 0 ? Array.Empty<string>() : new[] { "accuracy" };
    }

    /// <summary>
    /// Trains until <paramref name="epochs"/> epochs are complete, continuing after <see cref="EpochsCompleted"/>
    /// (so a model restored from a checkpoint resumes where it stopped; Keras's <c>epochs</c> with
    /// <c>initial_epoch</c>). Each epoch visits the training set in an order fixed by <paramref name="seed"/> and the
    /// epoch number, so a resumed run sees the same batches as an uninterrupted one. Stops after the current batch when
    /// <paramref name="cancellation"/> is signalled, leaving the interrupted epoch out of the history.
    /// </summary>
    public History Fit(ImageClassificationDataset train, int epochs, int batchSize = 32, ImageClassificationDataset? validation = null,
        IEnumerable<Callback>? callbacks = null, ulong seed = 0, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(train);
        Optimizer optimizer = Optimizer;
        CheckInput(train, "Fit");
        if (validation is not null) CheckInput(validation, "Fit (validation)");
        if (epochs < 0) throw new ArgumentOutOfRangeException(nameof(epochs), $"Model.Fit: epochs must be ≥ 0, got {epochs}.");
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), $"Model.Fit: batchSize must be ≥ 1, got {batchSize}.");

        List<Callback> hooks = callbacks?.ToList() ?? new List<Callback>();
        lock (_modeLock)
        {
            if (_fitThread != 0 || _inferenceCalls > 0)
                throw new InvalidOperationException($"Model.Fit: the model is already {(_fitThread != 0 ? "training (Fit)" : "predicting (Predict or Evaluate)")} on another thread; training now would change its mode and weights under that call.");
            _fitThread = Environment.CurrentManagedThreadId;
        }
        try { return FitEpochs(optimizer, train, epochs, batchSize, validation, hooks, seed, cancellation); }
        finally { lock (_modeLock) _fitThread = 0; }
    }

    private History FitEpochs(Optimizer optimizer, ImageClassificationDataset train, int epochs, int batchSize, ImageClassificationDataset? validation,
        List<Callback> hooks, ulong seed, CancellationToken cancellation)
    {
        var context = new TrainingContext(this, History);
        NonFiniteLossException? diverged = null;
        var loader = new DataLoader(train, batchSize, shuffle: true, seed: seed);
        bool trackAccuracy = Metrics.Contains("accuracy");
        foreach (Callback c in hooks) c.OnTrainBegin(context);
        for (int epoch = EpochsCompleted + 1; epoch <= epochs && !context.StopTraining; epoch++)
        {
            foreach (Callback c in hooks) c.OnEpochBegin(epoch, context);
            double learningRate = optimizer.LearningRate;
            Network.Train();
            var clock = Stopwatch.StartNew();
            double lossSum = 0;
            long correct = 0;
            int samples = 0, batch = 0, batches = loader.BatchCount;
            bool stopped = false;
            foreach (Batch b in Distribution is { } d ? loader.Batches(epoch, d.Rank, d.WorldSize) : loader.Batches(epoch))
            {
                var step = new StepSums();
                using (b)
                {
                    Augmentation?.Apply(b.Images, epoch, batch);
                    // This process's share of the whole batch scales its loss, so that the gradients of the
                    // processes add up to the whole batch's (equal shares but for the last batch).
                    double share = (double)b.Labels.Length / loader.BatchLength(batch);
                    step.Cancelled = cancellation.IsCancellationRequested ? 1 : 0;
                    double loss = TrainStep(optimizer, b.Images, b.Labels, trackAccuracy, share, step);
                    if (TerminateOnNaN && !double.IsFinite(loss))
                    {
                        diverged = new NonFiniteLossException(epoch, batch + 1, batches, loss);
                        break;
                    }
                }
                lossSum += step.LossSum;
                correct += (long)step.Correct;
                samples += (int)step.Samples;
                batch++;
                var progress = new BatchProgress(epoch, epochs, batch, batches, samples, lossSum / samples,
                    trackAccuracy ? (double)correct / samples : double.NaN, clock.Elapsed);
                foreach (Callback c in hooks) c.OnBatchEnd(progress, context);
                // Distributed, every process stops after the same batch: the first one after any was cancelled.
                stopped = Distribution is null ? cancellation.IsCancellationRequested : step.Cancelled > 0;
                if (stopped) break;
            }
            if (stopped || diverged is not null) break;
            double seconds = clock.Elapsed.TotalSeconds;

            var metrics = new Dictionary<string, double> { ["loss"] = lossSum / samples };
            if (trackAccuracy) metrics["accuracy"] = (double)correct / samples;
            double validationSeconds = 0;
            if (validation is not null)
            {
                var vclock = Stopwatch.StartNew();
                foreach (var (name, value) in Evaluate(validation, Math.Max(batchSize, 256))) metrics["val_" + name] = value;
                if (_preciseBatchNormBatches > 0 && HasBatchNorm)
                    foreach (var (name, value) in Network.WithPreciseBatchNorm(PreciseBatchNormSample(train), MaxPreciseBatches, () => Evaluate(validation, Math.Max(batchSize, 256))))
                        metrics["val_" + name + "_precise_bn"] = value;
                validationSeconds = vclock.Elapsed.TotalSeconds;
            }
            var record = new EpochRecord(epoch, metrics, learningRate, seconds, validationSeconds);
            History.Add(record);
            foreach (Callback c in hooks) c.OnEpochEnd(record, context);
        }
        foreach (Callback c in hooks) c.OnTrainEnd(context);
        if (diverged is not null) throw diverged;
        return History;
    }

    /// <summary>
    /// One optimizer step on one batch (Keras's <c>train_on_batch</c>): forward in training mode, the loss against
    /// integer <paramref name="labels"/>, backward, update. Returns the batch's mean loss. Integer labels are Keras's
    /// convention for <c>sparse_categorical_crossentropy</c>; a model compiled with <c>categorical_crossentropy</c>
    /// throws (give one-hot rows to <see cref="TrainOnBatch(Tensor, Tensor)"/>). The caller sets training mode
    /// (<see cref="Module.Train"/>); <see cref="Fit"/> is this step in a loop.
    /// </summary>
    public double TrainOnBatch(Tensor images, int[] labels)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        CheckShape(images.Dims, "TrainOnBatch");
        if (labels.Length != images.Dims[0])
            throw new ArgumentException($"Model.TrainOnBatch: {images.Dims[0]} images but {labels.Length} labels.");
        return TrainStep(Optimizer, images, LossFunction.ClassLabels(labels), countCorrect: false, share: 1.0 / (Distribution?.WorldSize ?? 1), new StepSums());
    }

    /// <summary>One optimizer step on one batch with targets in the loss's Keras convention: one-hot rows
    /// (N, classes) for <c>categorical_crossentropy</c>, integer labels (N) for <c>sparse_categorical_crossentropy</c>;
    /// targets in the other convention throw, naming both.</summary>
    public double TrainOnBatch(Tensor images, Tensor targets)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(targets);
        CheckShape(images.Dims, "TrainOnBatch");
        if (targets.Rank == 0 || targets.Dims[0] != images.Dims[0])
            throw new ArgumentException($"Model.TrainOnBatch: {images.Dims[0]} images but targets of shape {ShapeUtil.Format(targets.Dims)}.");
        return TrainStep(Optimizer, images, LossFunction.ClassLabels(targets), countCorrect: false, share: 1.0 / (Distribution?.WorldSize ?? 1), new StepSums());
    }

    /// <summary>
    /// Data-parallel training over several processes (NormSharp.Distributed sets it; null, the default, trains in
    /// this process alone). <see cref="Fit"/> then trains every process on its part of each batch (the distributed
    /// sampler of <see cref="DataLoader.Batches(int, int, int)"/>), has the processes' gradients summed into the whole
    /// batch's before each optimizer step, and reports loss and accuracy over the whole batch. With it,
    /// <see cref="TrainOnBatch(Tensor, int[])"/> takes its images as this process's equal share of the batch.
    /// </summary>
    public IDistributedTraining? Distribution { get; set; }

    /// <summary>One step: <paramref name="share"/> is this process's fraction of the whole batch (1 alone); fills
    /// <paramref name="step"/> with the batch's loss sum, correct count and samples, summed over the processes when
    /// distributed, and returns the mean loss. With <see cref="TerminateOnNaN"/>, a non-finite loss is not stepped on:
    /// its gradients would turn every weight into NaN, and the weights after the last good batch are worth keeping.
    /// Distributed, the processes learn of each other's non-finite losses with the gradients, so all of them skip the
    /// step (and stop) together, and the loss then returned is NaN on every process.</summary>
    private double TrainStep(Optimizer optimizer, Tensor images, int[] labels, bool countCorrect, double share, StepSums step)
    {
        using var scope = TensorScope.Begin();
        optimizer.ZeroGrad();
        // Batches are float32; a network converted to float64 (Module.To) trains on them converted.
        DType networkType = Network.Parameters().FirstOrDefault()?.DType ?? images.DType;
        Tensor logits = TrainingForward(Network, images.DType == networkType ? images : images.To(networkType));
        Tensor loss = LossFunction.Compute(logits, labels);
        double value = loss.Item();
        step.LossSum = value * labels.Length;
        step.Correct = countCorrect ? CountCorrect(logits, labels) : 0;
        step.Samples = labels.Length;
        step.NonFinite = double.IsFinite(value) ? 0 : 1;
        if (TerminateOnNaN && Distribution is null && !double.IsFinite(value)) return value;
        // The whole batch's loss is Σ over the processes of share·(this process's mean loss).
        loss.Backward(share == 1 ? null : Tensor.Full(loss.Shape, share, loss.DType));
        Distribution?.FinishGradients(step.Values);
        if (TerminateOnNaN && step.NonFinite > 0) return double.IsFinite(value) ? double.NaN : value;
        optimizer.Step();
        return value;
    }

    /// <summary>What <see cref="Fit"/> adds up over a step, summed over the processes when distributed (in the
    /// gradients' exchange: every exchange of its own would make the processes wait for the slowest once more).</summary>
    private sealed class StepSums
    {
        public readonly double[] Values = new double[5];
        public double LossSum { get => Values[0]; set => Values[0] = value; }
        public double Correct { get => Values[1]; set => Values[1] = value; }
        public double Samples { get => Values[2]; set => Values[2] = value; }
        public double Cancelled { get => Values[3]; set => Values[3] = value; }
        public double NonFinite { get => Values[4]; set => Values[4] = value; }
    }

    /// <summary>The loss and metrics on <paramref name="data"/> in evaluation mode (running statistics, no dropout),
    /// through the fused inference copy unless <see cref="FuseForInference"/> is false.</summary>
    public IReadOnlyDictionary<string, double> Evaluate(ImageClassificationDataset data, int batchSize = 256)
    {
        ArgumentNullException.ThrowIfNull(data);
        CheckInput(data, "Evaluate");
        EnterInference("Evaluate");
        double lossSum = 0;
        long correct = 0;
        try
        {
            using TensorScope call = TensorScope.Begin();
            Module network = InferenceNetwork();
            using (Tensor.NoGrad())
                foreach (Batch b in new DataLoader(data, batchSize, shuffle: false).Batches(0))
                    using (b)
                    using (TensorScope.Begin())
                    {
                        Tensor logits = TrainingForward(network, b.Images);
                        lossSum += LossFunction.Compute(logits, b.Labels).Item() * b.Labels.Length;
                        correct += CountCorrect(logits, b.Labels);
                    }
        }
        finally { ExitInference(); }
        var result = new Dictionary<string, double> { ["loss"] = lossSum / data.Count };
        if (Metrics.Contains("accuracy") || Metrics.Count == 0) result["accuracy"] = (double)correct / data.Count;
        return result;
    }

    /// <summary>The network's outputs (class probabilities for a softmax classifier) for inputs of shape
    /// (N, *InputShape), computed in evaluation mode in batches, through the fused inference copy unless
    /// <see cref="FuseForInference"/> is false. Several threads may predict with one model at once (an inference
    /// service) and get the results they would get one after another; <see cref="Fit"/> meanwhile on another thread is
    /// refused with an <see cref="InvalidOperationException"/>, either way round.</summary>
    public Tensor Predict(Tensor inputs, int batchSize = 256)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        CheckShape(inputs.Dims, "Predict");
        EnterInference("Predict");
        try
        {
            var outputs = new List<Tensor>();
            using (TensorScope call = TensorScope.Begin())
            using (Tensor.NoGrad())
            {
                Module network = InferenceNetwork();
                for (int start = 0; start < inputs.Dims[0]; start += batchSize)
                {
                    int n = Math.Min(batchSize, inputs.Dims[0] - start);
                    StorageGuard.SafePoint();
                    // Each batch's activations go back to the pool for the next batch; its output leaves both scopes.
                    using TensorScope batch = TensorScope.Begin();
                    outputs.Add(call.Keep(batch.Keep(network.Forward(inputs.Narrow(0, start, n)).Contiguous().CloneData())));
                }
            }
            return outputs.Count == 1 ? outputs[0] : Tensor.Concat(outputs);
        }
        finally { ExitInference(); }
    }

    /// <summary>Puts the network in evaluation mode for one Predict or Evaluate call, unless another call already did.</summary>
    private void EnterInference(string who)
    {
        lock (_modeLock)
        {
            if (_fitThread != 0 && _fitThread != Environment.CurrentManagedThreadId)
                throw new InvalidOperationException($"Model.{who}: the model is training (Fit) on another thread; its mode and weights change under a prediction. Predict after Fit returns, or from a callback on the training thread.");
            if (_inferenceCalls++ == 0)
            {
                _trainingBeforeInference = Network.IsTraining;
                Network.Eval();
            }
        }
    }

    /// <summary>Ends one Predict or Evaluate call; the last to end restores the mode the first one found.</summary>
    private void ExitInference()
    {
        lock (_modeLock)
            if (--_inferenceCalls == 0) Network.Train(_trainingBeforeInference);
    }

    /// <summary>A Keras-style table of layers, output shapes and parameter counts, with total, trainable and
    /// non-trainable counts; see <see cref="ModelSummary"/>.</summary>
    public ModelSummary Summary() => ModelSummary.Of(Network, InputShape.ToArray());

    /// <summary>Saves weights, optimizer state and history to one safetensors file, atomically. The weights keep
    /// PyTorch's names; optimizer tensors are prefixed <c>optimizer.</c>; the history is JSON metadata.</summary>
    public void SaveCheckpoint(string path, History? history = null)
    {
        var tensors = new List<KeyValuePair<string, Tensor>>(Network.StateDict());
        if (_optimizer is not null)
            tensors.AddRange(_optimizer.StateDict().Select(p => new KeyValuePair<string, Tensor>("optimizer." + p.Key, p.Value)));
        var metadata = new Dictionary<string, string>
        {
            ["format"] = "normsharp-checkpoint-1",
            ["epoch"] = EpochsCompleted.ToString(CultureInfo.InvariantCulture),
            ["history"] = (history ?? History).ToJson(),
            ["optimizer"] = _optimizer?.GetType().Name ?? "",
        };
        SafeTensors.Save(path, tensors, metadata, ModuleSerialization.StoredType);
    }

    /// <summary>Restores a checkpoint written by <see cref="SaveCheckpoint"/>: weights, optimizer state (if the model
    /// is compiled and the file has it) and history, so that <see cref="Fit"/> resumes exactly. Everything is checked
    /// against the model first; on any mismatch nothing is changed.</summary>
    public void LoadCheckpoint(string path)
    {
        SafeTensorsContent content = SafeTensors.Load(path);
        var optimizerState = content.Tensors.Where(p => p.Key.StartsWith("optimizer.", StringComparison.Ordinal))
            .ToDictionary(p => p.Key["optimizer.".Length..], p => p.Value);
        if (_optimizer is not null && optimizerState.Count > 0)
        {
            string saved = content.Metadata.GetValueOrDefault("optimizer", "");
            if (saved.Length > 0 && saved != _optimizer.GetType().Name)
                throw new InvalidDataException($"Cannot load '{path}': it holds {saved} state, the model is compiled with {_optimizer.GetType().Name}.");
        }
        History history = content.Metadata.TryGetValue("history", out string? json) ? History.FromJson(json) : new History();
        ModuleSerialization.LoadState(Network, content.Tensors, path, strict: true);
        if (_optimizer is not null && optimizerState.Count > 0) _optimizer.LoadStateDict(optimizerState);
        History = history;
    }

    /// <summary>What <see cref="Evaluate"/> and <see cref="Predict"/> run, once the network is in evaluation mode: the
    /// fused copy's folded weights are in the current scope, which the caller opens for the call.</summary>
    private Module InferenceNetwork() => FuseForInference ? InferenceFusion.Fuse(Network, transient: true) : Network;

    /// <summary>The logits the loss starts from: the input of a final softmax when the loss takes probabilities
    /// (TF-Keras's shortcut for <c>Dense(..., activation="softmax")</c>), otherwise the network's output.</summary>
    private Tensor TrainingForward(Module network, Tensor x)
    {
        if (LossFunction.FromLogits || !EndsInSoftmax(network)) return network.Forward(x);
        var seq = (Sequential)network;
        for (int i = 0; i < seq.Count - 1; i++) x = seq[i].Forward(x);
        return x;
    }

    private static bool EndsInSoftmax(Module network) => network is Sequential { Count: > 0 } seq && seq[seq.Count - 1] is Softmax;

    private static long CountCorrect(Tensor logits, int[] labels)
    {
        int[] predicted = logits.ArgMax(1);
        long correct = 0;
        for (int i = 0; i < labels.Length; i++) if (predicted[i] == labels[i]) correct++;
        return correct;
    }

    private void CheckInput(ImageClassificationDataset data, string who) =>
        CheckShape(new[] { data.Count, data.Channels, data.Height, data.Width }, who);

    private void CheckShape(int[] dims, string who)
    {
        if (!dims.AsSpan(1).SequenceEqual(InputShape.ToArray()))
            throw new ArgumentException($"Model.{who}: the model takes inputs of shape (N, {string.Join(", ", InputShape)}), got {ShapeUtil.Format(dims)}.");
    }
}
