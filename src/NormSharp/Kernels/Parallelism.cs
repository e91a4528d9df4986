namespace NormSharp;

/// <summary>The body of a parallel loop as a struct: <see cref="Run"/>(start, end) processes items [start, end).
/// A loop over a struct body allocates nothing, where a lambda allocates its closure and delegate on every call.</summary>
internal interface IChunkBody
{
    /// <summary>Processes items [<paramref name="start"/>, <paramref name="end"/>).</summary>
    void Run(int start, int end);

    /// <summary>Whether <see cref="Parallelism.For{TBody}"/> may cut each thread's share into several chunks that the
    /// threads take in turn: true for a body whose chunk costs next to nothing to start. False (the default) keeps one
    /// chunk per thread, for bodies that set up per chunk what their items then share: the GEMM's small path packs the
    /// whole shared operand per chunk, the implicit convolutions stage images and build tap masks. Cut into chunks,
    /// they paid that setup several times per thread: the seed CNN's training step took 0.93× as long on 2 threads
    /// (median of 160 alternating calls, under load). A loop over a lambda takes turns.</summary>
    static virtual bool TakesTurns => false;
}

/// <summary>
/// How many threads NormSharp's kernels use. A loop's items are cut into contiguous chunks that depend only on the
/// item count, the work per item and the thread count, never on timing, so results are bit-reproducible for a given
/// seed and thread count (and the kernels are written to give the same bits whatever the chunks). The chunks run on the calling thread
/// and on up to <see cref="ThreadCount"/> − 1 background threads ("NormSharp worker N") that NormSharp starts on first
/// use and keeps; which thread runs which chunk depends on timing.
/// </summary>
public static class Parallelism
{
    /// <summary>Work units that make a share worth a thread (about 10–20 µs of work).</summary>
    private const long MinimumWorkPerThread = 32_768;

    /// <summary>Work units below which a share is not cut further: a chunk costs a claim on a shared cache line and
    /// its body's setup (well under a microsecond), which stays under 1 % of a chunk this large, and loops of tens of
    /// microseconds keep one chunk per thread.</summary>
    private const long MinimumWorkPerChunk = 131_072;

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

    /// <summary>The most chunks <see cref="For{TBody}"/> cuts one thread's share into (default 6, the smallest then
    /// 1/32 of the share); 1 keeps one chunk per thread, as before shares were cut (tests compare the two).</summary>
    internal static int MaxChunksPerShare { get; set; } = 6;

    /// <summary>Runs <paramref name="body"/>(start, end) over [0, <paramref name="count"/>) on up to
    /// <see cref="ThreadCount"/> threads (see <see cref="For{TBody}"/>); runs inline when there is too little work to
    /// share or when called from inside another parallel loop. An exception thrown by a chunk is rethrown here once
    /// every chunk has ended (that of the first failing chunk).</summary>
    internal static void For(int count, Action<int, int> body, long workPerItem = 1) =>
        For(count, new DelegateBody(body), workPerItem);

    /// <summary><see cref="For(int, Action{int, int}, long)"/> over a struct body, which allocates nothing. The items
    /// are cut into one contiguous share per thread (fewer when a share would hold under 32,768 units of
    /// <paramref name="workPerItem"/>), and, where the body <see cref="IChunkBody.TakesTurns"/>, a share with enough
    /// work into chunks that halve in size from its start to its end (<see cref="ChunkPlan"/>). Each thread runs its own share's chunks from the start, then takes the
    /// smallest chunks left at the ends of the others' shares: a thread that a slower core or another process holds
    /// up leaves the rest of its share to the others instead of holding up the loop, while each thread still works
    /// through one contiguous range of memory. Chunks are not cut finer than 131,072 units, so a loop of tens of
    /// microseconds keeps one chunk per thread.</summary>
    internal static void For<TBody>(int count, TBody body, long workPerItem = 1) where TBody : struct, IChunkBody
    {
        long perItem = Math.Max(workPerItem, 1);
        int shares = (int)Math.Min(Math.Min(ThreadCount, count), Math.Max(1, count * perItem / MinimumWorkPerThread));
        if (shares <= 1 || t_insideParallelLoop)
        {
            if (count > 0) body.Run(0, count);
            return;
        }
        shares = Math.Min(shares, ChunkPlan.MaxChunks);
        int perShare = TBody.TakesTurns ? ChunksPerShare(count / shares, perItem, ChunkPlan.MaxChunks / shares) : 1;
        WorkerPool.Run(body, ChunkPlan.Shared(count, shares, perShare), shares);
    }

