using NormSharp.Nn;

namespace NormSharp.Training;

/// <summary>Progress after one training batch, for progress bars and logs.</summary>
/// <param name="Epoch">The epoch, from 1.</param>
/// <param name="Epochs">The last epoch of the run.</param>
/// <param name="Batch">Batches done in this epoch.</param>
/// <param name="Batches">Batches in the epoch.</param>
/// <param name="Samples">Samples done in this epoch.</param>
/// <param name="Loss">The running mean loss over this epoch's batches so far.</param>
/// <param name="Accuracy">The running accuracy over this epoch so far (NaN when not tracked).</param>
/// <param name="Elapsed">Time since the epoch began.</param>
public sealed record BatchProgress(int Epoch, int Epochs, int Batch, int Batches, int Samples, double Loss, double Accuracy, TimeSpan Elapsed)
{
    /// <summary>Samples per second so far in this epoch.</summary>
    public double SamplesPerSecond => Samples / Math.Max(Elapsed.TotalSeconds, 1e-9);

    /// <summary>The estimated time left in this epoch.</summary>
    public TimeSpan Remaining => Batch == 0 ? TimeSpan.Zero : Elapsed * ((double)(Batches - Batch) / Batch);
}

/// <summary>What callbacks see and may change during <see cref="Model.Fit"/>.</summary>
public sealed class TrainingContext
{
    internal TrainingContext(Model model, History history) { Model = model; History = history; }

    /// <summary>The model being trained.</summary>
    public Model Model { get; }

    /// <summary>The history so far.</summary>
    public History History { get; }

    /// <summary>Set by a callback to end training after the current epoch.</summary>
    public bool StopTraining { get; set; }
}

/// <summary>Hooks into <see cref="Model.Fit"/> (Keras's callbacks). All methods do nothing unless overridden.</summary>
public abstract class Callback
{
    /// <summary>Before the first epoch.</summary>
    public virtual void OnTrainBegin(TrainingContext context) { }

    /// <summary>Before each epoch (numbered from 1).</summary>
    public virtual void OnEpochBegin(int epoch, TrainingContext context) { }

    /// <summary>After each training batch.</summary>
    public virtual void OnBatchEnd(BatchProgress progress, TrainingContext context) { }

    /// <summary>After each epoch, with its record already in the history.</summary>
    public virtual void OnEpochEnd(EpochRecord record, TrainingContext context) { }

    /// <summary>After the last epoch, or when training stops early or is cancelled.</summary>
    public virtual void OnTrainEnd(TrainingContext context) { }
}

/// <summary>Stops training when a monitored metric has not improved for <see cref="Patience"/> epochs, and can
/// restore the best weights (Keras's <c>EarlyStopping</c>).</summary>
public sealed class EarlyStopping : Callback
{
    private double _best;
    private int _wait;
    private Dictionary<string, float[]>? _bestWeights;

    /// <summary>Creates the callback. <paramref name="mode"/> is "min", "max" or "auto" (max for accuracy-like
    /// metrics, min otherwise).</summary>
    public EarlyStopping(string monitor = "val_loss", int patience = 0, double minDelta = 0, string mode = "auto", bool restoreBestWeights = false)
    {
        if (patience < 0) throw new ArgumentOutOfRangeException(nameof(patience), $"EarlyStopping: patience must be ≥ 0, got {patience}.");
        if (!double.IsFinite(minDelta) || minDelta < 0) throw new ArgumentOutOfRangeException(nameof(minDelta), $"EarlyStopping: minDelta must be finite and ≥ 0, got {minDelta}.");
        Monitor = monitor;
        Patience = patience;
        MinDelta = minDelta;
        Maximize = mode switch
        {
            "max" => true,
            "min" => false,
            "auto" => monitor.Contains("acc", StringComparison.Ordinal),
            _ => throw new ArgumentException($"EarlyStopping: mode must be 'min', 'max' or 'auto', got '{mode}'."),
        };
        RestoreBestWeights = restoreBestWeights;
    }

    /// <summary>The metric watched.</summary>
    public string Monitor { get; }

    /// <summary>Epochs without improvement tolerated.</summary>
    public int Patience { get; }

    /// <summary>The least change that counts as an improvement.</summary>
    public double MinDelta { get; }

    /// <summary>Whether larger values are better.</summary>
    public bool Maximize { get; }

    /// <summary>Whether the best epoch's weights are put back when training stops.</summary>
    public bool RestoreBestWeights { get; }

    /// <summary>The epoch at which training was stopped, or 0.</summary>
    public int StoppedEpoch { get; private set; }

    /// <inheritdoc/>
    public override void OnTrainBegin(TrainingContext context)
    {
        _best = Maximize ? double.NegativeInfinity : double.PositiveInfinity;
        _wait = 0;
        _bestWeights = null;
        StoppedEpoch = 0;
    }

    /// <inheritdoc/>
    public override void OnEpochEnd(EpochRecord record, TrainingContext context)
    {
        if (!record.Metrics.TryGetValue(Monitor, out double value))
            throw new InvalidOperationException($"EarlyStopping: metric '{Monitor}' is not recorded; available: {string.Join(", ", record.Metrics.Keys)}.");
        bool improved = Maximize ? value > _best + MinDelta : value < _best - MinDelta;
        if (improved)
        {
            _best = value;
            _wait = 0;
            if (RestoreBestWeights) _bestWeights = Snapshot(context.Model.Network);
            return;
        }
        if (++_wait > Patience)
        {
            StoppedEpoch = record.Epoch;
            context.StopTraining = true;
        }
    }

