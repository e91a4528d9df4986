using System.Globalization;
using System.Runtime.InteropServices;
using NormSharp;
using NormSharp.Data;
using NormSharp.Distributed;
using NormSharp.Keras;
using NormSharp.Optim;
using NormSharp.Training;

// Seed-CNN training throughput of one configuration (run.sh runs the three of issue 13 side by side):
//   [mpirun -np P] dotnet NormSharp.Distributed.Scaling.dll THREADS [STEPS] [WARMUP] [BATCH]
// trains the seed CNN with SyncBatchNorm on the embedded MNIST subset, global batch BATCH (default 128) split over
// the P processes, each using THREADS threads; times STEPS steps (default 40) after WARMUP (default 100; the subset's
// 10,000 images are cycled through as often as needed). The warm-up is long because .NET's tiered JIT goes on
// recompiling methods called once a step (count, instrument, optimize) for about 80 steps: after 30 its background
// thread still took 4-5 ms a step, which a process alone runs on the idle second core for free but which, with one
// process per core, delays the other process at every meeting. Rank 0 prints images per second, milliseconds per
// step, the collectives per step (points where the processes meet), and per step the time spent in MPI calls
// (collectives started, polled and waited for) and the part of it spent waiting (communication not hidden by the
// backward pass, and the other process's lateness), and the processor time per step of all processes together and
// the part of it not on the training threads (the JIT, the GC, MPI's own threads).
int threads = int.Parse(args[0], CultureInfo.InvariantCulture);
int steps = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 40;
int warmup = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 100;
int batchSize = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 128;
ProcessGroup group = ProcessGroup.World;
Parallelism.ThreadCount = threads;

ImageClassificationDataset train = Datasets.Load("mnist-subset").Train;
train = train.Subset(Enumerable.Range(0, (steps + warmup) * batchSize).Select(i => i % train.Count).ToArray());
Sequential model = SeedModels.Cnn(NormalizationKind.Batch, 10, new RandomGenerator(0));
model.Compile(new Adam(model.Network.Parameters()), "categorical_crossentropy", "accuracy");
SyncBatchNorm.ConvertSyncBatchNorm(model.Network, group);
using var parallel = DistributedDataParallel.Attach(model, group);
var timer = new StepTimer(warmup, group);
model.Fit(train, epochs: 1, batchSize, callbacks: [timer]);
// The processor time of every process, summed: unlike the wall time it hardly changes when other programs share the
// cores, so it shows what the distribution costs in work (the 2-process run should take about the 1-process run's).
double[] processorMilliseconds = [timer.ProcessorMillisecondsPerStep, timer.ProcessorMillisecondsPerStep - timer.TrainingThreadMillisecondsPerStep];
group.AllReduceSum(processorMilliseconds);
// Which cores the process may run on: mpirun binds each process to one core unless told --bind-to none.
string cores = File.ReadLines("/proc/self/status").FirstOrDefault(line => line.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal))?.Split(':')[1].Trim() ?? "?";
if (group.Rank == 0)
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"processes {group.Size} x threads {threads} (rank 0 on cores {cores}), batch {batchSize}, buckets {parallel.BucketCount}: {timer.ImagesPerSecond(batchSize),7:F1} img/s, " +
        $"{timer.MillisecondsPerStep,6:F1} ms/step, {timer.CollectivesPerStep:F0} collectives/step, in MPI {timer.CollectiveMillisecondsPerStep:F2} ms/step, " +
        $"of which waiting {timer.WaitingMillisecondsPerStep:F2} ms/step; CPU {processorMilliseconds[0],6:F1} ms/step (all processes), " +
        $"{processorMilliseconds[1]:F1} of it off the training threads"));

/// <summary>Times the steps after the warm-up ones, and the process group's communication over them.</summary>
internal sealed class StepTimer(int warmup, ProcessGroup group) : Callback
{
    private TimeSpan _start, _end, _collectiveStart, _waitingStart, _processorStart, _trainingThreadStart, _collective, _waiting, _processor, _trainingThread;
    private long _collectivesStart, _collectives;
    private int _timed;

    public override void OnBatchEnd(BatchProgress progress, TrainingContext context)
    {
        TimeSpan processor = Environment.CpuUsage.TotalTime, trainingThread = ThisThreadProcessorTime();
        if (progress.Batch == warmup)
            (_start, _collectiveStart, _waitingStart, _processorStart, _trainingThreadStart, _collectivesStart) =
                (progress.Elapsed, group.CollectiveTime, group.WaitingTime, processor, trainingThread, group.CollectiveCount);
        else if (progress.Batch > warmup)
        {
            _timed = progress.Batch - warmup;
            (_end, _collective, _waiting, _processor, _trainingThread, _collectives) = (progress.Elapsed, group.CollectiveTime - _collectiveStart,
                group.WaitingTime - _waitingStart, processor - _processorStart, trainingThread - _trainingThreadStart, group.CollectiveCount - _collectivesStart);
        }
    }

    public double MillisecondsPerStep => (_end - _start).TotalMilliseconds / _timed;
    public double CollectiveMillisecondsPerStep => _collective.TotalMilliseconds / _timed;
    public double WaitingMillisecondsPerStep => _waiting.TotalMilliseconds / _timed;
    public double ProcessorMillisecondsPerStep => _processor.TotalMilliseconds / _timed;
    public double ImagesPerSecond(int batchSize) => batchSize * 1000 / MillisecondsPerStep;
    public double CollectivesPerStep => (double)_collectives / _timed;

    /// <summary>Processor time of the training thread alone; with THREADS > 1 the kernels' worker threads count as
    /// off it.</summary>
    public double TrainingThreadMillisecondsPerStep => _trainingThread.TotalMilliseconds / _timed;

    private static TimeSpan ThisThreadProcessorTime()
    {
        const int ClockThreadCpuTime = 3; // CLOCK_THREAD_CPUTIME_ID
        clock_gettime(ClockThreadCpuTime, out Timespec t);
        return TimeSpan.FromTicks(t.Seconds * TimeSpan.TicksPerSecond + t.Nanoseconds / 100);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec { public long Seconds, Nanoseconds; }

    [DllImport("libc")]
    private static extern int clock_gettime(int clock, out Timespec time);
}
