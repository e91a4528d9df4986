using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace NormSharp.Distributed;

/// <summary>
/// The processes that train together (PyTorch's default process group): under <c>mpirun</c> every process of
/// MPI_COMM_WORLD, otherwise this process alone (<see cref="Size"/> 1, where every collective returns its input and
/// libmpi is never loaded). All MPI calls run on one dedicated thread in the order they are issued (MPI
/// initialized with MPI_THREAD_FUNNELED), so the training thread can start a gradient all-reduce and keep computing
/// while it runs. A collective that gets no answer within <see cref="Timeout"/> throws a
/// <see cref="DistributedException"/> instead of hanging.
/// </summary>
public sealed class ProcessGroup : IDisposable
{
    private static readonly Lazy<ProcessGroup> s_world = new(Create);
    private readonly BlockingCollection<Action>? _calls;
    private long _collectiveTicks, _waitingTicks;
    private bool _disposed;

    private ProcessGroup(BlockingCollection<Action>? calls, int rank, int size)
    {
        _calls = calls;
        Rank = rank;
        Size = size;
    }

    /// <summary>The group of all processes started together: MPI_COMM_WORLD under mpirun (or srun with PMIx),
    /// otherwise this process alone. MPI is initialized on first use and finalized when the process exits.</summary>
    public static ProcessGroup World => s_world.Value;

    /// <summary>Whether this process was started by an MPI launcher (mpirun's OMPI_COMM_WORLD_SIZE, PMIx's
    /// PMIX_RANK or PMI's PMI_SIZE in the environment).</summary>
    public static bool LaunchedByMpi =>
        new[] { "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE" }.Any(name => Environment.GetEnvironmentVariable(name) is not null);

    /// <summary>This process's index in the group, 0 to <see cref="Size"/> − 1.</summary>
    public int Rank { get; }

    /// <summary>The number of processes.</summary>
    public int Size { get; }

