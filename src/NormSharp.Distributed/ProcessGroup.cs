using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace NormSharp.Distributed;

/// <summary>
/// The processes that train together (PyTorch's default process group): under <c>mpirun</c> every process of
/// MPI_COMM_WORLD, otherwise this process alone (<see cref="Size"/> 1, where every collective returns its input and
/// libmpi is never loaded). Collectives run on the calling thread (MPI initialized with MPI_THREAD_SERIALIZED: any
/// thread, one call at a time): each is started as MPI's non-blocking form and then polled until it completes, so
/// a gradient all-reduce can be started and left to progress while the backward pass goes on
/// (<see cref="StartAllReduceSum(float[])"/>, <see cref="Progress"/>, <see cref="Wait"/>), and a collective that gets
/// no answer within <see cref="Timeout"/> throws a <see cref="DistributedException"/> instead of hanging. When the
/// launcher stops the job because another process died or failed (mpirun sends SIGTERM), this process prints which
/// process on its machine has ended and what it was doing, and exits with code 1.
/// </summary>
public sealed class ProcessGroup : IDisposable
{
    private static readonly Lazy<ProcessGroup> s_world = new(Create);
    private readonly bool _usesMpi;
    private readonly object _mpiLock = new();
    private readonly List<PendingCollective> _pending = new();
    private (string Host, int ProcessId)[] _processes = Array.Empty<(string, int)>();
    private PosixSignalRegistration? _terminate;
    private volatile string? _waitingFor;
    private long _collectiveTicks, _waitingTicks, _collectives;
    private int _processesOnThisMachine = 1;
    private volatile bool _disposed, _failed;

