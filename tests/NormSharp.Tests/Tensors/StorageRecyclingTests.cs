using NormSharp.Nn;
using NormSharp.Optim;

namespace NormSharp.Tests.Tensors;

/// <summary>
/// Plain loops (no <see cref="TensorScope"/>, no Dispose) recycle the arrays of tensors that became unreachable
/// (<see cref="StorageLease"/>), and a tensor the user still holds never sees its data change. The tensors here are
/// large enough to be leased (at least <see cref="StoragePool.LeasedMinimumBytes"/>), and collections are forced
/// between steps so that recycling really happens while the held tensors are checked.
/// </summary>
[Collection("Parallelism")]
public class StorageRecyclingTests
{
    private static Sequential SmallCnn(int seed)
    {
        var g = new RandomGenerator((ulong)seed);
        return new Sequential(
            new Conv2d(1, 8, 3, padding: 1, generator: g), new BatchNorm2d(8), new ReLU(), new MaxPool2d(2),
            new Flatten(), new Linear(8 * 14 * 14, 10, generator: g));
    }

    private static Tensor Images(int seed) => Tensor.Normal(new[] { 16, 1, 28, 28 }, generator: new RandomGenerator((ulong)seed));

    private static readonly int[] Labels = Enumerable.Range(0, 16).Select(i => i * 3 % 10).ToArray();

    /// <summary>Declares a safe point for the test thread (it holds no span here), collects and recycles.</summary>
    private static void Collect()
    {
        StorageGuard.SafePoint();
        GC.Collect(1, GCCollectionMode.Forced, blocking: true);
        StorageLease.ReturnCollected();
    }

    [Fact]
    public void Held_activation_view_closure_capture_and_loss_keep_their_values_over_later_plain_steps()
    {
        Sequential model = SmallCnn(1);
        var optimizer = new Adam(model.Parameters());
        Tensor activation = null!, loss = null!;
        Func<Tensor> captured = null!;
        for (int step = 0; step < 40; step++)
        {
            optimizer.ZeroGrad();
            Tensor h = Images(100 + step);
            Tensor conv = model[0].Forward(h);
            for (int i = 1; i < model.Count; i++) h = model[i].Forward(i == 1 ? conv : h);
            Tensor stepLoss = Functional.CrossEntropy(h, Labels);
            stepLoss.Backward();
            optimizer.Step();
            if (step == 3)
            {
                activation = conv;
                captured = () => conv;
                loss = stepLoss;
            }
            Collect();
        }
        // The held tensors were made at step 3; recompute them from that step's inputs with a fresh model trained the
        // same way for three steps.
        Sequential reference = SmallCnn(1);
        var referenceOptimizer = new Adam(reference.Parameters());
        Tensor expectedConv = null!, expectedLoss = null!;
        for (int step = 0; step <= 3; step++)
        {
            using var scope = TensorScope.Begin();
            referenceOptimizer.ZeroGrad();
            Tensor conv = reference[0].Forward(Images(100 + step));
            Tensor h = conv;
            for (int i = 1; i < reference.Count; i++) h = reference[i].Forward(h);
            Tensor stepLoss = Functional.CrossEntropy(h, Labels);
            stepLoss.Backward();
            referenceOptimizer.Step();
            if (step == 3) (expectedConv, expectedLoss) = (scope.Keep(conv), scope.Keep(stepLoss));
        }
        Assert.Equal(expectedConv.ToArray(), activation.ToArray());
        Assert.Equal(expectedConv.Narrow(0, 5, 3).ToArray(), activation.Narrow(0, 5, 3).ToArray());
        Assert.Equal(expectedConv.ToArray(), captured().ToArray());
        Assert.Equal(expectedLoss.Item(), loss.Item());
    }