    /// <summary>Chunks per share of <paramref name="shareLength"/> items: 1, or as many halvings as leave the last
    /// (smallest) chunk at least <see cref="MinimumWorkPerChunk"/> units, at most <see cref="MaxChunksPerShare"/>.</summary>
    private static int ChunksPerShare(int shareLength, long workPerItem, int limit)
    {
        int most = Math.Min(MaxChunksPerShare, limit), chunks = 1;
        while (chunks < most && (shareLength >> chunks) * workPerItem >= MinimumWorkPerChunk) chunks++;
        return chunks;
    }

    /// <summary>Runs <paramref name="body"/>(start, end) over [0, <paramref name="count"/>) cut into
    /// <paramref name="chunks"/> equal contiguous chunks, whatever the thread count; up to <see cref="ThreadCount"/>
    /// threads take them one at a time in order, so the threads work on neighbouring chunks at the same time (the
    /// GEMM's parts of one column sweep share its panels). With one thread, or inside another parallel loop, the chunks
    /// run in order on the calling thread. The chunks do not depend on the thread count or on timing; which thread runs
    /// which does.</summary>
    internal static void ForEachChunk<TBody>(int count, int chunks, TBody body) where TBody : struct, IChunkBody
    {
        chunks = Math.Min(Math.Min(chunks, count), ChunkPlan.MaxChunks);
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
        WorkerPool.Run(body, ChunkPlan.InOrder(count, chunks), threads);
    }

    /// <summary>Chunk <paramref name="chunk"/> of <paramref name="chunks"/> equal contiguous chunks of [0, count).</summary>
    internal static (int Start, int End) Chunk(int count, int chunks, int chunk) =>
        ((int)((long)count * chunk / chunks), (int)((long)count * (chunk + 1) / chunks));

    /// <summary>Runs one chunk of a parallel loop on the current thread, marked as inside it so that nested loops run
    /// inline.</summary>
    internal static void RunChunk<TBody>(ref TBody body, ChunkPlan plan, int chunk) where TBody : struct, IChunkBody
    {
        var (start, end) = plan.Bounds(chunk);
        bool outer = t_insideParallelLoop;
        t_insideParallelLoop = true;
        try { body.Run(start, end); }
        finally { t_insideParallelLoop = outer; }
    }

    private readonly struct DelegateBody(Action<int, int> body) : IChunkBody
    {
        public void Run(int start, int end) => body(start, end);

        public static bool TakesTurns => true;
    }
}

/// <summary>How a parallel loop's items [0, <see cref="Count"/>) are cut: into <see cref="Shares"/> equal contiguous
/// shares (<see cref="Parallelism.Chunk"/>), one per thread, each cut into <see cref="PerShare"/> chunks that halve in
/// size from the share's start (½, ¼, … of the share, the last chunk what remains), so that the chunks left over when
/// a thread falls behind are its smallest. With <see cref="TakenInOrder"/> the threads take all chunks from the first
/// on, one at a time, instead of each starting on its own share.</summary>
internal readonly record struct ChunkPlan(int Count, int Shares, int PerShare, bool TakenInOrder)
{
    /// <summary>The most chunks a loop is cut into (the claims hold chunk numbers in 16 bits).</summary>
    public const int MaxChunks = ushort.MaxValue;

    /// <summary>Shares, one per thread, each cut into <paramref name="perShare"/> halving chunks.</summary>
    public static ChunkPlan Shared(int count, int shares, int perShare) => new(count, shares, perShare, TakenInOrder: false);

    /// <summary><paramref name="chunks"/> equal chunks that the threads take in order.</summary>
    public static ChunkPlan InOrder(int count, int chunks) => new(count, chunks, 1, TakenInOrder: true);

    /// <summary>The number of chunks.</summary>
    public int Chunks => Shares * PerShare;

    /// <summary>Items [Start, End) of chunk <paramref name="chunk"/>; chunk s·PerShare + j is the j-th of share s.</summary>
    public (int Start, int End) Bounds(int chunk)
    {
        if (PerShare == 1) return Parallelism.Chunk(Count, Shares, chunk);
        int share = chunk / PerShare, j = chunk - share * PerShare;
        var (first, end) = Parallelism.Chunk(Count, Shares, share);
        int length = end - first;
        return (end - (length >> j), j == PerShare - 1 ? end : end - (length >> (j + 1)));
    }
}
