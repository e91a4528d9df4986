using System.Runtime.ExceptionServices;

namespace NormSharp;

/// <summary>
/// The threads behind <see cref="Parallelism.For{TBody}"/>: background workers, started on first use and added when
/// <see cref="Parallelism.ThreadCount"/> grows, that sleep until a loop wakes them. The chunks are fixed by the loop
/// (<see cref="ChunkPlan"/>), but who runs which is not. Each thread has a share of the chunks, the calling thread the
/// first and worker N the (N+1)-th: it runs its own share's chunks from the front, then takes the others' from their
/// backs, one at a time, until none is left; when the loop takes its chunks in order, every thread takes the next one.
/// So a worker that the operating system is slow to schedule, or that runs on a slower core, leaves the end of its share
/// to another thread instead of holding up the loop. Then the caller waits for the chunks still running. One loop at a
/// time owns the workers: a loop started meanwhile on another thread runs its chunks one after another on that thread
/// (the same chunks, so the same results). A loop allocates nothing: its body is copied into a slot kept for its type,
/// and the claims, the wake-up and the completion signals are reused.
/// </summary>
internal static class WorkerPool
{
    private static readonly object s_growLock = new();
    private static Worker[] s_workers = [];
    private static int s_busy;

    // The loop being run: its number, job and plan. Each share's claims live in one word of s_claims, a cache line
    // apart: the loop's number (high 32 bits), the share's next chunk from the front (bits 16–31) and its end (bits
    // 0–15). A thread claims only in the loop whose number it read before the job and plan, and a loop's words hold
    // no chunk left once it has ended, so a worker that wakes late never runs a chunk of one loop with the body or
    // plan of another.
    private const int ClaimStride = 8;
    private static Job? s_job;
    private static ChunkPlan s_plan;
    private static int s_finished, s_loop;
    private static long[] s_claims = new long[ClaimStride];
    private static Exception?[] s_errors = [null];
    private static readonly ManualResetEventSlim s_done = new(false);

    /// <summary>How long an idle worker spins before it sleeps: 200 µs.</summary>
    private static readonly long SpinTicks = System.Diagnostics.Stopwatch.Frequency / 5000;

