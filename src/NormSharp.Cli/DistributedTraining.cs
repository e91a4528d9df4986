using NormSharp.Distributed;
using NormSharp.Experiments;
using NormSharp.Training;

namespace NormSharp.Cli;

/// <summary>
/// What <c>normsharp train --distributed</c> adds to a training run (implied when mpirun started the process):
/// the model's BatchNorm layers become <see cref="SyncBatchNorm"/> (unless <c>--no-sync-bn</c>), the processes check
/// that they agree on the model and the settings, and <see cref="Model.Fit"/> trains each on its part of every batch
/// of <c>--batch-size</c>. Only rank 0 prints and writes the run folder. An error on any process ends the whole job
/// (MPI_Abort) with the error printed, rather than leaving the others waiting.
/// </summary>
internal sealed class DistributedTraining
{
    public const string Help = """
          --distributed        data-parallel training over MPI (implied under mpirun): --batch-size is the global
                               batch, split over the processes; only rank 0 prints and writes the run folder
          --no-sync-bn         with --distributed: each process normalizes with the statistics of its own part of
                               the batch instead of the whole batch's (SyncBatchNorm)
        """;

    private DistributedTraining(ProcessGroup group, bool syncBatchNorm)
    {
        Group = group;
        SyncBatchNorm = syncBatchNorm;
    }

    public ProcessGroup Group { get; }

    public bool SyncBatchNorm { get; }

    /// <summary>Rank 0 prints progress and writes the run folder.</summary>
    public bool IsLead => Group.Rank == 0;

    /// <summary>Reads <c>--distributed</c> and <c>--no-sync-bn</c>; null for a run in one process.</summary>
    public static DistributedTraining? FromOptions(Options args)
    {
        bool requested = args.Flag("distributed") | ProcessGroup.LaunchedByMpi;
        bool noSync = args.Flag("no-sync-bn");
        if (!requested)
        {
            if (noSync) throw new UsageException("--no-sync-bn applies to --distributed training only");
            return null;
        }
        return new DistributedTraining(ProcessGroup.World, !noSync);
    }

    /// <summary>The default thread count: this machine's processors shared by the processes running on it.</summary>
    public static int DefaultThreads()
    {
        int local = int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_LOCAL_SIZE"), out int n) && n > 0 ? n : ProcessGroup.World.Size;
        return Math.Max(1, Environment.ProcessorCount / local);
    }

    /// <summary>Runs <paramref name="train"/>; an exception on this process is printed with its rank and ends every
    /// process of the job.</summary>
    public int Guard(Func<int> train)
    {
        try { return train(); }
        catch (Exception e)
        {
            Console.Error.WriteLine($"normsharp: rank {Group.Rank} of {Group.Size}: {e.Message}");
            Console.Error.Flush();
            Group.Abort(1);
            throw;
        }
    }

    /// <summary>Makes <paramref name="model"/> train data-parallel after checking that every process has the same
    /// model and <paramref name="settings"/>; converts its BatchNorm layers first when SyncBatchNorm is on.</summary>
    public void Attach(Model model, int batchSize, IEnumerable<string> settings)
    {
        if (batchSize < Group.Size)
            throw new UsageException($"--batch-size {batchSize} is smaller than the {Group.Size} processes that share each batch");
        if (SyncBatchNorm) Distributed.SyncBatchNorm.ConvertSyncBatchNorm(model.Network, Group);
        DistributedDataParallel.Attach(model, Group, settings.Append($"sync_batch_norm={SyncBatchNorm}"));
    }
}
