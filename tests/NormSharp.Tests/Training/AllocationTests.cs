using System.Diagnostics.Tracing;
using NormSharp.Keras;
using NormSharp.Nn;
using NormSharp.Optim;

namespace NormSharp.Tests.Training;

/// <summary>A training step inside a <see cref="TensorScope"/> reuses pooled buffers: in steady state it allocates
/// no large objects, only small bookkeeping.</summary>
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
        for (int i = 0; i < 3; i++) Step();

        using var listener = new LargeAllocationListener();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 5; i++) Step();
        long perStep = (GC.GetAllocatedBytesForCurrentThread() - before) / 5;

        Assert.Empty(listener.LargeTypes);
        // The activations alone are ~9 MB a step; what is allocated is small bookkeeping (closures, graph nodes).
        Assert.True(perStep < 1_000_000, $"{perStep} bytes allocated per step on the training thread");
    }

    private sealed class LargeAllocationListener : EventListener
    {
        public System.Collections.Concurrent.ConcurrentBag<string> LargeTypes { get; } = new();

        protected override void OnEventSourceCreated(EventSource source)
        {
            if (source.Name == "Microsoft-Windows-DotNETRuntime") EnableEvents(source, EventLevel.Verbose, (EventKeywords)0x1); // GC keyword
        }

        protected override void OnEventWritten(EventWrittenEventArgs e)
        {
            if (!e.EventName!.StartsWith("GCAllocationTick", StringComparison.Ordinal) || e.Payload is null) return;
            int kind = Convert.ToInt32(e.Payload[e.PayloadNames!.IndexOf("AllocationKind")]); // 1 = large object heap
            if (kind == 1) LargeTypes.Add(e.Payload[e.PayloadNames.IndexOf("TypeName")]?.ToString() ?? "?");
        }
    }
}
