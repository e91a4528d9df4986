using System.Diagnostics.Tracing;
using NormSharp.Keras;
using NormSharp.Nn;
using NormSharp.Optim;

namespace NormSharp.Tests.Training;

/// <summary>A training step inside a <see cref="TensorScope"/> reuses pooled buffers: in steady state it allocates
/// no large objects, only small bookkeeping. The step runs on one thread so that allocations can be attributed to it
/// (other test classes may be allocating in the same process at the same time).</summary>
[Collection("Parallelism")]
public class AllocationTests
{
    [Fact]
    public void Steady_state_training_step_allocates_no_large_arrays()
    {
        var model = SeedModels.Cnn(generator: new RandomGenerator(1));
        var optimizer = new Adam(model.Network.Parameters());
        var x = Tensor.Normal(new[] { 32, 1, 28, 28 }, generator: new RandomGenerator(2));
        int[] y = Enumerable.Range(0, 32).Select(i => i % 10).ToArray();
        var network = (NormSharp.Nn.Sequential)model.Network;
        void Step()
        {
            using var scope = TensorScope.Begin();
            optimizer.ZeroGrad();
            Tensor h = x;
            for (int i = 0; i < network.Count - 1; i++) h = network[i].Forward(h);
            Functional.CrossEntropy(h, y).Backward();
            optimizer.Step();
        }
        int threads = Parallelism.ThreadCount;
        Parallelism.ThreadCount = 1;
        long perStep;
        using var listener = new LargeAllocationListener();
        try
        {
            for (int i = 0; i < 3; i++) Step();
            ThreadMarker.Log.Here(); // tells the listener which OS thread is ours
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 5; i++) Step();
            perStep = (GC.GetAllocatedBytesForCurrentThread() - before) / 5;
            ThreadMarker.Log.Here();
        }
        finally { Parallelism.ThreadCount = threads; }

        Assert.Empty(listener.LargeTypes);
        // The activations alone are ~9 MB a step; what is allocated is small bookkeeping (closures, graph nodes).
        Assert.True(perStep < 1_000_000, $"{perStep} bytes allocated per step on the training thread");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Steady_state_seed_cnn_step_allocates_under_64_KiB_on_all_threads(int threads)
    {
        // The benchmark's step: batch 128, Adam, Model.TrainOnBatch.
        var model = SeedModels.Cnn(generator: new RandomGenerator(1));
        model.Compile(new Adam(model.Network.Parameters()), "sparse_categorical_crossentropy");
        var x = Tensor.Normal(new[] { 128, 1, 28, 28 }, generator: new RandomGenerator(2));
        int[] y = Enumerable.Range(0, 128).Select(i => i * 7 % 10).ToArray();
        model.Network.Train();
        int saved = Parallelism.ThreadCount;
        Parallelism.ThreadCount = threads;
        long[] steps = new long[5];
        try
        {
            for (int i = 0; i < 2; i++) model.TrainOnBatch(x, y);
            for (int i = 0; i < steps.Length; i++)
            {
                long before = GC.GetTotalAllocatedBytes(precise: true);
                model.TrainOnBatch(x, y);
                steps[i] = GC.GetTotalAllocatedBytes(precise: true) - before;
            }
        }
        finally { Parallelism.ThreadCount = saved; }
        // The count covers every thread in the process, the test host's too (it reports finished tests meanwhile),
        // which can only add: the least of five identical steps is the step's own.
        Assert.True(steps.Min() < 64 * 1024, $"bytes allocated per step over all threads at {threads} thread(s): {string.Join(", ", steps)}");
    }

    [EventSource(Name = "NormSharp-Tests-ThreadMarker")]
    private sealed class ThreadMarker : EventSource
    {
        public static readonly ThreadMarker Log = new();

        [Event(1)]
        public void Here() => WriteEvent(1);
    }

    /// <summary>Collects large-object allocations made on the thread that emitted the first marker event, until the
    /// second one.</summary>
    private sealed class LargeAllocationListener : EventListener
    {
        private long _thread = -1;
        private int _markers;

        public System.Collections.Concurrent.ConcurrentBag<string> LargeTypes { get; } = new();

        protected override void OnEventSourceCreated(EventSource source)
        {
            if (source.Name == "Microsoft-Windows-DotNETRuntime") EnableEvents(source, EventLevel.Verbose, (EventKeywords)0x1); // GC keyword
            else if (source.Name == "NormSharp-Tests-ThreadMarker") EnableEvents(source, EventLevel.Informational);
        }

        protected override void OnEventWritten(EventWrittenEventArgs e)
        {
            if (e.EventSource.Name == "NormSharp-Tests-ThreadMarker")
            {
                _thread = e.OSThreadId;
                _markers++;
                return;
            }
            if (_markers != 1 || e.OSThreadId != _thread) return;
            if (!e.EventName!.StartsWith("GCAllocationTick", StringComparison.Ordinal) || e.Payload is null) return;
            int kind = Convert.ToInt32(e.Payload[e.PayloadNames!.IndexOf("AllocationKind")]); // 1 = large object heap
            if (kind == 1) LargeTypes.Add(e.Payload[e.PayloadNames.IndexOf("TypeName")]?.ToString() ?? "?");
        }
    }
}
