namespace NormSharp;

/// <summary>
/// How many threads NormSharp's kernels use. Work is split into a fixed number of contiguous chunks that depends only
/// on the thread count, never on timing, so results are bit-reproducible for a given seed and thread count.
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
    /// from inside another parallel loop.</summary>
    internal static void For(int count, Action<int, int> body, long workPerItem = 1)
    {
        int threads = ThreadCount;
        const long minimumWorkPerThread = 32_768;
        int chunks = (int)Math.Min(Math.Min(threads, count), Math.Max(1, count * Math.Max(workPerItem, 1) / minimumWorkPerThread));
        if (chunks <= 1 || t_insideParallelLoop)
        {
            if (count > 0) body(0, count);
            return;
        }
        System.Threading.Tasks.Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = chunks }, chunk =>
        {
            long start = (long)count * chunk / chunks, end = (long)count * (chunk + 1) / chunks;
            bool outer = t_insideParallelLoop;
            t_insideParallelLoop = true;
            try { body((int)start, (int)end); }
            finally { t_insideParallelLoop = outer; }
        });
    }
}