    [Fact]
    public void Plain_loop_trains_bit_identically_to_the_scoped_loop()
    {
        float[][] Train(bool scoped)
        {
            Sequential model = SmallCnn(7);
            var optimizer = new Adam(model.Parameters());
            for (int step = 0; step < 12; step++)
            {
                using TensorScope? scope = scoped ? TensorScope.Begin() : null;
                optimizer.ZeroGrad();
                Functional.CrossEntropy(model.Forward(Images(step)), Labels).Backward();
                optimizer.Step();
                if (step % 3 == 0) Collect();
            }
            return model.Parameters().Select(p => p.ToArray()).ToArray();
        }
        Assert.Equal(Train(scoped: true), Train(scoped: false));
    }

    [Fact]
    public void View_of_an_unreachable_tensor_keeps_the_shared_buffer()
    {
        Tensor view = MakeView();
        for (int i = 0; i < 20; i++)
        {
            Collect();
            _ = Tensor.Full(new[] { 64, 1024 }, -1.0) + Tensor.Full(new[] { 64, 1024 }, -2.0);
        }
        Assert.All(view.ToArray(), v => Assert.Equal(5f, v));

        static Tensor MakeView() => Tensor.Full(new[] { 64, 1024 }, 5.0).Reshape(1024, 64).Narrow(0, 10, 100);
    }

    [Fact]
    public void Array_of_an_unreachable_tensor_is_rented_again_after_a_collection()
    {
        // An odd size class that no other test uses.
        int[] shape = { 7, 5923 };
        float[] array = Abandon(shape);
        Collect();
        Tensor next = Tensor.Zeros(shape);
        Assert.Same(array, next.Storage.Float);

        static float[] Abandon(int[] shape) => Tensor.Ones(shape).Storage.Float!;
    }

    [Fact]
    public void Disposing_the_last_tensor_of_a_buffer_returns_it_at_once_but_not_while_a_view_shares_it()
    {
        int[] shape = { 3, 7919 };
        Tensor t = Tensor.Full(shape, 4.0);
        Tensor view = t.Reshape(7919, 3);
        float[] array = t.Storage.Float!;
        t.Dispose();
        Tensor other = Tensor.Full(shape, 9.0);
        Assert.NotSame(array, other.Storage.Float);
        Assert.All(view.ToArray(), v => Assert.Equal(4f, v));
        view.Dispose();
        Assert.Same(array, Tensor.Zeros(shape).Storage.Float);
    }

    [Fact]
    public void Backward_leaves_the_callers_output_gradient_intact_and_usable()
    {
        var x = Tensor.Normal(new[] { 32, 1024 }, generator: new RandomGenerator(3));
        x.RequiresGrad = true;
        var dy = Tensor.Normal(new[] { 32, 1024 }, generator: new RandomGenerator(4));
        float[] before = dy.ToArray();
        for (int i = 0; i < 5; i++)
        {
            (x.Reshape(1024, 32) * 2.0).Reshape(32, 1024).Backward(dy);
            Collect();
        }
        Assert.Equal(before, dy.ToArray());
        float[] expected = new float[before.Length];
        for (int i = 0; i < 5; i++)
            for (int k = 0; k < expected.Length; k++) expected[k] += 2 * before[k];
        Assert.Equal(expected, x.Grad!.ToArray());
    }

    [Fact]
    public void Retained_graph_gives_the_same_gradients_on_every_backward_in_a_plain_loop()
    {
        Sequential model = SmallCnn(2);
        Tensor loss = Functional.CrossEntropy(model.Forward(Images(5)), Labels);
        loss.Backward(retainGraph: true);
        float[][] first = model.Parameters().Select(p => p.Grad!.ToArray()).ToArray();
        for (int i = 0; i < 3; i++)
        {
            Collect();
            foreach (Tensor p in model.Parameters()) p.Grad = null;
            for (int j = 0; j < 8; j++) Functional.CrossEntropy(model.Forward(Images(50 + j)), Labels);
            loss.Backward(retainGraph: i < 2);
            Assert.Equal(first, model.Parameters().Select(p => p.Grad!.ToArray()).ToArray());
        }
        Assert.Throws<InvalidOperationException>(() => loss.Backward());
    }

