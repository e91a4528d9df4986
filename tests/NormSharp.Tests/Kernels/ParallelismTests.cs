using System.Collections.Concurrent;

namespace NormSharp.Tests.Kernels;

/// <summary>Parallelism.For on its worker threads: the chunks, who runs them, nesting, exceptions, concurrent
/// callers, and that a loop over a struct body allocates nothing.</summary>
[Collection("Parallelism")]
public class ParallelismTests
{
    // Enough work per item that every thread gets a chunk (32,768 units make a chunk worth a thread).
    private const long Plenty = 1 << 20;

    [Theory]
    [InlineData(2, 10, new[] { 0, 5, 10 })]
    [InlineData(3, 10, new[] { 0, 3, 6, 10 })]
    [InlineData(4, 7, new[] { 0, 1, 3, 5, 7 })]
    [InlineData(5, 3, new[] { 0, 1, 2, 3 })] // more threads than items: one item each
    public void Chunks_are_the_contiguous_ranges_count_times_i_over_chunks(int threads, int count, int[] bounds)
    {
        var chunks = WithThreads(threads, () =>
        {
            var seen = new ConcurrentBag<(int Start, int End)>();
            Parallelism.For(count, (start, end) => seen.Add((start, end)), Plenty);
            return seen;
        });
        var expected = bounds.Zip(bounds.Skip(1)).Select(b => (b.First, b.Second));
        Assert.Equal(expected, chunks.OrderBy(c => c.Start));
    }

    [Fact]
    public void Too_little_work_runs_as_one_chunk_on_the_calling_thread()
    {
        var calls = WithThreads(4, () =>
        {
            var seen = new ConcurrentBag<(int Start, int End, int Thread)>();
            Parallelism.For(100, (start, end) => seen.Add((start, end, Environment.CurrentManagedThreadId)), workPerItem: 1);
            return seen;
        });
        Assert.Equal(new[] { (0, 100, Environment.CurrentManagedThreadId) }, calls);
    }

    [Fact]
    public void The_calling_thread_runs_the_first_chunk()
    {
        var calls = WithThreads(3, () =>
        {
            var seen = new ConcurrentBag<(int Start, int Thread)>();
            Parallelism.For(9, (start, _) => seen.Add((start, Environment.CurrentManagedThreadId)), Plenty);
            return seen;
        }).OrderBy(c => c.Start).ToArray();
        Assert.Equal(new[] { 0, 3, 6 }, calls.Select(c => c.Start));
        Assert.Equal(Environment.CurrentManagedThreadId, calls[0].Thread);
    }

    [Fact]
    public void The_chunks_run_at_the_same_time_on_as_many_threads()
    {
        // Each chunk waits for the two others: this ends only if the three run at once on three threads.
        using var allThree = new Barrier(3);
        var met = new ConcurrentBag<(bool Met, int Thread)>();
        WithThreads(3, () =>
        {
            Parallelism.For(3, (_, _) => met.Add((allThree.SignalAndWait(TimeSpan.FromSeconds(30)), Environment.CurrentManagedThreadId)), Plenty);
            return 0;
        });
        Assert.All(met, m => Assert.True(m.Met));
        Assert.Equal(3, met.Select(m => m.Thread).Distinct().Count());
    }

    [Fact]
    public void A_loop_inside_a_chunk_runs_inline_on_that_chunk_s_thread()
    {
        var inner = WithThreads(2, () =>
        {
            var seen = new ConcurrentBag<(int OuterThread, int Start, int End, int Thread)>();
            Parallelism.For(2, (_, _) =>
            {
                int outerThread = Environment.CurrentManagedThreadId;
                Parallelism.For(8, (start, end) => seen.Add((outerThread, start, end, Environment.CurrentManagedThreadId)), Plenty);
            }, Plenty);
            return seen;
        });
        Assert.Equal(2, inner.Count);
        Assert.All(inner, call =>
        {
            Assert.Equal((0, 8), (call.Start, call.End));
            Assert.Equal(call.OuterThread, call.Thread);
        });
    }

    [Fact]
    public void An_exception_in_another_chunk_reaches_the_caller_after_every_chunk_ends()
    {
        int finished = 0;
        var error = WithThreads(3, () => Assert.Throws<InvalidOperationException>(() => Parallelism.For(3, (start, _) =>
        {
            if (start == 2) throw new InvalidOperationException($"chunk {start} failed");
            Thread.Sleep(20);
            Interlocked.Increment(ref finished);
        }, Plenty)));
        Assert.Equal("chunk 2 failed", error.Message);
        Assert.Equal(2, finished);
    }

    [Fact]
    public void An_exception_in_the_calling_thread_s_chunk_waits_for_the_workers_and_they_keep_working()
    {
        int finished = 0, sum = 0;
        WithThreads(2, () =>
        {
            var error = Assert.Throws<ArgumentException>(() => Parallelism.For(2, (start, _) =>
            {
                if (start == 0) throw new ArgumentException("first chunk failed");
                Thread.Sleep(20);
                Interlocked.Increment(ref finished);
            }, Plenty));
            Assert.Equal("first chunk failed", error.Message);
            Assert.Equal(1, finished);
            Parallelism.For(10, (start, end) => Interlocked.Add(ref sum, end - start), Plenty);
            return 0;
        });
        Assert.Equal(10, sum);
    }

