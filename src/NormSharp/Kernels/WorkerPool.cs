using System.Runtime.ExceptionServices;

namespace NormSharp;

/// <summary>
/// The threads behind <see cref="Parallelism.For{TBody}"/>: background workers, started on first use and added when
/// <see cref="Parallelism.ThreadCount"/> grows, that sleep until a loop hands them a chunk. The calling thread runs
/// chunk 0 itself and worker i runs chunk i; then the caller waits for the others. One loop at a time owns the
/// workers: a loop started meanwhile on another thread runs its chunks one after another on that thread (the same
/// chunks, so the same results). A loop allocates nothing: its body is copied into a slot kept for its type, and the
/// wake-up and completion signals are reused.
/// </summary>
internal static class WorkerPool
{
    private static readonly object s_growLock = new();
    private static Worker[] s_workers = [];
    private static int s_busy;

    // The loop being run, read by the workers after their wake-up signal.
    private static Job? s_job;
    private static int s_count, s_chunks, s_pending;
    private static Exception?[] s_errors = [null];
    private static readonly ManualResetEventSlim s_done = new(false);

    /// <summary>Runs <paramref name="body"/> over [0, <paramref name="count"/>) in <paramref name="chunks"/> chunks
    /// (at least 2) and returns when all have ended, rethrowing the exception of the first chunk that failed.</summary>
    public static void Run<TBody>(TBody body, int count, int chunks) where TBody : struct, IChunkBody
    {
        if (Interlocked.CompareExchange(ref s_busy, 1, 0) != 0)
        {
            for (int chunk = 0; chunk < chunks; chunk++) Parallelism.RunChunk(ref body, count, chunks, chunk);
            return;
        }
        Job<TBody> job = Job<TBody>.Instance;
        try
        {
            EnsureWorkers(chunks - 1);
            job.Body = body;
            (s_job, s_count, s_chunks, s_pending) = (job, count, chunks, chunks - 1);
            for (int chunk = 1; chunk < chunks; chunk++) s_workers[chunk - 1].Wake.Set();
            try { job.RunChunk(count, chunks, 0); }
            catch (Exception e) { s_errors[0] = e; }
            s_done.Wait();
            s_done.Reset();
            ThrowFirstError(chunks);
        }
        finally
        {
            job.Body = default; // drops the references the body holds
            s_job = null;
            Volatile.Write(ref s_busy, 0);
        }
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
            for (int i = s_workers.Length; i < count; i++) workers[i] = new Worker(chunk: i + 1);
            var errors = new Exception?[count + 1];
            (s_workers, s_errors) = (workers, errors);
        }
    }

    private sealed class Worker
    {
        private readonly int _chunk;

        public Worker(int chunk)
        {
            _chunk = chunk;
            new Thread(Loop) { IsBackground = true, Name = $"NormSharp worker {chunk}" }.Start();
        }

        public ManualResetEventSlim Wake { get; } = new(false);

        private void Loop()
        {
            while (true)
            {
                Wake.Wait();
                Wake.Reset();
                try { s_job!.RunChunk(s_count, s_chunks, _chunk); }
                catch (Exception e) { s_errors[_chunk] = e; }
                if (Interlocked.Decrement(ref s_pending) == 0) s_done.Set();
            }
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