    [Fact]
    public void No_grad_inference_on_two_threads_under_forced_collections_never_sees_a_recycled_input()
    {
        // The hazard the guard exists for: an input whose last use is the start of an operation, with no graph to keep
        // it, while collections run all the time; a recycled input would make the output read another tensor's data.
        bool stop = false;
        var collector = new Thread(() =>
        {
            while (!Volatile.Read(ref stop))
            {
                GC.Collect(1, GCCollectionMode.Forced, blocking: true);
                StorageLease.ReturnCollected();
                Thread.Yield();
            }
        });
        collector.Start();
        void Infer(int offset)
        {
            using var noGrad = Tensor.NoGrad();
            // Buffers of 4 MiB keep each kernel running long enough for collections and the other thread's
            // allocations to happen while it reads.
            for (int i = 0; i < 40; i++)
            {
                double value = offset + i;
                float[] y = Functional.Relu(Tensor.Full(new[] { 1024, 1024 }, value) * 2.0 - Tensor.Full(new[] { 1024, 1024 }, value)).ToArray();
                int wrong = Array.FindIndex(y, v => v != (float)value);
                Assert.True(wrong < 0, $"element {wrong} is {(wrong < 0 ? 0 : y[wrong])}, expected {value}: an input was recycled while read");
            }
        }
        try { Parallel.Invoke(() => Infer(1), () => Infer(100_000)); }
        finally
        {
            Volatile.Write(ref stop, true);
            collector.Join();
        }
    }

    [Fact]
    public void Two_threads_training_two_models_in_plain_loops_match_each_model_trained_alone()
    {
        float[][] Train(int seed)
        {
            Sequential model = SmallCnn(seed);
            var optimizer = new Adam(model.Parameters());
            for (int step = 0; step < 10; step++)
            {
                optimizer.ZeroGrad();
                Functional.CrossEntropy(model.Forward(Images(seed * 100 + step)), Labels).Backward();
                optimizer.Step();
                if (step % 2 == 0) Collect();
            }
            return model.Parameters().Select(p => p.ToArray()).ToArray();
        }
        float[][] aloneA = Train(11), aloneB = Train(12);
        float[][] togetherA = null!, togetherB = null!;
        Parallel.Invoke(() => togetherA = Train(11), () => togetherB = Train(12));
        Assert.Equal(aloneA, togetherA);
        Assert.Equal(aloneB, togetherB);
    }

    [Fact]
    public void A_thread_without_safe_points_stops_holding_storages_at_the_bound()
    {
        var a = Tensor.Full(new[] { 16, 1024 }, 1.0);
        for (int i = 0; i < 5000; i++) a = a + 1.0;
        Assert.InRange(StorageGuard.HeldCount, 1, 4096);
        Assert.Equal(5001f, a.ToArray()[0]);
    }

    [Fact]
    public void Pooled_tensors_start_on_a_cache_line_and_keep_their_values()
    {
        var shapes = new[] { new[] { 8193 }, new[] { 3, 5000 }, new[] { 64, 1001 } };
        for (int round = 0; round < 3; round++)
            foreach (DType dtype in new[] { DType.Float32, DType.Float64 })
                foreach (int[] shape in shapes)
                {
                    using var scope = TensorScope.Begin();
                    Tensor scoped = Tensor.Allocate(dtype, shape);
                    Tensor leased = Tensor.Allocate(dtype, shape, scoped: false);
                    foreach (Tensor t in new[] { scoped, leased })
                    {
                        Assert.Equal(0, FirstElementAddress(t) % 64);
                        Assert.All(t.ToDoubleArray(), v => Assert.Equal(0.0, v));
                    }
                    Tensor ramp = Tensor.FromArray(Enumerable.Range(0, scoped.Length).Select(i => (double)i).ToArray(), shape).To(dtype);
                    scoped.CopyFrom(ramp);
                    Assert.Equal(ramp.ToDoubleArray(), scoped.ToDoubleArray());
                }
    }

    private static unsafe long FirstElementAddress(Tensor t)
    {
        if (t.DType == DType.Float32) fixed (float* first = t.Span<float>()) return (long)first;
        fixed (double* first = t.Span<double>()) return (long)first;
    }
}