    [Fact]
    public void Loops_started_from_two_threads_at_once_each_cover_every_item_once()
    {
        const int loops = 200, count = 64;
        int wrongLoops = 0;
        WithThreads(2, () =>
        {
            var callers = Enumerable.Range(0, 2).Select(_ => new Thread(() =>
            {
                for (int i = 0; i < loops; i++)
                {
                    var hits = new int[count];
                    Parallelism.For(count, (start, end) =>
                    {
                        for (int item = start; item < end; item++) hits[item]++;
                    }, Plenty);
                    if (hits.Any(h => h != 1)) Interlocked.Increment(ref wrongLoops);
                }
            })).ToArray();
            foreach (Thread t in callers) t.Start();
            foreach (Thread t in callers) t.Join();
            return 0;
        });
        Assert.Equal(0, wrongLoops);
    }

    [Fact]
    public void A_loop_over_a_struct_body_allocates_nothing_on_any_thread()
    {
        const int loops = 1000;
        long[] sums = new long[2];
        var body = new SumBody(sums);
        long[] allocated = WithThreads(2, () =>
        {
            for (int i = 0; i < 10; i++) Parallelism.For(1000, body, Plenty);
            return Enumerable.Range(0, 5).Select(_ =>
            {
                long before = GC.GetTotalAllocatedBytes(precise: true);
                for (int i = 0; i < loops; i++) Parallelism.For(1000, body, Plenty);
                return GC.GetTotalAllocatedBytes(precise: true) - before;
            }).ToArray();
        });
        long runs = 10 + 5 * loops;
        Assert.Equal(new long[] { 500 * 499 / 2 * runs, (1000 * 999 - 500 * 499) / 2 * runs }, sums);
        // The count covers the test host's threads too, which can only add: the least of five batches is the loops'
        // own. One allocation per loop would be at least 24 bytes.
        Assert.True(allocated.Min() < loops * 8L, $"bytes allocated by {loops} loops: {string.Join(", ", allocated)}");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void ForEachChunk_cuts_the_same_chunks_whatever_the_thread_count(int threads)
    {
        var chunks = WithThreads(threads, () =>
        {
            var seen = new ConcurrentBag<(int Start, int End)>();
            Parallelism.ForEachChunk(10, 4, new ActionBody((start, end) => seen.Add((start, end))));
            return seen;
        });
        Assert.Equal(new[] { (0, 2), (2, 5), (5, 7), (7, 10) }, chunks.OrderBy(c => c.Start));
    }

    [Fact]
    public void ForEachChunk_on_one_thread_runs_the_chunks_in_order_on_the_calling_thread()
    {
        var calls = WithThreads(1, () =>
        {
            var seen = new List<(int Start, int Thread)>();
            Parallelism.ForEachChunk(6, 3, new ActionBody((start, _) => seen.Add((start, Environment.CurrentManagedThreadId))));
            return seen;
        });
        Assert.Equal(new[] { (0, Environment.CurrentManagedThreadId), (2, Environment.CurrentManagedThreadId), (4, Environment.CurrentManagedThreadId) }, calls);
    }

    [Fact]
    public void ForEachChunk_shares_more_chunks_than_threads_among_the_threads()
    {
        // Each of the first two chunks waits for the other: this ends only if two threads run them at once.
        using var firstTwo = new Barrier(2);
        var calls = WithThreads(2, () =>
        {
            var seen = new ConcurrentBag<(int Start, int Thread)>();
            Parallelism.ForEachChunk(16, 16, new ActionBody((start, _) =>
            {
                if (start < 2) Assert.True(firstTwo.SignalAndWait(TimeSpan.FromSeconds(30)));
                seen.Add((start, Environment.CurrentManagedThreadId));
            }));
            return seen;
        });
        Assert.Equal(Enumerable.Range(0, 16), calls.Select(c => c.Start).Order());
        Assert.Equal(2, calls.Select(c => c.Thread).Distinct().Count());
    }

    [Fact]
    public void ForEachChunk_rethrows_the_exception_of_a_chunk_beyond_the_thread_count()
    {
        int finished = 0;
        var error = WithThreads(2, () => Assert.Throws<InvalidOperationException>(() => Parallelism.ForEachChunk(12, 12, new ActionBody((start, _) =>
        {
            if (start == 9) throw new InvalidOperationException($"chunk {start} failed");
            Interlocked.Increment(ref finished);
        }))));
        Assert.Equal("chunk 9 failed", error.Message);
        Assert.Equal(11, finished);
    }

    private readonly struct ActionBody(Action<int, int> body) : IChunkBody
    {
        public void Run(int start, int end) => body(start, end);
    }

    /// <summary>Adds the items of each chunk into its own slot (chunk = start / 500 for 1000 items on 2 threads).</summary>
    private readonly struct SumBody(long[] sums) : IChunkBody
    {
        public void Run(int start, int end)
        {
            for (int item = start; item < end; item++) sums[start / 500] += item;
        }
    }

    private static T WithThreads<T>(int threads, Func<T> run)
    {
        int saved = Parallelism.ThreadCount;
        Parallelism.ThreadCount = threads;
        try { return run(); }
        finally { Parallelism.ThreadCount = saved; }
    }
}
