using System.Runtime.ExceptionServices;

namespace NormSharp;

/// <summary>
/// The threads behind <see cref="Parallelism.For{TBody}"/>: background workers, started on first use and added when
/// <see cref="Parallelism.ThreadCount"/> grows, that sleep until a loop wakes them. The chunks are fixed by the loop,
/// but who runs which is not: the calling thread runs chunk 0, then it and the workers claim the others one at a time
/// until none is left, so a worker that the operating system is slow to schedule (the cores may be shared) leaves its
/// chunk to another thread instead of holding up the loop. Then the caller waits for the chunks still running.
/// One loop at a time owns the workers: a loop started meanwhile on another thread runs its chunks one after another
/// on that thread (the same chunks, so the same results). A loop allocates nothing: its body is copied into a slot
/// kept for its type, and the wake-up and completion signals are reused.
/// </summary>
internal static class WorkerPool
{
    private static readonly object s_growLock = new();
    private static Worker[] s_workers = [];
    private static int s_busy;

    // The loop being run. s_claims holds the loop's number (high 32 bits) and its next unclaimed chunk (low 32 bits):
    // a worker claims only in the loop whose number it read before the job, and a loop is closed (next chunk
    // int.MaxValue) before the next one overwrites the job, so a worker that wakes late never runs a chunk of one
    // loop with the body or sizes of another.
    private static Job? s_job;
    private static int s_count, s_chunks, s_finished, s_loop;
    private static long s_claims;
    private static Exception?[] s_errors = [null];
    private static readonly ManualResetEventSlim s_done = new(false);

    /// <summary>How long an idle worker spins before it sleeps: 200 µs.</summary>
    private static readonly long SpinTicks = System.Diagnostics.Stopwatch.Frequency / 5000;

    /// <summary>Runs <paramref name="body"/> over [0, <paramref name="count"/>) in <paramref name="chunks"/> chunks
    /// (at least 2) on as many threads and returns when all have ended, rethrowing the exception of the first chunk
    /// that failed.</summary>
    public static void Run<TBody>(TBody body, int count, int chunks) where TBody : struct, IChunkBody =>
        Run(body, count, chunks, chunks);

    /// <summary><see cref="Run{TBody}(TBody, int, int)"/> with the chunks shared among <paramref name="threads"/>
    /// threads (at least 2, at most <paramref name="chunks"/>): the calling thread and threads − 1 workers.</summary>
    public static void Run<TBody>(TBody body, int count, int chunks, int threads) where TBody : struct, IChunkBody
    {
        if (Interlocked.CompareExchange(ref s_busy, 1, 0) != 0)
        {
            for (int chunk = 0; chunk < chunks; chunk++) Parallelism.RunChunk(ref body, count, chunks, chunk);
            return;
        }
        Job<TBody> job = Job<TBody>.Instance;
        try
        {
            // Close the previous loop to late claims before its job and sizes are overwritten.
            Interlocked.Exchange(ref s_claims, ((long)s_loop << 32) | int.MaxValue);
            EnsureWorkers(threads - 1);
            if (s_errors.Length < chunks) s_errors = new Exception?[chunks];
            job.Body = body;
            (s_job, s_count, s_chunks, s_finished) = (job, count, chunks, 0);
            int loop = ++s_loop;
            Volatile.Write(ref s_claims, ((long)loop << 32) | 1); // publishes the loop, chunk 0 claimed by the caller
            for (int w = 0; w < threads - 1; w++) s_workers[w].Wake.Set();
            bool finishedLast = RunChunk(job, count, chunks, 0);
            if (!(RunClaimedChunks(job, loop, count, chunks) || finishedLast))
            {
                SpinUntilFinished(chunks);
                s_done.Wait();
                s_done.Reset();
            }
            ThrowFirstError(chunks);
        }
        finally
        {
            job.Body = default; // drops the references the body holds
            s_job = null;
            Volatile.Write(ref s_busy, 0);
        }
    }

    /// <summary>Claims and runs chunks of loop <paramref name="loop"/> until none is left. Returns true when this
    /// thread finished the loop's last chunk; a worker that does signals the caller instead.</summary>
    private static bool RunClaimedChunks(Job job, int loop, int count, int chunks)
    {
        bool finishedLast = false;
        while (true)
        {
            long claims = Volatile.Read(ref s_claims);
            int chunk = (int)claims;
            if ((int)(claims >> 32) != loop || chunk >= chunks) return finishedLast;
            if (Interlocked.CompareExchange(ref s_claims, claims + 1, claims) == claims)
                finishedLast = RunChunk(job, count, chunks, chunk);
        }
    }

