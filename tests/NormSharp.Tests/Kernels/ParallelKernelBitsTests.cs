using NormSharp.Nn;

namespace NormSharp.Tests.Kernels;

/// <summary>Kernels whose loops are large enough that <see cref="Parallelism.For{TBody}"/> cuts each thread's share
/// into chunks that the threads take in turn: the results are bitwise those of one thread, of other thread counts, and
/// of one chunk per thread.</summary>
[Collection("Parallelism")]
public class ParallelKernelBitsTests
{
    [Fact]
    public void LayerNorm_forward_and_backward_give_the_same_bits_on_1_2_and_3_threads_and_with_one_chunk_per_thread() =>
        AssertSameBitsEverywhere(() =>
        {
            Tensor x = Tensor.Normal(new[] { 1024, 768 }, mean: 3, generator: new RandomGenerator(1));
            Tensor gamma = Tensor.Normal(new[] { 768 }, mean: 1, generator: new RandomGenerator(2));
            Tensor beta = Tensor.Normal(new[] { 768 }, generator: new RandomGenerator(3));
            return ForwardAndBackward(x, new[] { gamma, beta }, x => Functional.LayerNorm(x, new[] { 768 }, gamma, beta));
        });

    [Fact]
    public void RmsNorm_forward_and_backward_give_the_same_bits_on_1_2_and_3_threads_and_with_one_chunk_per_thread() =>
        AssertSameBitsEverywhere(() =>
        {
            Tensor x = Tensor.Normal(new[] { 2000, 513 }, generator: new RandomGenerator(4));
            Tensor gamma = Tensor.Normal(new[] { 513 }, mean: 1, generator: new RandomGenerator(5));
            return ForwardAndBackward(x, new[] { gamma }, x => Functional.RmsNorm(x, new[] { 513 }, gamma));
        });

    [Theory]
    [InlineData(32, 64, 28, 28)] // BatchNorm2d: the batch path
    [InlineData(1024, 1000)]     // BatchNorm1d: the column path
    public void BatchNorm_training_forward_and_backward_give_the_same_bits_on_1_2_and_3_threads_and_with_one_chunk_per_thread(params int[] shape) =>
        AssertSameBitsEverywhere(() =>
        {
            Tensor x = Tensor.Normal(shape, mean: 2, generator: new RandomGenerator(6));
            Tensor gamma = Tensor.Normal(new[] { shape[1] }, mean: 1, generator: new RandomGenerator(7));
            Tensor beta = Tensor.Normal(new[] { shape[1] }, generator: new RandomGenerator(8));
            return ForwardAndBackward(x, new[] { gamma, beta }, x => Functional.BatchNorm(x, null, null, gamma, beta, training: true));
        });

    [Fact]
    public void Sigmoid_and_ReLU_give_the_same_bits_on_1_2_and_3_threads_and_with_one_chunk_per_thread() =>
        AssertSameBitsEverywhere(() =>
        {
            Tensor x = Tensor.Normal(new[] { (1 << 20) + 7 }, std: 4, generator: new RandomGenerator(12));
            return ForwardAndBackward(x, [], x => Functional.Sigmoid(Functional.Relu(x) - 1));
        });

    /// <summary>y = f(x) and the gradients of Σ y·w (w fixed) with respect to x and the parameters, as floats.</summary>
    private static float[][] ForwardAndBackward(Tensor x, Tensor[] parameters, Func<Tensor, Tensor> f)
    {
        foreach (Tensor t in parameters.Append(x)) t.RequiresGrad = true;
        Tensor y = f(x);
        y.Backward(Tensor.Normal(y.Dims, generator: new RandomGenerator(99)));
        return new[] { y.ToArray(), x.Grad!.ToArray() }.Concat(parameters.Select(p => p.Grad!.ToArray())).ToArray();
    }

    private static void AssertSameBitsEverywhere(Func<float[][]> run)
    {
        float[][] oneThread = WithThreads(1, 6, run);
        foreach (var (threads, perShare) in new[] { (2, 6), (3, 6), (2, 1), (3, 1) })
        {
            float[][] other = WithThreads(threads, perShare, run);
            Assert.Equal(oneThread.Length, other.Length);
            for (int i = 0; i < oneThread.Length; i++)
                Assert.True(oneThread[i].AsSpan().SequenceEqual(other[i]), $"result {i} differs on {threads} threads with at most {perShare} chunks per share");
        }
    }

    private static T WithThreads<T>(int threads, int chunksPerShare, Func<T> run)
    {
        int savedThreads = Parallelism.ThreadCount, savedChunks = Parallelism.MaxChunksPerShare;
        Parallelism.ThreadCount = threads;
        Parallelism.MaxChunksPerShare = chunksPerShare;
        try { return run(); }
        finally
        {
            Parallelism.ThreadCount = savedThreads;
            Parallelism.MaxChunksPerShare = savedChunks;
        }
    }
}
