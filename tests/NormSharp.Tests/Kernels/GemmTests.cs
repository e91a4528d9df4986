using NormSharp.Kernels;

namespace NormSharp.Tests.Kernels;

/// <summary>One GEMM problem with row strides lda/ldb/ldc that may exceed the row lengths; the gaps hold NaN.</summary>
internal sealed class GemmProblem
{
    public readonly bool TransA, TransB;
    public readonly int M, N, K, Lda, Ldb, Ldc;
    public readonly float[] A, B, C;

    public GemmProblem(int m, int n, int k, bool transA, bool transB, int seed, int padding = 0)
    {
        (M, N, K, TransA, TransB) = (m, n, k, transA, transB);
        var random = new Random(seed);
        (A, Lda) = Stored(transA ? k : m, transA ? m : k, padding, random);
        (B, Ldb) = Stored(transB ? n : k, transB ? k : n, padding, random);
        (C, Ldc) = Stored(m, n, padding, random);
    }

    /// <summary>A rows × columns matrix with values in [-1, 1) and NaN in the <paramref name="padding"/> extra
    /// entries at the end of each row.</summary>
    private static (float[] Data, int Stride) Stored(int rows, int columns, int padding, Random random)
    {
        int stride = columns + padding;
        var data = new float[Math.Max(0, (rows - 1) * stride + columns)];
        for (int i = 0; i < data.Length; i++)
            data[i] = i % stride < columns ? random.NextSingle() * 2 - 1 : float.NaN;
        return (data, stride);
    }

    public float[] Run(bool accumulate, GemmKernelPath? path = null)
    {
        float[] c = (float[])C.Clone();
        if (path is { } p) Gemm.Multiply(p, TransA, TransB, M, N, K, A, Lda, B, Ldb, c, Ldc, accumulate);
        else Gemm.Multiply(TransA, TransB, M, N, K, A, Lda, B, Ldb, c, Ldc, accumulate);
        return c;
    }

    public float OpA(int i, int p) => TransA ? A[p * Lda + i] : A[i * Lda + p];
    public float OpB(int p, int j) => TransB ? B[j * Ldb + p] : B[p * Ldb + j];

    /// <summary>Asserts result[i, j] is op(A)·op(B) (+ C) to within float rounding: each of the two float sums being
    /// compared is within k·ε·Σ_p |op(A)[i,p]·op(B)[p,j]| of the exact value (Higham, "Accuracy and Stability of
    /// Numerical Algorithms", §3.1), so they differ by at most twice that.</summary>
    public void AssertClose(float expected, float actual, bool accumulate, int i, int j)
    {
        double magnitude = accumulate ? Math.Abs(C[i * Ldc + j]) : 0;
        for (int p = 0; p < K; p++) magnitude += Math.Abs((double)OpA(i, p) * OpB(p, j));
        double tolerance = 2 * (K + 1) * Math.Pow(2, -24) * magnitude;
        Assert.True(Math.Abs(expected - actual) <= tolerance, $"C[{i},{j}] of {M}×{N}×{K} (transA={TransA}, transB={TransB}, accumulate={accumulate}): expected {expected:G9}, got {actual:G9}, tolerance {tolerance:G3}");
    }

    /// <summary>The exact (float64) value of result[i, j].</summary>
    public double Exact(bool accumulate, int i, int j)
    {
        double sum = accumulate ? C[i * Ldc + j] : 0;
        for (int p = 0; p < K; p++) sum += (double)OpA(i, p) * OpB(p, j);
        return sum;
    }
}

public class GemmTests
{
    public static TheoryData<int, int, int, bool, bool, bool> AwkwardShapes()
    {
        var data = new TheoryData<int, int, int, bool, bool, bool>();
        // Tiny, prime, vector-and-matrix shapes, edges in every direction, the swapped (narrow C) path, several depth
        // blocks (k = 1300 > 512) and the seed CNN's Dense layers.
        int[][] shapes =
        {
            new[] { 1, 1, 1 }, new[] { 7, 13, 5 }, new[] { 33, 65, 129 }, new[] { 100, 1, 300 }, new[] { 1, 257, 64 },
            new[] { 300, 200, 517 }, new[] { 128, 10, 128 }, new[] { 10, 128, 128 }, new[] { 25, 47, 1300 },
            new[] { 128, 128, 1152 }, new[] { 13, 35, 2 },
        };
        foreach (int[] s in shapes)
            foreach (bool transA in new[] { false, true })
                foreach (bool transB in new[] { false, true })
                    foreach (bool accumulate in new[] { false, true })
                        data.Add(s[0], s[1], s[2], transA, transB, accumulate);
        return data;
    }