    /// <summary>Runs <paramref name="body"/> over the chunks of <paramref name="plan"/> (at least 2) on
    /// <paramref name="threads"/> threads (at least 2, at most the chunks): the calling thread and threads − 1 workers.
    /// Returns when all have ended, rethrowing the exception of the first chunk that failed.</summary>
    public static void Run<TBody>(TBody body, ChunkPlan plan, int threads) where TBody : struct, IChunkBody
    {
        int chunks = plan.Chunks;
        if (Interlocked.CompareExchange(ref s_busy, 1, 0) != 0)
        {
            for (int chunk = 0; chunk < chunks; chunk++) Parallelism.RunChunk(ref body, plan, chunk);
            return;
        }
        Job<TBody> job = Job<TBody>.Instance;
        try
        {
            EnsureWorkers(threads - 1);
            if (s_errors.Length < chunks) s_errors = new Exception?[chunks];
            int shares = plan.TakenInOrder ? 1 : plan.Shares, perShare = plan.TakenInOrder ? chunks : plan.PerShare;
            if (s_claims.Length < shares * ClaimStride) s_claims = new long[shares * ClaimStride];
            job.Body = body;
            (s_job, s_plan, s_finished) = (job, plan, 0);
            int loop = s_loop + 1;
            // Chunk 0, the front of the first share, is the caller's.
            for (int share = 0; share < shares; share++)
                s_claims[share * ClaimStride] = Claims(loop, share * perShare + (share == 0 ? 1 : 0), (share + 1) * perShare);
            Volatile.Write(ref s_loop, loop); // publishes the loop
            for (int w = 0; w < threads - 1; w++) s_workers[w].Wake.Set();
            bool finishedLast = RunChunk(job, plan, 0);
            if (!(RunClaimedChunks(job, plan, loop, share: 0) || finishedLast))
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

    private static long Claims(int loop, int front, int end) => ((long)loop << 32) | ((long)front << 16) | (uint)end;

    /// <summary>Claims and runs chunks of loop <paramref name="loop"/> until none is left: those of its own
    /// <paramref name="share"/> from the front, then the other shares' from their backs (every thread takes from the
    /// front of the single share of a loop taken in order). Returns true when this thread finished the loop's last
    /// chunk; a worker that does signals the caller instead.</summary>
    private static bool RunClaimedChunks(Job job, ChunkPlan plan, int loop, int share)
    {
        long[] claims = s_claims;
        // A worker that wakes late may read a later loop's plan and an earlier loop's claims, larger than they hold;
        // it claims nothing then, as their loop numbers differ from the one it read.
        int shares = Math.Min(plan.TakenInOrder ? 1 : plan.Shares, claims.Length / ClaimStride);
        bool finishedLast = false;
        if (plan.TakenInOrder) share = 0;
        if (share < shares)
            for (int chunk; (chunk = ClaimFront(claims, share, loop)) >= 0;) finishedLast |= RunChunk(job, plan, chunk);
        if (plan.TakenInOrder) return finishedLast;
        for (int i = 1; i <= shares; i++)
        {
            int other = (share + i) % shares;
            for (int chunk; (chunk = ClaimBack(claims, other, loop)) >= 0;) finishedLast |= RunChunk(job, plan, chunk);
        }
        return finishedLast;
    }

    /// <summary>The next chunk at the front of <paramref name="share"/> in loop <paramref name="loop"/>, or −1.</summary>
    private static int ClaimFront(long[] claims, int share, int loop)
    {
        ref long word = ref claims[share * ClaimStride];
        while (true)
        {
            long seen = Volatile.Read(ref word);
            int front = (int)(seen >> 16) & 0xFFFF;
            if ((int)(seen >> 32) != loop || front >= (int)(seen & 0xFFFF)) return -1;
            if (Interlocked.CompareExchange(ref word, seen + (1L << 16), seen) == seen) return front;
        }
    }

    /// <summary>The last chunk left at the back of <paramref name="share"/> in loop <paramref name="loop"/>, or −1.</summary>
    private static int ClaimBack(long[] claims, int share, int loop)
    {
        ref long word = ref claims[share * ClaimStride];
        while (true)
        {
            long seen = Volatile.Read(ref word);
            int end = (int)(seen & 0xFFFF);
            if ((int)(seen >> 32) != loop || ((int)(seen >> 16) & 0xFFFF) >= end) return -1;
            if (Interlocked.CompareExchange(ref word, seen - 1, seen) == seen) return end - 1;
        }
    }

    /// <summary>Watches for the chunks still running on workers to end, for up to <see cref="SpinTicks"/>, before the
    /// caller blocks on the completion signal. The last chunks are the shares' smallest, so the last one usually ends
    /// microseconds after the caller's own; a caller asleep in the kernel costs a wake-up of tens of microseconds on a
    /// virtual machine (and the worker's signal a system call), as much as a whole chunk of a million-element
    /// element-wise loop. The signal is still waited for afterwards (then set, or about to be), so that it is reset for
    /// the next loop.</summary>
    private static void SpinUntilFinished(int chunks)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        while (Volatile.Read(ref s_finished) < chunks && System.Diagnostics.Stopwatch.GetTimestamp() - start < SpinTicks)
            Thread.SpinWait(20);
    }

    /// <summary>Runs a claimed chunk, keeping its exception. Returns true when it was the loop's last to finish.</summary>
    private static bool RunChunk(Job job, ChunkPlan plan, int chunk)
    {
        try { job.RunChunk(plan, chunk); }
        catch (Exception e) { s_errors[chunk] = e; }
        return Interlocked.Increment(ref s_finished) == plan.Chunks;
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
        private readonly int _number;

        public Worker(int number)
        {
            _number = number;
            new Thread(Loop) { IsBackground = true, Name = $"NormSharp worker {number}" }.Start();
        }

        public ManualResetEventSlim Wake { get; } = new(false);

        private void Loop()
        {
            int lastLoop = 0;
            while (true)
            {
                if (!SpinForNextLoop(lastLoop)) Wake.Wait();
                Wake.Reset();
                // The loop's number first: the job and plan read after it are that loop's, or a later one's when
                // that loop has already ended, and then claiming fails.
                int loop = Volatile.Read(ref s_loop);
                lastLoop = loop;
                Job? job = s_job;
                if (job is not null && RunClaimedChunks(job, s_plan, loop, share: _number)) s_done.Set();
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
                if (Volatile.Read(ref s_loop) != lastLoop) return true;
                Thread.SpinWait(20);
            }
            return false;
        }
    }

    private abstract class Job
    {
        public abstract void RunChunk(ChunkPlan plan, int chunk);
    }

    /// <summary>The slot for loop bodies of type <typeparamref name="TBody"/>: one instance, reused by every loop.</summary>
    private sealed class Job<TBody> : Job where TBody : struct, IChunkBody
    {
        public static readonly Job<TBody> Instance = new();

        public TBody Body;

        public override void RunChunk(ChunkPlan plan, int chunk) => Parallelism.RunChunk(ref Body, plan, chunk);
    }
}
