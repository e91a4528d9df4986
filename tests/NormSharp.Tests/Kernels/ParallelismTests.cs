using System.Collections.Concurrent;

namespace NormSharp.Tests.Kernels;

/// <summary>Parallelism.For on its worker threads: the chunks, who runs them, nesting, exceptions, concurrent
/// callers, and that a loop over a struct body allocates nothing.</summary>
[Collection("Parallelism")]
public class ParallelismTests
{
    // Enough work per item that every thread gets a share (32,768 units make a share worth a thread).
    private const long Plenty = 1 << 20;

    // Enough for a share per thread in the loops of up to ten items below, too little to cut a share of up to five
    // items into chunks (131,072 units the least chunk): one chunk per thread.
    private const long OneChunkEach = 40_000;

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
            Parallelism.For(count, (start, end) => seen.Add((start, end)), OneChunkEach);
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
            Parallelism.For(9, (start, _) => seen.Add((start, Environment.CurrentManagedThreadId)), OneChunkEach);
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
            Parallelism.For(3, (_, _) => met.Add((allThree.SignalAndWait(TimeSpan.FromSeconds(30)), Environment.CurrentManagedThreadId)), OneChunkEach);
            return 0;
        });
        Assert.All(met, m => Assert.True(m.Met));
        Assert.Equal(3, met.Select(m => m.Thread).Distinct().Count());
    }

    [Theory]
    [InlineData(2, 2)]     // one chunk per thread
    [InlineData(1024, 12)] // each thread's share cut into 6 chunks
    public void A_loop_inside_a_chunk_runs_inline_on_that_chunk_s_thread(int outerCount, int outerChunks)
    {
        var inner = WithThreads(2, () =>
        {
            var seen = new ConcurrentBag<(int OuterThread, int Start, int End, int Thread)>();
            Parallelism.For(outerCount, (_, _) =>
            {
                int outerThread = Environment.CurrentManagedThreadId;
                Parallelism.For(8, (start, end) => seen.Add((outerThread, start, end, Environment.CurrentManagedThreadId)), Plenty);
            }, Plenty);
            return seen;
        });
        Assert.Equal(outerChunks, inner.Count);
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
    public void A_loop_over_a_struct_body_allocates_nothing_on_any_thread_even_with_its_shares_cut_into_chunks()
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

    [Fact]
    public void A_share_with_enough_work_is_cut_into_chunks_that_halve_toward_its_end()
    {
        var chunks = WithThreads(2, () =>
        {
            var seen = new ConcurrentBag<(int Start, int End)>();
            Parallelism.For(1024, (start, end) => seen.Add((start, end)), Plenty);
            return seen;
        });
        // Two shares of 512 items, each cut into 6 chunks (the most): 256, 128, 64, 32, 16 and the 16 left.
        int[] bounds = { 0, 256, 384, 448, 480, 496, 512 };
        var expected = bounds.Zip(bounds.Skip(1)).SelectMany(b => new[] { (b.First, b.Second), (512 + b.First, 512 + b.Second) });
        Assert.Equal(expected.Order(), chunks.Order());
    }

    [Theory]
    [InlineData(1 << 16, 1, 2)]       // 32,768 units per share: one chunk each
    [InlineData(1 << 19, 1, 4)]       // 262,144 units per share: halved while the last chunk keeps 131,072 units
    [InlineData(1 << 20, 8, 12)]      // 4,194,304 units per share: the most, 6 chunks each (the last 131,072)
    [InlineData(1 << 17, 4, 4)]       // the same work as the second in fewer, larger items
    public void How_finely_a_share_is_cut_depends_on_its_work(int count, long workPerItem, int expectedChunks)
    {
        int chunks = WithThreads(2, () =>
        {
            int seen = 0;
            Parallelism.For(count, (_, _) => Interlocked.Increment(ref seen), workPerItem);
            return seen;
        });
        Assert.Equal(expectedChunks, chunks);
    }

    [Fact]
    public void The_rest_of_the_share_of_a_thread_held_up_in_a_chunk_is_run_by_the_others()
    {
        // The calling thread's first chunk waits until every other chunk has run: this ends only if the worker takes
        // the rest of the caller's share (from its end) as well as its own.
        using var othersDone = new CountdownEvent(11);
        int caller = Environment.CurrentManagedThreadId;
        var calls = WithThreads(2, () =>
        {
            var seen = new ConcurrentBag<(int Start, int Thread)>();
            Parallelism.For(1024, (start, _) =>
            {
                if (start == 0) Assert.True(othersDone.Wait(TimeSpan.FromSeconds(30)));
                else othersDone.Signal();
                seen.Add((start, Environment.CurrentManagedThreadId));
            }, Plenty);
            return seen;
        });
        Assert.Equal(12, calls.Count);
        Assert.Equal(caller, calls.Single(c => c.Start == 0).Thread);
        Assert.All(calls.Where(c => c.Start != 0), c => Assert.NotEqual(caller, c.Thread));
    }

    [Theory]
    [InlineData(1, 3072)] // inline: one chunk of all items
    [InlineData(2, 768)]  // item 2000 in the first chunk of the second share [1536, 3072)
    [InlineData(3, 32)]   // item 2000 in the fifth chunk of the second share [1024, 2048): [1984, 2016)
    public void An_exception_in_a_chunk_of_a_cut_share_reaches_the_caller_after_every_other_chunk_ends(int threads, int failedChunkLength)
    {
        int finished = 0;
        var error = WithThreads(threads, () => Assert.Throws<InvalidOperationException>(() => Parallelism.For(3072, (start, end) =>
        {
            if (start <= 2000 && 2000 < end) throw new InvalidOperationException("the chunk of item 2000 failed");
            Interlocked.Add(ref finished, end - start);
        }, Plenty)));
        Assert.Equal("the chunk of item 2000 failed", error.Message);
        Assert.Equal(3072 - failedChunkLength, finished);
    }

    [Fact]
    public void A_struct_body_that_does_not_take_turns_keeps_one_chunk_per_thread()
    {
        var chunks = WithThreads(2, () =>
        {
            var seen = new ConcurrentBag<(int Start, int End)>();
            Parallelism.For(1024, new ActionBody((start, end) => seen.Add((start, end))), Plenty);
            return seen;
        });
        Assert.Equal(new[] { (0, 512), (512, 1024) }, chunks.Order());
    }

    private readonly struct ActionBody(Action<int, int> body) : IChunkBody
    {
        public void Run(int start, int end) => body(start, end);
    }

    /// <summary>Adds the items of each chunk into its share's slot (share = start / 500 for 1000 items on 2 threads;
    /// either thread may run a chunk of either share).</summary>
    private readonly struct SumBody(long[] sums) : IChunkBody
    {
        public void Run(int start, int end)
        {
            long sum = 0;
            for (int item = start; item < end; item++) sum += item;
            Interlocked.Add(ref sums[start / 500], sum);
        }

        public static bool TakesTurns => true;
    }

    private static T WithThreads<T>(int threads, Func<T> run)
    {
        int saved = Parallelism.ThreadCount;
        Parallelism.ThreadCount = threads;
        try { return run(); }
        finally { Parallelism.ThreadCount = saved; }
    }
}
