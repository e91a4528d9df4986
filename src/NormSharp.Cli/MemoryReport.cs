using System.Diagnostics;
using System.Globalization;
using NormSharp.Training;

namespace NormSharp.Cli;

/// <summary>
/// Measures the managed bytes allocated per training step: the process's total allocation
/// (<see cref="GC.GetTotalAllocatedBytes(bool)"/>, all threads) read when an epoch begins and after its last batch,
/// divided by the epoch's batches; after training it holds the last complete epoch's figure. Register it last, so
/// its readings enclose the other callbacks' work for the epoch's batches but not their set-up before the epoch.
/// </summary>
internal sealed class AllocationMeter : Callback
{
    private long _allocatedAtEpochBegin;

    /// <summary>Managed bytes allocated per step in epoch <see cref="Epoch"/>, or null before an epoch completes.</summary>
    public double? BytesPerStep { get; private set; }

    /// <summary>The epoch <see cref="BytesPerStep"/> was measured in.</summary>
    public int Epoch { get; private set; }

    public override void OnEpochBegin(int epoch, TrainingContext context) =>
        _allocatedAtEpochBegin = GC.GetTotalAllocatedBytes(precise: true);

    public override void OnBatchEnd(BatchProgress progress, TrainingContext context)
    {
        if (progress.Batch < progress.Batches) return; // read once per epoch: a precise reading visits every thread
        BytesPerStep = (double)(GC.GetTotalAllocatedBytes(precise: true) - _allocatedAtEpochBegin) / progress.Batches;
        Epoch = progress.Epoch;
    }
}

/// <summary>What a training run cost in memory: the process's peak resident memory and the managed allocation per
/// step (null when no epoch ran, e.g. when resuming a finished run).</summary>
internal sealed record MemoryReport(long PeakWorkingSetBytes, double? AllocatedBytesPerStep, int Epoch)
{
    /// <summary>Reads the peak working set now (on Linux the kernel's high-water mark, VmHWM) and takes the
    /// allocation figure from <paramref name="meter"/>.</summary>
    public static MemoryReport After(AllocationMeter meter)
    {
        using Process process = Process.GetCurrentProcess();
        process.Refresh();
        return new MemoryReport(process.PeakWorkingSet64, meter.BytesPerStep, meter.Epoch);
    }

    /// <summary>Adds <c>peak_working_set_bytes</c> and <c>allocated_bytes_per_step</c> to a run's results.</summary>
    public void AddTo(IDictionary<string, double> results)
    {
        results["peak_working_set_bytes"] = PeakWorkingSetBytes;
        if (AllocatedBytesPerStep is double perStep) results["allocated_bytes_per_step"] = perStep;
    }

    /// <summary>One line for the end-of-run table, e.g. "peak working set 412.0 MiB; 1.9 KiB managed allocation per
    /// training step (epoch 10)".</summary>
    public override string ToString() =>
        $"peak working set {Bytes(PeakWorkingSetBytes)}; " + (AllocatedBytesPerStep is double perStep
            ? $"{Bytes(perStep)} managed allocation per training step (epoch {Epoch})"
            : "no epoch ran, so no allocation per step");

    private static string Bytes(double bytes)
    {
        var (value, unit) = bytes < 1024 ? (bytes, "B") : bytes < 1 << 20 ? (bytes / 1024, "KiB") : (bytes / (1 << 20), "MiB");
        return string.Create(CultureInfo.InvariantCulture, $"{value:F1} {unit}");
    }
}