    /// <summary>How long a collective waits for the other processes before giving up with an error: the
    /// NORMSHARP_DISTRIBUTED_TIMEOUT environment variable in seconds, 120 by default.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(
        double.TryParse(Environment.GetEnvironmentVariable("NORMSHARP_DISTRIBUTED_TIMEOUT"), NumberStyles.Float, CultureInfo.InvariantCulture, out double s) && s > 0 ? s : 120);

    /// <summary>Time the communication thread has spent inside MPI collectives.</summary>
    public TimeSpan CollectiveTime => TimeSpan.FromTicks(Interlocked.Read(ref _collectiveTicks));

    /// <summary>Time callers have spent blocked waiting for collectives to finish (communication not hidden behind
    /// computation).</summary>
    public TimeSpan WaitingTime => TimeSpan.FromTicks(Interlocked.Read(ref _waitingTicks));

    private static ProcessGroup Create()
    {
        if (!LaunchedByMpi) return new ProcessGroup(null, 0, 1);
        Mpi.Load();
        // A process waiting in a collective polls; yielding there leaves the core to this process's training thread
        // (and to the other processes when there are more processes than cores). A value the user set wins.
        Mpi.SetEnvironmentDefault("OMPI_MCA_mpi_yield_when_idle", "1");
        var calls = new BlockingCollection<Action>();
        var thread = new Thread(() => { foreach (Action call in calls.GetConsumingEnumerable()) call(); })
        { IsBackground = true, Name = "NormSharp MPI" };
        thread.Start();
        var (rank, size) = Run(calls, "MPI_Init_thread", () => Initialize(), TimeSpan.FromMinutes(5));
        var group = new ProcessGroup(calls, rank, size);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => group.Dispose();
        return group;
    }

    private static unsafe (int Rank, int Size) Initialize()
    {
        int provided, rank, size;
        Mpi.Check(Mpi.InitThread(null, 0, Mpi.ThreadFunneled, &provided), "MPI_Init_thread");
        Mpi.Check(Mpi.CommRank(Mpi.CommWorld, &rank), "MPI_Comm_rank");
        Mpi.Check(Mpi.CommSize(Mpi.CommWorld, &size), "MPI_Comm_size");
        return (rank, size);
    }

    /// <summary>Replaces <paramref name="values"/> by their element-wise sum over the processes.</summary>
    public void AllReduceSum(float[] values) => Wait(StartAllReduceSum(values), "all-reduce");

    /// <inheritdoc cref="AllReduceSum(float[])"/>
    public void AllReduceSum(double[] values) => Wait(StartAllReduceSum(values), "all-reduce");

    /// <summary>Starts summing <paramref name="values"/> over the processes in place and returns at once; the array
    /// must not be touched until the task completes (<see cref="Wait"/>).</summary>
    public unsafe Task StartAllReduceSum(float[] values) => Start("all-reduce", () =>
    {
        fixed (float* p = values) Mpi.Check(Mpi.Allreduce(Mpi.InPlace, (nint)p, values.Length, Mpi.Float, Mpi.Sum, Mpi.CommWorld), "MPI_Allreduce");
    });

    /// <inheritdoc cref="StartAllReduceSum(float[])"/>
    public unsafe Task StartAllReduceSum(double[] values) => Start("all-reduce", () =>
    {
        fixed (double* p = values) Mpi.Check(Mpi.Allreduce(Mpi.InPlace, (nint)p, values.Length, Mpi.Double, Mpi.Sum, Mpi.CommWorld), "MPI_Allreduce");
    });

    /// <summary>Copies <paramref name="root"/>'s <paramref name="values"/> into every process's.</summary>
    public unsafe void Broadcast(byte[] values, int root = 0) => Wait(Start("broadcast", () =>
    {
        fixed (byte* p = values) Mpi.Check(Mpi.Bcast((nint)p, values.Length, Mpi.Byte, root, Mpi.CommWorld), "MPI_Bcast");
    }), "broadcast");

    /// <summary>The concatenation, in rank order, of every process's <paramref name="values"/> (the same length on
    /// every process).</summary>
    public unsafe double[] AllGather(double[] values)
    {
        var all = new double[values.Length * Size];
        if (_calls is null) { values.CopyTo(all, 0); return all; }
        Wait(Start("all-gather", () =>
        {
            fixed (double* send = values, receive = all)
                Mpi.Check(Mpi.Allgather((nint)send, values.Length, Mpi.Double, (nint)receive, values.Length, Mpi.Double, Mpi.CommWorld), "MPI_Allgather");
        }), "all-gather");
        return all;
    }

    /// <summary>Every process's <paramref name="text"/>, in rank order (texts of any length).</summary>
    public string[] AllGather(string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        int longest = (int)AllGather(new double[] { bytes.Length }).Max();
        var padded = new double[longest];
        for (int i = 0; i < bytes.Length; i++) padded[i] = bytes[i];
        double[] all = AllGather(padded);
        return Enumerable.Range(0, Size).Select(r =>
            Encoding.UTF8.GetString(all.Skip(r * longest).Take(longest).TakeWhile(b => b != 0).Select(b => (byte)b).ToArray())).ToArray();
    }

    /// <summary>Waits until every process has called it.</summary>
    public unsafe void Barrier() => Wait(Start("barrier", () => Mpi.Check(Mpi.Barrier(Mpi.CommWorld), "MPI_Barrier")), "barrier");

    /// <summary>Waits for a collective started by this group, throwing a <see cref="DistributedException"/> naming
    /// <paramref name="what"/> if the other processes do not take part within <see cref="Timeout"/>.</summary>
    public void Wait(Task collective, string what)
    {
        if (collective.IsCompletedSuccessfully) return;
        long start = Stopwatch.GetTimestamp();
        try
        {
            if (!collective.Wait(Timeout))
                throw new DistributedException($"rank {Rank} of {Size}: no answer from the other processes within {Timeout.TotalSeconds:0} s in a {what}; a process has died or stopped taking part (NORMSHARP_DISTRIBUTED_TIMEOUT sets the limit in seconds).");
        }
        catch (AggregateException e) when (e.InnerException is not null) { throw e.InnerException; }
        finally { Interlocked.Add(ref _waitingTicks, Stopwatch.GetElapsedTime(start).Ticks); }
    }

    /// <summary>Ends the whole job at once (MPI_Abort): every process of the group stops with
    /// <paramref name="code"/>. Alone, nothing happens and the caller exits as it would.</summary>
    public unsafe void Abort(int code)
    {
        if (_calls is null) return;
        Mpi.Abort(Mpi.CommWorld, code);
    }

    /// <summary>Finalizes MPI after all issued collectives are done; the group cannot be used afterwards.</summary>
    public unsafe void Dispose()
    {
        if (_calls is null || _disposed) return;
        _disposed = true;
        Run(_calls, "MPI_Finalize", () => Mpi.Check(Mpi.Finalize(), "MPI_Finalize"), Timeout);
        _calls.CompleteAdding();
    }

    private Task Start(string what, Action call)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_calls is null) return Task.CompletedTask;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _calls.Add(() =>
        {
            long start = Stopwatch.GetTimestamp();
            try { call(); done.SetResult(); }
            catch (Exception e) { done.SetException(new DistributedException($"rank {Rank}: {what}: {e.Message}")); }
            finally { Interlocked.Add(ref _collectiveTicks, Stopwatch.GetElapsedTime(start).Ticks); }
        });
        return done.Task;
    }

    private static T Run<T>(BlockingCollection<Action> calls, string what, Func<T> call, TimeSpan timeout)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        calls.Add(() =>
        {
            try { done.SetResult(call()); }
            catch (Exception e) { done.SetException(e); }
        });
        if (!done.Task.Wait(timeout)) throw new DistributedException($"{what} did not return within {timeout.TotalSeconds:0} s.");
        return done.Task.GetAwaiter().GetResult();
    }

    private static void Run(BlockingCollection<Action> calls, string what, Action call, TimeSpan timeout) =>
        Run<bool>(calls, what, () => { call(); return true; }, timeout);
}