    [Theory]
    [MemberData(nameof(AwkwardShapes))]
    public void Multiply_matches_the_reference_loop(int m, int n, int k, bool transA, bool transB, bool accumulate)
    {
        var problem = new GemmProblem(m, n, k, transA, transB, seed: m * 1_000_003 + n * 1009 + k);
        float[] expected = (float[])problem.C.Clone();
        Gemm.Reference<float>(transA, transB, m, n, k, problem.A, problem.Lda, problem.B, problem.Ldb, expected, problem.Ldc, accumulate);
        float[] actual = problem.Run(accumulate);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                problem.AssertClose(expected[i * n + j], actual[i * n + j], accumulate, i, j);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void Padded_strides_are_honoured_and_the_gaps_are_neither_read_nor_written(bool transA, bool transB)
    {
        // NaN fills each row's gap in A, B and C: a read would poison the result, a write would replace the NaN.
        var problem = new GemmProblem(70, 45, 300, transA, transB, seed: 5, padding: 3);
        float[] expected = (float[])problem.C.Clone();
        Gemm.Reference<float>(transA, transB, 70, 45, 300, problem.A, problem.Lda, problem.B, problem.Ldb, expected, problem.Ldc, accumulate: true);
        float[] actual = problem.Run(accumulate: true);
        for (int i = 0; i < 70; i++)
        {
            for (int j = 0; j < 45; j++) problem.AssertClose(expected[i * problem.Ldc + j], actual[i * problem.Ldc + j], accumulate: true, i, j);
            for (int j = 45; j < problem.Ldc && i * problem.Ldc + j < actual.Length; j++)
                Assert.True(float.IsNaN(actual[i * problem.Ldc + j]), $"the gap after row {i} of C was written");
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Without_accumulate_C_is_overwritten_even_where_it_held_NaN(bool large)
    {
        int m = large ? 50 : 3, n = large ? 70 : 4, k = large ? 90 : 5;
        var problem = new GemmProblem(m, n, k, false, false, seed: 9);
        Array.Fill(problem.C, float.NaN);
        float[] actual = problem.Run(accumulate: false);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                Assert.Equal(problem.Exact(false, i, j), actual[i * n + j], 1e-4);
    }

    [Fact]
    public void Empty_depth_clears_C_or_leaves_it_when_accumulating()
    {
        float[] c = { 1, 2, 3, 4, 5, 6 };
        Gemm.Multiply(false, false, 2, 3, 0, ReadOnlySpan<float>.Empty, 0, ReadOnlySpan<float>.Empty, 3, c, 3, accumulate: true);
        Assert.Equal(new float[] { 1, 2, 3, 4, 5, 6 }, c);
        Gemm.Multiply(false, false, 2, 3, 0, ReadOnlySpan<float>.Empty, 0, ReadOnlySpan<float>.Empty, 3, c, 3, accumulate: false);
        Assert.Equal(new float[6], c);
    }

    [Fact]
    public void Hand_computed_product_with_both_operands_transposed()
    {
        // op(A) = Aᵀ with A = [[1, 2], [3, 4], [5, 6]] (3×2, so op(A) is 2×3); op(B) = Bᵀ with B = [[1, 0, 2], [0, 1, 1]].
        float[] a = { 1, 2, 3, 4, 5, 6 }, b = { 1, 0, 2, 0, 1, 1 }, c = new float[4];
        Gemm.Multiply(true, true, 2, 2, 3, a, 2, b, 3, c, 2, accumulate: false);
        // op(A) = [[1, 3, 5], [2, 4, 6]], op(B) = [[1, 0], [0, 1], [2, 1]].
        Assert.Equal(new float[] { 11, 8, 14, 10 }, c);
    }

    [Theory]
    [InlineData(400, 1000, 4300)] // k·n > 4M floats: the shared operand is packed and multiplied in several slabs
    [InlineData(200, 2048, 1400)] // threads own column panels; the rows of A (over 1 MiB packed) are shared
    [InlineData(4104, 160, 2048)] // the own operand (over 8 MiB per depth block) is packed in two slabs
    public void Large_problem_matches_exact_sums_at_sampled_elements(int m, int n, int k)
    {
        var problem = new GemmProblem(m, n, k, false, true, seed: 11);
        float[] actual = problem.Run(accumulate: true);
        var random = new Random(3);
        for (int sample = 0; sample < 300; sample++)
        {
            int i = random.Next(m), j = random.Next(n);
            problem.AssertClose((float)problem.Exact(true, i, j), actual[i * n + j], true, i, j);
        }
    }

    [Fact]
    public void All_kernel_paths_give_identical_bits()
    {
        foreach ((int m, int n, int k, bool ta, bool tb) in new[] { (37, 70, 600, false, false), (128, 10, 100, true, false), (13, 96, 64, false, true) })
        {
            var problem = new GemmProblem(m, n, k, ta, tb, seed: 17);
            float[] scalar = problem.Run(accumulate: true, GemmKernelPath.Scalar);
            Assert.Equal(scalar, problem.Run(accumulate: true, GemmKernelPath.Vector256));
            Assert.Equal(scalar, problem.Run(accumulate: true, GemmKernelPath.Vector128));
            if (System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated)
                Assert.Equal(scalar, problem.Run(accumulate: true, GemmKernelPath.Vector512));
        }
    }

    [Fact]
    public void Every_row_count_of_a_tile_matches_the_reference_on_every_kernel_path()
    {
        // m = 1 … 13 covers each row-specialized kernel (and both 6-row halves of the Vector256/128 strips); n·k is large
        // enough that even m = 1 takes the packed path.
        for (int m = 1; m <= 13; m++)
        {
            var problem = new GemmProblem(m, 70, 1000, false, false, seed: m);
            float[] expected = (float[])problem.C.Clone();
            Gemm.Reference<float>(false, false, m, 70, 1000, problem.A, problem.Lda, problem.B, problem.Ldb, expected, problem.Ldc, accumulate: false);
            float[] actual = problem.Run(accumulate: false, GemmKernelPath.Scalar);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < 70; j++)
                    problem.AssertClose(expected[i * 70 + j], actual[i * 70 + j], false, i, j);
            Assert.Equal(actual, problem.Run(accumulate: false, GemmKernelPath.Vector256));
            Assert.Equal(actual, problem.Run(accumulate: false, GemmKernelPath.Vector128));
            if (System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated)
                Assert.Equal(actual, problem.Run(accumulate: false, GemmKernelPath.Vector512));
        }
    }

    [Fact]
    public void Float64_matches_the_reference_loop()
    {
        foreach ((bool ta, bool tb) in new[] { (false, false), (false, true), (true, false), (true, true) })
        {
            const int m = 9, n = 40, k = 17;
            var random = new Random(23);
            double[] a = Enumerable.Range(0, m * k).Select(_ => random.NextDouble() - 0.5).ToArray();
            double[] b = Enumerable.Range(0, k * n).Select(_ => random.NextDouble() - 0.5).ToArray();
            double[] c = Enumerable.Range(0, m * n).Select(_ => random.NextDouble() - 0.5).ToArray();
            double[] expected = (double[])c.Clone();
            Gemm.Reference<double>(ta, tb, m, n, k, a, ta ? m : k, b, tb ? k : n, expected, n, accumulate: true);
            Gemm.Multiply(ta, tb, m, n, k, a, ta ? m : k, b, tb ? k : n, c, n, accumulate: true);
            for (int i = 0; i < c.Length; i++) Assert.Equal(expected[i], c[i], 1e-13);
        }
    }

    [Fact]
    public void A_span_too_short_for_its_shape_is_rejected_with_the_sizes()
    {
        var e = Assert.Throws<ArgumentException>(() => Gemm.Multiply(false, false, 4, 3, 5, new float[19], 5, new float[15], 3, new float[12], 3, false));
        Assert.Equal("Gemm: A is 4×5 with row stride 5, which needs 20 elements, but the span has 19.", e.Message);
        e = Assert.Throws<ArgumentException>(() => Gemm.Multiply(false, true, 4, 3, 5, new float[20], 5, new float[15], 5, new float[12], 4, false));
        Assert.Equal("Gemm: C is 4×3 with row stride 4, which needs 15 elements, but the span has 12.", e.Message);
    }

    [Fact]
    public void A_row_stride_shorter_than_the_row_is_rejected()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.Multiply(false, true, 4, 3, 5, new float[20], 5, new float[15], 4, new float[12], 3, false));
        Assert.Equal("ldb", e.ParamName);
        Assert.StartsWith("Gemm: the row stride of B (4) is smaller than its 5 columns.", e.Message);
    }
}

