using System.Numerics;

namespace NormSharp.Kernels;

/// <summary>General matrix multiply on row-major matrices: C = op(A)·op(B), or C += op(A)·op(B) when
/// <c>accumulate</c> is set. op(A) is m×k, op(B) is k×n; lda/ldb/ldc are row strides of the stored matrices.</summary>
internal static class Gemm
{
    public static void Multiply(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc, bool accumulate) =>
        Reference(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate);

    public static void Multiply(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<double> a, int lda, ReadOnlySpan<double> b, int ldb, Span<double> c, int ldc, bool accumulate) =>
        Reference(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate);

    /// <summary>The plain triple loop (i, p, j order so B and C rows are read contiguously when not transposed).</summary>
    internal static void Reference<T>(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, Span<T> c, int ldc, bool accumulate)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < m; i++)
        {
            Span<T> row = c.Slice(i * ldc, n);
            if (!accumulate) row.Clear();
            for (int p = 0; p < k; p++)
            {
                T av = transA ? a[p * lda + i] : a[i * lda + p];
                if (av == T.Zero) continue;
                for (int j = 0; j < n; j++)
                    row[j] += av * (transB ? b[j * ldb + p] : b[p * ldb + j]);
            }
        }
    }
}