    private ProcessGroup(bool usesMpi, int rank, int size)
    {
        _usesMpi = usesMpi;
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

    /// <summary>Time spent on collectives: starting them, letting them progress, and waiting for them.</summary>
    public TimeSpan CollectiveTime => TimeSpan.FromTicks(Interlocked.Read(ref _collectiveTicks));

    /// <summary>The number of collectives started: each is a point where the processes meet, and where the one that
    /// arrives first waits for the last.</summary>
    public long CollectiveCount => Interlocked.Read(ref _collectives);

    /// <summary>Time callers have spent waiting for collectives to finish (communication not hidden behind
    /// computation, and the other processes' lateness).</summary>
    public TimeSpan WaitingTime => TimeSpan.FromTicks(Interlocked.Read(ref _waitingTicks));

    private static unsafe ProcessGroup Create()
    {
        if (!LaunchedByMpi) return new ProcessGroup(false, 0, 1);
        Mpi.Load();
        int provided, rank, size;
        Mpi.Check(Mpi.InitThread(null, 0, Mpi.ThreadSerialized, &provided), "MPI_Init_thread");
        if (provided < Mpi.ThreadSerialized)
            throw new DistributedException($"MPI_Init_thread: this libmpi provides thread level {provided}, NormSharp.Distributed needs MPI_THREAD_SERIALIZED ({Mpi.ThreadSerialized}).");
        Mpi.Check(Mpi.CommRank(Mpi.CommWorld, &rank), "MPI_Comm_rank");
        Mpi.Check(Mpi.CommSize(Mpi.CommWorld, &size), "MPI_Comm_size");
        var group = new ProcessGroup(true, rank, size);
        group._processes = group.AllGather($"{Environment.MachineName} {Environment.ProcessId}")
            .Select(line => (line[..line.LastIndexOf(' ')], int.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture))).ToArray();
        group._processesOnThisMachine = group._processes.Count(p => p.Host == Environment.MachineName);
        group._terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, group.OnTerminate);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => group.Dispose();
        return group;
    }

    /// <summary>Replaces <paramref name="values"/> by their element-wise sum over the processes.</summary>
    public void AllReduceSum(float[] values) => Wait(StartAllReduceSum(values), "all-reduce");

    /// <inheritdoc cref="AllReduceSum(float[])"/>
    public void AllReduceSum(double[] values) => Wait(StartAllReduceSum(values), "all-reduce");

    /// <summary>Starts summing <paramref name="values"/> over the processes in place and returns at once; the array
    /// must not be touched until <see cref="Wait"/> returns. Every process must start the same collectives in the
    /// same order.</summary>
    public unsafe PendingCollective StartAllReduceSum(float[] values) =>
        Start("all-reduce", [values], (address, request) => Mpi.Iallreduce(Mpi.InPlace, address[0], values.Length, Mpi.Float, Mpi.Sum, Mpi.CommWorld, request));

    /// <inheritdoc cref="StartAllReduceSum(float[])"/>
    public unsafe PendingCollective StartAllReduceSum(double[] values) =>
        Start("all-reduce", [values], (address, request) => Mpi.Iallreduce(Mpi.InPlace, address[0], values.Length, Mpi.Double, Mpi.Sum, Mpi.CommWorld, request));

    /// <summary>Copies <paramref name="root"/>'s <paramref name="values"/> into every process's.</summary>
    public unsafe void Broadcast(byte[] values, int root = 0) =>
        Wait(Start("broadcast", [values], (address, request) => Mpi.Ibcast(address[0], values.Length, Mpi.Byte, root, Mpi.CommWorld, request)), "broadcast");

    /// <summary>The concatenation, in rank order, of every process's <paramref name="values"/> (the same length on
    /// every process).</summary>
    public unsafe double[] AllGather(double[] values)
    {
        var all = new double[values.Length * Size];
        if (!_usesMpi) { values.CopyTo(all, 0); return all; }
        Wait(Start("all-gather", [values, all], (address, request) =>
            Mpi.Iallgather(address[0], values.Length, Mpi.Double, address[1], values.Length, Mpi.Double, Mpi.CommWorld, request)), "all-gather");
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
    public unsafe void Barrier() => Wait(Start("barrier", [], (_, request) => Mpi.Ibarrier(Mpi.CommWorld, request)), "barrier");

    /// <summary>Lets the started collectives advance (MPI moves data only inside its calls); cheap enough to call
    /// between layers of the backward pass.</summary>
    public void Progress()
    {
        PendingCollective[] pending;
        lock (_mpiLock) pending = _pending.ToArray();
        foreach (PendingCollective collective in pending) Poll(collective);
    }

    /// <summary>Waits for a collective started by this group, throwing a <see cref="DistributedException"/> naming
    /// <paramref name="what"/> if the other processes do not take part within <see cref="Timeout"/>.</summary>
    public void Wait(PendingCollective collective, string what)
    {
        ArgumentNullException.ThrowIfNull(collective);
        if (Poll(collective)) return;
        long start = Stopwatch.GetTimestamp();
        _waitingFor = what;
        try
        {
            // Spins (yielding) through the short waits of processes in step, then polls every PollMicroseconds,
            // sleeping between polls: a process that spins on a busy machine takes the core from the process it waits
            // for (and a millisecond sleep would add its whole granularity to each of a step's dozen exchanges).
            // A spin that gets the core back late (another program ran on it in the meantime) means the cores are
            // shared after all, and the wait sleeps from then on: spinning would take a share of the cores that the
            // process being waited for needs.
            var spin = new SpinWait();
            long spinUntil = start + Stopwatch.Frequency * SpinMicroseconds() / 1_000_000, last = start;
            while (!Poll(collective, counted: false))
            {
                long now = Stopwatch.GetTimestamp();
                if (Stopwatch.GetElapsedTime(start, now) > Timeout)
                {
                    _failed = true;
                    throw new DistributedException($"rank {Rank} of {Size}: no answer from the other processes within {Timeout.TotalSeconds:0} s in the {what}; a process has died or stopped taking part (NORMSHARP_DISTRIBUTED_TIMEOUT sets the limit in seconds).");
                }
                if (now - last > Stopwatch.Frequency * PreemptedMicroseconds / 1_000_000) spinUntil = 0;
                last = now;
                if (now > spinUntil) usleep(PollMicroseconds);
                else spin.SpinOnce(sleep1Threshold: -1);
            }
        }
        finally
        {
            _waitingFor = null;
            long waited = Stopwatch.GetElapsedTime(start).Ticks;
            Interlocked.Add(ref _waitingTicks, waited);
            Interlocked.Add(ref _collectiveTicks, waited);
        }
    }

    /// <summary>Ends the whole job at once (MPI_Abort): every process of the group stops with
    /// <paramref name="code"/>. Alone, nothing happens and the caller exits as it would.</summary>
    public unsafe void Abort(int code)
    {
        if (!_usesMpi) return;
        _failed = true;
        Mpi.Abort(Mpi.CommWorld, code);
    }

    /// <summary>Finalizes MPI (waiting at most <see cref="Timeout"/> for the other processes to do the same); the
    /// group cannot be used afterwards. After a failure, or with collectives still in flight, MPI is left as it is:
    /// MPI_Finalize would wait for processes that are gone.</summary>
    public unsafe void Dispose()
    {
        if (!_usesMpi || _disposed) return;
        _disposed = true;
        _terminate?.Dispose();
        if (_failed || _pending.Count > 0) return;
        var finalize = Task.Run(() => { lock (_mpiLock) Mpi.Check(Mpi.Finalize(), "MPI_Finalize"); });
        if (!finalize.Wait(Timeout))
            Console.Error.WriteLine($"NormSharp.Distributed: rank {Rank} of {Size}: MPI_Finalize did not return within {Timeout.TotalSeconds:0} s; exiting without it.");
    }

    /// <summary>How long a wait sleeps between polls once it has stopped spinning, and the gap between two spins
    /// (a yield and a poll, a few microseconds on a core of its own) that shows another program ran on the core.</summary>
    private const uint PollMicroseconds = 50, PreemptedMicroseconds = 500;

    /// <summary>How long a wait spins before it sleeps between polls: 10 ms when every thread of the processes on this
    /// machine has a core of its own, so that spinning takes no core from a process it waits for (the wake-up from a
    /// sleep, 0.1 ms and more with the kernel's default timer slack, would otherwise be paid at most of a step's
    /// meetings, which one process reaches a fraction of a millisecond before the other), 200 µs when they share the
    /// cores. The machine's cores are counted with get_nprocs, because Environment.ProcessorCount counts only the
    /// cores this process may run on: one for a process that mpirun binds to a core, the case where every process
    /// does have its own.</summary>
    private long SpinMicroseconds() =>
        Parallelism.ThreadCount <= Environment.ProcessorCount && _processesOnThisMachine * Parallelism.ThreadCount <= get_nprocs()
            ? 10_000 : 200;

    [DllImport("libc")]
    private static extern int usleep(uint microseconds);

    /// <summary>The processors online on this machine, whatever this process's affinity.</summary>
    [DllImport("libc")]
    private static extern int get_nprocs();

    private unsafe delegate int StartCall(nint* addresses, nint* request);

    /// <summary>Pins <paramref name="buffers"/> and starts a non-blocking collective on them.</summary>
    private unsafe PendingCollective Start(string what, Array[] buffers, StartCall call)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var pending = new PendingCollective(buffers);
        if (!_usesMpi) { pending.Complete(); return pending; }
        long start = Stopwatch.GetTimestamp();
        nint* addresses = stackalloc nint[Math.Max(1, buffers.Length)];
        for (int i = 0; i < buffers.Length; i++) addresses[i] = pending.Address(i);
        nint request;
        lock (_mpiLock)
        {
            int code = call(addresses, &request);
            if (code != 0) pending.Complete();
            Mpi.Check(code, $"rank {Rank}: {what}");
            pending.Request = request;
            _pending.Add(pending);
        }
        Interlocked.Increment(ref _collectives);
        Interlocked.Add(ref _collectiveTicks, Stopwatch.GetElapsedTime(start).Ticks);
        return pending;
    }

    /// <summary>Whether <paramref name="collective"/> has completed (MPI_Test, which also moves the data of every
    /// other collective in flight); <paramref name="counted"/> adds its time to <see cref="CollectiveTime"/>, which
    /// <see cref="Wait"/> counts as a whole.</summary>
    private unsafe bool Poll(PendingCollective collective, bool counted = true)
    {
        if (collective.IsCompleted) return true;
        long start = Stopwatch.GetTimestamp();
        int done;
        lock (_mpiLock)
        {
            if (collective.IsCompleted) return true;
            nint request = collective.Request;
            Mpi.Check(Mpi.Test(&request, &done, 0), "MPI_Test");
            collective.Request = request;
            if (done != 0)
            {
                collective.Complete();
                _pending.Remove(collective);
            }
        }
        if (counted) Interlocked.Add(ref _collectiveTicks, Stopwatch.GetElapsedTime(start).Ticks);
        return done != 0;
    }

    /// <summary>mpirun sends SIGTERM to the other processes when one dies or fails (and about a second later
    /// SIGKILL), so this is where a surviving process learns of it.</summary>
    private void OnTerminate(PosixSignalContext context)
    {
        context.Cancel = true;
        _failed = true;
        string doing = _waitingFor is { } what ? $"while waiting for the {what}" : "while computing";
        Console.Error.WriteLine($"NormSharp.Distributed: rank {Rank} of {Size}: stopped by SIGTERM {doing}: {DescribeEndedProcesses()}.");
        Console.Error.Flush();
        Environment.Exit(1);
    }

    /// <summary>Which of the other processes on this machine have ended (from /proc), as a sentence.</summary>
    private string DescribeEndedProcesses()
    {
        const string Why = "the MPI launcher sends it to every process when one dies or fails, or when the job is cancelled";
        if (!Directory.Exists("/proc/self")) return Why;
        int[] ended = Enumerable.Range(0, _processes.Length)
            .Where(r => r != Rank && _processes[r].Host == Environment.MachineName && !IsRunning(_processes[r].ProcessId)).ToArray();
        return ended.Length == 0
            ? $"{Why}; no other process on this machine has ended"
            : $"{string.Join(" and ", ended.Select(r => $"rank {r} (PID {_processes[r].ProcessId})"))} has ended ({Why})";
    }

    private static bool IsRunning(int processId)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{processId}/stat");
            return !stat[(stat.LastIndexOf(')') + 1)..].TrimStart().StartsWith('Z');
        }
        catch (IOException) { return false; }
    }
}

/// <summary>A collective started by a <see cref="ProcessGroup"/> and not yet waited for; its arrays stay pinned
/// until it completes.</summary>
public sealed class PendingCollective
{
    private GCHandle[] _pins;

    internal PendingCollective(Array[] buffers) => _pins = buffers.Select(b => GCHandle.Alloc(b, GCHandleType.Pinned)).ToArray();

    /// <summary>Whether the collective has completed.</summary>
    public bool IsCompleted { get; private set; }

    internal nint Request { get; set; }

    internal nint Address(int buffer) => _pins[buffer].AddrOfPinnedObject();

    internal void Complete()
    {
        IsCompleted = true;
        foreach (GCHandle pin in _pins) pin.Free();
        _pins = Array.Empty<GCHandle>();
    }
}
