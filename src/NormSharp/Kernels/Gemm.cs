using System.Buffers;
using System.Numerics;

namespace NormSharp.Kernels;

/// <summary>General matrix multiply on row-major matrices: C = op(A)·op(B), or C += op(A)·op(B) when
/// <c>accumulate</c> is set. op(A) is m×k, op(B) is k×n; lda/ldb/ldc are row strides of the stored matrices.</summary>
/// <remarks>float32 problems of at least <see cref="SmallWork"/> multiply-adds go to the packed, cache-blocked,
/// multi-threaded path (Gemm.Packed.cs) built around an FMA register tile (Gemm.MicroKernels.cs); smaller ones and
/// float64 (used by gradient checks on small sizes) take the single-threaded <see cref="Direct{T}"/> loops. On the
/// packed path each element of C is, per depth block (fixed by k alone), one fused multiply-add chain added to C, so
/// results do not depend on the thread count.</remarks>
internal static partial class Gemm
{
    /// <summary>Below this many multiply-adds (m·n·k) packing costs more than it saves (measured: the packed path's
    /// fixed cost is about 0.3 µs, and it is already 2× faster than the direct loops at 16×16×16). Above it, threads
    /// join in only from about 2M multiply-adds per thread (see <see cref="MultiplyAddsPerWorkUnit"/>).</summary>
    internal const long SmallWork = 2_048;

    /// <summary>float32 C = op(A)·op(B) (or C += … when <paramref name="accumulate"/>) on the fastest kernel path.</summary>
    public static void Multiply(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc, bool accumulate) =>
        Multiply(BestPath, transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate);

    /// <summary>float64 C = op(A)·op(B) (or C += … when <paramref name="accumulate"/>) with the direct loops.</summary>
    public static void Multiply(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<double> a, int lda, ReadOnlySpan<double> b, int ldb, Span<double> c, int ldc, bool accumulate)
    {
        CheckExtents(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        Direct(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
    }

    /// <summary>The float32 multiply with the micro-kernel chosen by the caller (tests compare the paths).</summary>
    internal static unsafe void Multiply(GemmKernelPath path, bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc, bool accumulate)
    {
        CheckExtents(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        if ((long)m * n * k < SmallWork)
        {
            Direct(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
            return;
        }
        fixed (float* pa = a, pb = b, pc = c)
            MultiplyPacked(path, transA, transB, m, n, k, pa, lda, pb, ldb, pc, ldc, accumulate);
    }

    /// <summary>Unblocked loops for small problems: row i of C is either a sum of rows of op(B) scaled by op(A)[i, p]
    /// (B not transposed) or a row of dot products with the rows of the stored B (B transposed).</summary>
    private static void Direct<T>(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, Span<T> c, int ldc, bool accumulate)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (m == 0 || n == 0) return;
        T[]? gathered = transA ? BufferPool<T>.Shared.Rent(k) : null;
        for (int i = 0; i < m; i++)
        {
            ReadOnlySpan<T> aRow;
            if (gathered is null) aRow = a.Slice(i * lda, k);
            else
            {
                for (int p = 0; p < k; p++) gathered[p] = a[p * lda + i];
                aRow = gathered.AsSpan(0, k);
            }
            Span<T> cRow = c.Slice(i * ldc, n);
            if (transB)
            {
                for (int j = 0; j < n; j++)
                {
                    T dot = Dot(aRow, b.Slice(j * ldb, k));
                    cRow[j] = accumulate ? cRow[j] + dot : dot;
                }
                continue;
            }
            if (n < Vector<T>.Count)
            {
                // Too narrow to vectorize along the row: dot products down the columns of B.
                for (int j = 0; j < n; j++)
                {
                    T dot = T.Zero;
                    for (int p = 0; p < k; p++) dot += aRow[p] * b[p * ldb + j];
                    cRow[j] = accumulate ? cRow[j] + dot : dot;
                }
                continue;
            }
            if (!accumulate) cRow.Clear();
            for (int p = 0; p < k; p++) AddScaled(cRow, aRow[p], b.Slice(p * ldb, n));
        }
        if (gathered is not null) BufferPool<T>.Shared.Return(gathered);
    }

    private static T Dot<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var sums = Vector<T>.Zero;
        int p = 0;
        for (; p <= x.Length - Vector<T>.Count; p += Vector<T>.Count)
            sums += new Vector<T>(x.Slice(p)) * new Vector<T>(y.Slice(p));
        T sum = Vector.Sum(sums);
        for (; p < x.Length; p++) sum += x[p] * y[p];
        return sum;
    }

    /// <summary>y += alpha·x.</summary>
    private static void AddScaled<T>(Span<T> y, T alpha, ReadOnlySpan<T> x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int j = 0;
        var alphas = new Vector<T>(alpha);
        for (; j <= y.Length - Vector<T>.Count; j += Vector<T>.Count)
            (new Vector<T>(y.Slice(j)) + alphas * new Vector<T>(x.Slice(j))).CopyTo(y.Slice(j));
        for (; j < y.Length; j++) y[j] += alpha * x[j];
    }

    /// <summary>Checks sizes, strides and that each span reaches the last element the multiply touches, so the
    /// pointer-based kernels never read or write outside them.</summary>
    private static void CheckExtents(bool transA, bool transB, int m, int n, int k, int aLength, int lda, int bLength, int ldb, int cLength, int ldc)
    {
        if (m < 0 || n < 0 || k < 0) throw new ArgumentOutOfRangeException(nameof(m), $"Gemm: sizes must be non-negative, got m={m}, n={n}, k={k}.");
        CheckOperand("A", transA ? k : m, transA ? m : k, aLength, lda, nameof(lda));
        CheckOperand("B", transB ? n : k, transB ? k : n, bLength, ldb, nameof(ldb));
        CheckOperand("C", m, n, cLength, ldc, nameof(ldc));
    }

    private static void CheckOperand(string name, int rows, int columns, int length, int stride, string strideName)
    {
        if (rows > 1 && stride < columns)
            throw new ArgumentOutOfRangeException(strideName, $"Gemm: the row stride of {name} ({stride}) is smaller than its {columns} columns.");
        long needed = rows == 0 || columns == 0 ? 0 : (long)(rows - 1) * stride + columns;
        if (length < needed)
            throw new ArgumentException($"Gemm: {name} is {rows}×{columns} with row stride {stride}, which needs {needed} elements, but the span has {length}.");
    }

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