    /// <summary>Watches for the chunks still running on workers to end, for up to <see cref="SpinTicks"/>, before the
    /// caller blocks on the completion signal. The chunks are equal, so the last one usually ends microseconds after
    /// the caller's own; a caller asleep in the kernel costs a wake-up of tens of microseconds on a virtual machine
    /// (and the worker's signal a system call), as much as a whole chunk of a million-element element-wise loop. The
    /// signal is still waited for afterwards (then set, or about to be), so that it is reset for the next loop.</summary>
    private static void SpinUntilFinished(int chunks)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        while (Volatile.Read(ref s_finished) < chunks && System.Diagnostics.Stopwatch.GetTimestamp() - start < SpinTicks)
            Thread.SpinWait(20);
    }

    /// <summary>Runs a claimed chunk, keeping its exception. Returns true when it was the loop's last to finish.</summary>
    private static bool RunChunk(Job job, int count, int chunks, int chunk)
    {
        try { job.RunChunk(count, chunks, chunk); }
        catch (Exception e) { s_errors[chunk] = e; }
        return Interlocked.Increment(ref s_finished) == chunks;
    }

    private static void ThrowFirstError(int chunks)
    {
        Exception? first = null;
        for (int chunk = 0; chunk < chunks; chunk++)
        {
            first ??= s_errors[chunk];
            s_errors[chunk] = null;
        }
        if (first is not null) ExceptionDispatchInfo.Throw(first);
    }

    /// <summary>Starts workers until there are <paramref name="count"/>; called only by the loop that owns them.</summary>
    private static void EnsureWorkers(int count)
    {
        if (s_workers.Length >= count) return;
        lock (s_growLock)
        {
            var workers = new Worker[count];
            s_workers.CopyTo(workers, 0);
            for (int i = s_workers.Length; i < count; i++) workers[i] = new Worker(i + 1);
            s_workers = workers;
        }
    }

    private sealed class Worker
    {
        public Worker(int number) =>
            new Thread(Loop) { IsBackground = true, Name = $"NormSharp worker {number}" }.Start();

        public ManualResetEventSlim Wake { get; } = new(false);

        private void Loop()
        {
            int lastLoop = 0;
            while (true)
            {
                if (!SpinForNextLoop(lastLoop)) Wake.Wait();
                Wake.Reset();
                // The loop's number first: the job and sizes read after it are that loop's, or a later one's when
                // that loop is already closed, and then claiming fails.
                int loop = (int)(Volatile.Read(ref s_claims) >> 32);
                lastLoop = loop;
                Job? job = s_job;
                if (job is not null && RunClaimedChunks(job, loop, s_count, s_chunks)) s_done.Set();
                // Between loops no chunk of this worker is running: what it touched may be recycled.
                StorageGuard.SafePoint();
            }
        }

        /// <summary>Watches for a loop after <paramref name="lastLoop"/> for up to <see cref="SpinTicks"/> before the
        /// worker goes to sleep. A training step issues parallel loops back to back, tens of microseconds apart, and
        /// waking a sleeping thread costs about as much on a virtual machine: with sleeping workers the caller ran
        /// most chunks itself and two threads were barely faster than one (seed-CNN step 123 → 103 ms).</summary>
        private static bool SpinForNextLoop(int lastLoop)
        {
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            while (System.Diagnostics.Stopwatch.GetTimestamp() - start < SpinTicks)
            {
                if ((int)(Volatile.Read(ref s_claims) >> 32) != lastLoop) return true;
                Thread.SpinWait(20);
            }
            return false;
        }
    }

    private abstract class Job
    {
        public abstract void RunChunk(int count, int chunks, int chunk);
    }

    /// <summary>The slot for loop bodies of type <typeparamref name="TBody"/>: one instance, reused by every loop.</summary>
    private sealed class Job<TBody> : Job where TBody : struct, IChunkBody
    {
        public static readonly Job<TBody> Instance = new();

        public TBody Body;

        public override void RunChunk(int count, int chunks, int chunk) => Parallelism.RunChunk(ref Body, count, chunks, chunk);
    }
}
