namespace NormSharp;

/// <summary>The body of a parallel loop as a struct: <see cref="Run"/>(start, end) processes items [start, end).
/// A loop over a struct body allocates nothing, where a lambda allocates its closure and delegate on every call.</summary>
internal interface IChunkBody
{
    /// <summary>Processes items [<paramref name="start"/>, <paramref name="end"/>).</summary>
    void Run(int start, int end);
}

/// <summary>
/// How many threads NormSharp's kernels use. Work is split into a fixed number of contiguous chunks that depends only
/// on the thread count, never on timing, so results are bit-reproducible for a given seed and thread count. The chunks
/// run on the calling thread and on up to <see cref="ThreadCount"/> − 1 background threads ("NormSharp worker N")
/// that NormSharp starts on first use and keeps.
/// </summary>
public static class Parallelism
{
    private static int s_threadCount = Environment.ProcessorCount;

    // Set on threads running a chunk: a kernel called from inside another's parallel loop (a GEMM inside the
    // per-image loop of a convolution) runs inline instead of oversubscribing the cores.
    [ThreadStatic] private static bool t_insideParallelLoop;

    /// <summary>The number of threads kernels use (default: the processor count).</summary>
    public static int ThreadCount
    {
        get => s_threadCount;
        set
        {
            if (value < 1) throw new ArgumentOutOfRangeException(nameof(value), $"Parallelism.ThreadCount must be at least 1, got {value}.");
            s_threadCount = value;
        }
    }

    /// <summary>Runs <paramref name="body"/>(start, end) over [0, <paramref name="count"/>) split into at most
    /// <see cref="ThreadCount"/> contiguous chunks; runs inline when there is too little work to share or when called
    /// from inside another parallel loop. An exception thrown by a chunk is rethrown here once every chunk has
    /// ended (that of the first failing chunk).</summary>
    internal static void For(int count, Action<int, int> body, long workPerItem = 1) =>
        For(count, new DelegateBody(body), workPerItem);

    /// <summary><see cref="For(int, Action{int, int}, long)"/> over a struct body, which allocates nothing.</summary>
    internal static void For<TBody>(int count, TBody body, long workPerItem = 1) where TBody : struct, IChunkBody
    {
        const long minimumWorkPerThread = 32_768;
        int chunks = (int)Math.Min(Math.Min(ThreadCount, count), Math.Max(1, count * Math.Max(workPerItem, 1) / minimumWorkPerThread));
        if (chunks <= 1 || t_insideParallelLoop)
        {
            if (count > 0) body.Run(0, count);
            return;
        }
        WorkerPool.Run(body, count, chunks);
    }

    /// <summary>Runs <paramref name="body"/>(start, end) over [0, <paramref name="count"/>) cut into
    /// <paramref name="chunks"/> equal contiguous chunks, whatever the thread count; up to <see cref="ThreadCount"/>
    /// threads take them one at a time, so a thread that another process slows down leaves its share to the others
    /// instead of holding up the loop (the chunks of <see cref="For{TBody}"/> are one per thread). With one thread,
    /// or inside another parallel loop, the chunks run in order on the calling thread. The chunks do not depend on the
    /// thread count or on timing; which thread runs which does.</summary>
    internal static void ForEachChunk<TBody>(int count, int chunks, TBody body) where TBody : struct, IChunkBody
    {
        chunks = Math.Min(chunks, count);
        int threads = Math.Min(ThreadCount, chunks);
        if (threads <= 1 || t_insideParallelLoop)
        {
            for (int chunk = 0; chunk < chunks; chunk++)
            {
                var (start, end) = Chunk(count, chunks, chunk);
                body.Run(start, end);
            }
            return;
        }
        WorkerPool.Run(body, count, chunks, threads);
    }

    /// <summary>Chunk <paramref name="chunk"/> of <paramref name="chunks"/> equal contiguous chunks of [0, count).</summary>
    internal static (int Start, int End) Chunk(int count, int chunks, int chunk) =>
        ((int)((long)count * chunk / chunks), (int)((long)count * (chunk + 1) / chunks));

    /// <summary>Runs one chunk of a parallel loop on the current thread, marked as inside it so that nested loops run
    /// inline.</summary>
    internal static void RunChunk<TBody>(ref TBody body, int count, int chunks, int chunk) where TBody : struct, IChunkBody
    {
        var (start, end) = Chunk(count, chunks, chunk);
        bool outer = t_insideParallelLoop;
        t_insideParallelLoop = true;
        try { body.Run(start, end); }
        finally { t_insideParallelLoop = outer; }
    }

    private readonly struct DelegateBody(Action<int, int> body) : IChunkBody
    {
        public void Run(int start, int end) => body(start, end);
    }
}
