using System.Globalization;
using NormSharp;
using NormSharp.Data;
using NormSharp.Distributed;
using NormSharp.Keras;
using NormSharp.Optim;
using NormSharp.Training;

// Seed-CNN training throughput of one configuration (run.sh runs the three of issue 13 side by side):
//   [mpirun -np P] dotnet NormSharp.Distributed.Scaling.dll THREADS [STEPS] [WARMUP] [BATCH]
// trains the seed CNN with SyncBatchNorm on the embedded MNIST subset, global batch BATCH (default 128) split over
// the P processes, each using THREADS threads; times STEPS steps (default 40) after WARMUP (default 30: the JIT is
// still optimizing the kernels over the first twenty or so, which costs every process the same). Rank 0 prints
// images per second, milliseconds per step, and per step the time spent in MPI calls (collectives started, polled
// and waited for) and the part of it spent waiting (communication not hidden by the backward pass, and the other
// process's lateness), and the processor time per step of all processes together.
int threads = int.Parse(args[0], CultureInfo.InvariantCulture);
int steps = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 40;
int warmup = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 30;
int batchSize = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 128;
ProcessGroup group = ProcessGroup.World;
Parallelism.ThreadCount = threads;

ImageClassificationDataset train = Datasets.Load("mnist-subset").Train;
train = train.Subset(Enumerable.Range(0, Math.Min(train.Count, (steps + warmup) * batchSize)).ToArray());
Sequential model = SeedModels.Cnn(NormalizationKind.Batch, 10, new RandomGenerator(0));
model.Compile(new Adam(model.Network.Parameters()), "categorical_crossentropy", "accuracy");
SyncBatchNorm.ConvertSyncBatchNorm(model.Network, group);
using var parallel = DistributedDataParallel.Attach(model, group);
var timer = new StepTimer(warmup, group);
model.Fit(train, epochs: 1, batchSize, callbacks: [timer]);
// The processor time of every process, summed: unlike the wall time it hardly changes when other programs share the
// cores, so it shows what the distribution costs in work (the 2-process run should take about the 1-process run's).
double[] processorMilliseconds = [timer.ProcessorMillisecondsPerStep];
group.AllReduceSum(processorMilliseconds);
if (group.Rank == 0)
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"processes {group.Size} x threads {threads}, batch {batchSize}, buckets {parallel.BucketCount}: {timer.ImagesPerSecond(batchSize),7:F1} img/s, " +
        $"{timer.MillisecondsPerStep,6:F1} ms/step, in MPI {timer.CollectiveMillisecondsPerStep:F2} ms/step, " +
        $"of which waiting {timer.WaitingMillisecondsPerStep:F2} ms/step; CPU {processorMilliseconds[0],6:F1} ms/step (all processes)"));

/// <summary>Times the steps after the warm-up ones, and the process group's communication over them.</summary>
internal sealed class StepTimer(int warmup, ProcessGroup group) : Callback
{
    private TimeSpan _start, _end, _collectiveStart, _waitingStart, _processorStart, _collective, _waiting, _processor;
    private int _timed;

    public override void OnBatchEnd(BatchProgress progress, TrainingContext context)
    {
        TimeSpan processor = Environment.CpuUsage.TotalTime;
        if (progress.Batch == warmup) (_start, _collectiveStart, _waitingStart, _processorStart) = (progress.Elapsed, group.CollectiveTime, group.WaitingTime, processor);
        else if (progress.Batch > warmup)
        {
            _timed = progress.Batch - warmup;
            (_end, _collective, _waiting, _processor) = (progress.Elapsed, group.CollectiveTime - _collectiveStart, group.WaitingTime - _waitingStart, processor - _processorStart);
        }
    }

    public double MillisecondsPerStep => (_end - _start).TotalMilliseconds / _timed;
    public double CollectiveMillisecondsPerStep => _collective.TotalMilliseconds / _timed;
    public double WaitingMillisecondsPerStep => _waiting.TotalMilliseconds / _timed;
    public double ProcessorMillisecondsPerStep => _processor.TotalMilliseconds / _timed;
    public double ImagesPerSecond(int batchSize) => batchSize * 1000 / MillisecondsPerStep;
}
