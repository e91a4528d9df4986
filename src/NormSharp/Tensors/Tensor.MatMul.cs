using NormSharp.Autograd;
using NormSharp.Kernels;

namespace NormSharp;

public sealed partial class Tensor
{
    /// <summary>Matrix product: (M,K)·(K,N) → (M,N), or batched (B,M,K)·(B,K,N) → (B,M,N).</summary>
    public Tensor MatMul(Tensor other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (DType != other.DType) throw new ArgumentException($"MatMul: element types differ ({DType} and {other.DType}).");
        bool batched = Rank == 3 && other.Rank == 3;
        if (!batched && (Rank != 2 || other.Rank != 2))
            throw new ArgumentException($"MatMul: expected (M,K)·(K,N) or (B,M,K)·(B,K,N), got {ShapeUtil.Format(Dims)}·{ShapeUtil.Format(other.Dims)}.");
        int batch = batched ? Dims[0] : 1;
        int m = Dims[Rank - 2], k = Dims[Rank - 1], n = other.Dims[other.Rank - 1];
        if (other.Dims[other.Rank - 2] != k || (batched && other.Dims[0] != batch))
            throw new ArgumentException($"MatMul: inner sizes do not match: {ShapeUtil.Format(Dims)}·{ShapeUtil.Format(other.Dims)}.");
        Tensor a = Contiguous(), b = other.Contiguous();
        Tensor result = Allocate(DType, batched ? new[] { batch, m, n } : new[] { m, n }, clear: false);
        BatchedGemm(a, false, b, false, result, batch, m, n, k, accumulate: false);
        Tensor self = this;
        AutogradEngine.Record(result, "MatMul", new[] { this, other }, g =>
        {
            Tensor gc = g.Contiguous();
            Tensor? ga = null, gb = null;
            if (self.RequiresGrad)
            {
                ga = Allocate(DType, a.Dims, clear: false);
                BatchedGemm(gc, false, b, true, ga, batch, m, k, n, accumulate: false); // dA = dC·Bᵀ
            }
            if (other.RequiresGrad)
            {
                gb = Allocate(DType, b.Dims, clear: false);
                BatchedGemm(a, true, gc, false, gb, batch, k, n, m, accumulate: false); // dB = Aᵀ·dC
            }
            return new[] { ga, gb };
        });
        return result;
    }

    /// <summary>For each batch, C (m×n) = op(A)·op(B) (+ C), with the inner size <paramref name="k"/>.</summary>
    private static void BatchedGemm(Tensor a, bool transA, Tensor b, bool transB, Tensor c, int batch, int m, int n, int k, bool accumulate)
    {
        int lda = transA ? m : k, ldb = transB ? k : n;
        for (int i = 0; i < batch; i++)
        {
            if (a.DType == DType.Float32)
                Gemm.Multiply(transA, transB, m, n, k, a.SpanF.Slice(i * m * k, m * k), lda, b.SpanF.Slice(i * k * n, k * n), ldb, c.SpanF.Slice(i * m * n, m * n), n, accumulate);
            else
                Gemm.Multiply(transA, transB, m, n, k, a.SpanD.Slice(i * m * k, m * k), lda, b.SpanD.Slice(i * k * n, k * n), ldb, c.SpanD.Slice(i * m * n, m * n), n, accumulate);
        }
    }
}