    /// <inheritdoc/>
    public override void OnTrainEnd(TrainingContext context)
    {
        if (StoppedEpoch == 0 || _bestWeights is null) return;
        foreach (var (name, tensor) in context.Model.Network.StateDict()) tensor.CopyFrom(_bestWeights[name]);
    }

    private static Dictionary<string, float[]> Snapshot(Module module) => module.StateDict().ToDictionary(p => p.Key, p => p.Value.ToArray());
}

/// <summary>Saves a full training checkpoint (weights, optimizer state, history) after each epoch, or only when a
/// monitored metric improves (Keras's <c>ModelCheckpoint</c>). Writes are atomic, so a save that fails (a full disk)
/// leaves the previous checkpoint intact. Before the first epoch a checkpoint of the full size is written beside the
/// file and deleted, so a folder that is read-only or lacks the space is reported before any training is done.</summary>
public sealed class ModelCheckpoint : Callback
{
    private double _best;

    /// <summary>Creates the callback. With <paramref name="saveBestOnly"/>, saves only when <paramref name="monitor"/>
    /// improves.</summary>
    public ModelCheckpoint(string path, string monitor = "val_loss", bool saveBestOnly = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Path = path;
        Monitor = monitor;
        SaveBestOnly = saveBestOnly;
    }

    /// <summary>The checkpoint file.</summary>
    public string Path { get; }

    /// <summary>The metric that decides "best".</summary>
    public string Monitor { get; }

    /// <summary>Whether to save only on improvement.</summary>
    public bool SaveBestOnly { get; }

    /// <inheritdoc/>
    public override void OnTrainBegin(TrainingContext context)
    {
        _best = Monitor.Contains("acc", StringComparison.Ordinal) ? double.NegativeInfinity : double.PositiveInfinity;
        string fullPath = System.IO.Path.GetFullPath(Path);
        string probe = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(fullPath)!, $".{System.IO.Path.GetFileName(fullPath)}.probe-{Environment.ProcessId}");
        try { context.Model.SaveCheckpoint(probe, context.History); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"ModelCheckpoint: cannot write checkpoints to '{Path}' ({e.Message.TrimEnd('.')}); checked before training, nothing was trained.", e);
        }
        finally { if (File.Exists(probe)) File.Delete(probe); }
    }

    /// <inheritdoc/>
    public override void OnEpochEnd(EpochRecord record, TrainingContext context)
    {
        if (SaveBestOnly)
        {
            if (!record.Metrics.TryGetValue(Monitor, out double value))
                throw new InvalidOperationException($"ModelCheckpoint: metric '{Monitor}' is not recorded; available: {string.Join(", ", record.Metrics.Keys)}.");
            bool maximize = Monitor.Contains("acc", StringComparison.Ordinal);
            if (maximize ? value <= _best : value >= _best) return;
            _best = value;
        }
        try { context.Model.SaveCheckpoint(Path, context.History); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"ModelCheckpoint: saving epoch {record.Epoch} to '{Path}' failed ({e.Message.TrimEnd('.')}); training stopped, and the checkpoint there is the one saved before, intact.", e);
        }
    }
}

/// <summary>Sets the learning rate at the start of each epoch (Keras's <c>LearningRateScheduler</c>), either from a
/// function <c>schedule(epoch, currentRate)</c> with epochs from 1, or from a PyTorch-style scheduler
/// (<see cref="NormSharp.Optim.StepLR"/>, <see cref="NormSharp.Optim.CosineAnnealingLR"/>) positioned at the epoch
/// by its closed form, so a resumed run gets the same rates as an uninterrupted one.</summary>
public sealed class LearningRateCallback : Callback
{
    private readonly Func<int, double, double>? _schedule;
    private readonly NormSharp.Optim.LearningRateScheduler? _scheduler;

    /// <summary>Uses <paramref name="schedule"/>(epoch, currentRate) → new rate.</summary>
    public LearningRateCallback(Func<int, double, double> schedule) => _schedule = schedule ?? throw new ArgumentNullException(nameof(schedule));

    /// <summary>Uses a scheduler built on the model's optimizer; epoch e (from 1) runs at the scheduler's epoch e − 1.</summary>
    public LearningRateCallback(NormSharp.Optim.LearningRateScheduler scheduler) => _scheduler = scheduler ?? throw new ArgumentNullException(nameof(scheduler));

    /// <inheritdoc/>
    public override void OnEpochBegin(int epoch, TrainingContext context)
    {
        if (_scheduler is not null)
        {
            if (!ReferenceEquals(_scheduler.Optimizer, context.Model.Optimizer))
                throw new InvalidOperationException("LearningRateCallback: the scheduler drives a different optimizer than the model's.");
            _scheduler.LastEpoch = epoch - 1;
            return;
        }
        double rate = _schedule!(epoch, context.Model.Optimizer.LearningRate);
        if (!double.IsFinite(rate) || rate < 0)
            throw new InvalidOperationException($"LearningRateCallback: the schedule returned {rate} for epoch {epoch}; a learning rate must be finite and ≥ 0.");
        context.Model.Optimizer.LearningRate = rate;
    }
}