/// <summary>Tests that change <see cref="Parallelism.ThreadCount"/> run alone, after the parallel ones.</summary>
[CollectionDefinition("Parallelism", DisableParallelization = true)]
public sealed class ParallelismCollection;

[Collection("Parallelism")]
public class GemmThreadingTests
{
    [Theory]
    [InlineData(300, 200, 517, false, false)] // threads own row panels; the small shared B is packed by each
    [InlineData(40, 900, 700, true, false)]   // threads own column panels
    [InlineData(128, 128, 1152, false, true)] // rows on 1 and 3 threads, columns (the even split) on 2
    [InlineData(300, 600, 517, false, true)]  // the shared B (over 1 MiB packed) is packed once, by all threads
    [InlineData(600, 12, 300, false, true)]   // narrow C: computed as Cᵀ
    [InlineData(400, 1000, 4300, true, true)] // two slabs of the shared operand
    [InlineData(200, 2048, 1400, false, false)] // threads own column panels and share the rows of A (over 1 MiB packed)
    [InlineData(4104, 160, 2048, false, false)] // two slabs of the own operand (over 8 MiB per depth block)
    public void Results_are_bitwise_identical_for_any_thread_count(int m, int n, int k, bool transA, bool transB)
    {
        var problem = new GemmProblem(m, n, k, transA, transB, seed: 29);
        int saved = Parallelism.ThreadCount;
        try
        {
            Parallelism.ThreadCount = 1;
            float[] oneThread = problem.Run(accumulate: true);
            foreach (int threads in new[] { 2, 3 })
            {
                Parallelism.ThreadCount = threads;
                Assert.Equal(oneThread, problem.Run(accumulate: true));
            }
        }
        finally
        {
            Parallelism.ThreadCount = saved;
        }
    }
}
