using NormSharp.Nn;
using static NormSharp.Tests.Testing.NormalizationReference;

namespace NormSharp.Tests.Nn.Normalization;

/// <summary>BatchNorm1d on (N, C) where each strip of 256 columns fits the core's cache: on one thread, each strip's statistics (or
/// gradient sums) and its element-wise pass run together. Against float64 and against the two visits over the whole
/// matrix, which it must match bitwise.</summary>
[Collection("Parallelism")]
public class ColumnStripTests
{
    [Theory]
    [InlineData(256, 1024)] // four strips
    [InlineData(256, 1000)] // the last partial strip (232 columns) joined to the one before
    [InlineData(100, 300)]  // one strip group of 300 columns
    [InlineData(64, 7)]     // narrower than a vector: every element scalar
    public void BatchNorm1d_with_fused_strips_matches_float64(int rows, int columns)
    {
        var (x, values) = RandomFloat(21, mean: 50, std: 3, rows, columns);
        double[] gamma = Enumerable.Range(0, columns).Select(j => 0.5 + j % 5 * 0.25).ToArray(), beta = Enumerable.Range(0, columns).Select(j => j % 3 - 1.0).ToArray();
        Tensor dy = Tensor.Normal(new[] { rows, columns }, generator: new RandomGenerator(22));
        var (y, grads) = WithThreads(1, () => Run(x, Tensor.FromArray(gamma.Select(v => (float)v).ToArray()), Tensor.FromArray(beta.Select(v => (float)v).ToArray()), dy));
        Assert.True(MaxRelativeError(Normalize(values, BatchNormGroup(columns, 1), j => j % columns, gamma, beta, 1e-5), y.ToDoubleArray()) < 2e-6);
        // The same in float64, through the two visits over the whole matrix (a strip of float64 rows is twice as large).
        Tensor x64 = Tensor.FromArray(values, rows, columns);
        var (y64, grads64) = WithThreads(1, () => Run(x64, Tensor.FromArray(gamma, columns), Tensor.FromArray(beta, columns), Tensor.FromArray(dy.ToDoubleArray(), rows, columns)));
        for (int i = 0; i < grads.Length; i++)
            Assert.True(MaxRelativeError(grads64[i].ToDoubleArray(), grads[i].ToDoubleArray()) < 1e-4, $"gradient {i}");
    }

    [Theory]
    [InlineData(256, 300, 2)]  // one strip group: fused on 1 thread, not on 2
    [InlineData(256, 1024, 2)] // four strip groups: fused on 1 thread, not on 2
    [InlineData(256, 1000, 4)] // three strip groups: fused on 1 thread, not on 4
    public void Fused_strips_give_the_bits_of_the_two_visits_over_the_whole_matrix(int rows, int columns, int unfusedThreads)
    {
        var (x, _) = RandomFloat(23, mean: -7, std: 2, rows, columns);
        Tensor gamma = Tensor.Normal(new[] { columns }, mean: 1, generator: new RandomGenerator(24));
        Tensor beta = Tensor.Normal(new[] { columns }, generator: new RandomGenerator(25));
        Tensor dy = Tensor.Normal(new[] { rows, columns }, generator: new RandomGenerator(26));
        var (fusedY, fusedGrads) = WithThreads(1, () => Run(x, gamma, beta, dy));
        var (y, grads) = WithThreads(unfusedThreads, () => Run(x, gamma, beta, dy));
        Assert.Equal(fusedY.ToArray(), y.ToArray());
        for (int i = 0; i < grads.Length; i++) Assert.Equal(fusedGrads[i].ToArray(), grads[i].ToArray());
    }

    /// <summary>Training-mode BatchNorm's output and the gradients of Σ y·dy with respect to x, γ and β.</summary>
    private static (Tensor Y, Tensor[] Gradients) Run(Tensor x, Tensor gamma, Tensor beta, Tensor dy)
    {
        x = x.Detach();
        gamma = gamma.Detach();
        beta = beta.Detach();
        foreach (Tensor t in new[] { x, gamma, beta }) t.RequiresGrad = true;
        Tensor y = Functional.BatchNorm(x, null, null, gamma, beta, training: true);
        y.Backward(dy);
        return (y, new[] { x.Grad!, gamma.Grad!, beta.Grad! });
    }

    private static T WithThreads<T>(int threads, Func<T> run)
    {
        int saved = Parallelism.ThreadCount;
        Parallelism.ThreadCount = threads;
        try { return run(); }
        finally { Parallelism.ThreadCount = saved; }
    }
}
