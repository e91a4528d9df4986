using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace NormSharp.Kernels;

/// <summary>The fully connected layer on row-major data: x is (rows, in), W is (out, in), y is (rows, out).</summary>
internal static class LinearKernels
{
    /// <summary>y = x·Wᵀ + b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Forward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> bias, Span<T> y, int rows, int inFeatures, int outFeatures)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        bool hasBias = !bias.IsEmpty;
        if (hasBias)
            for (int r = 0; r < rows; r++) bias.CopyTo(y.Slice(r * outFeatures, outFeatures));
        GemmDispatch(false, true, rows, outFeatures, inFeatures, x, inFeatures, w, inFeatures, y, outFeatures, accumulate: hasBias);
    }

    /// <summary>dx = dy·W, dW = dyᵀ·x, db = Σ_rows dy; an empty span skips that gradient.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Backward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> dy, Span<T> dx, Span<T> dw, Span<T> db, int rows, int inFeatures, int outFeatures)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!dx.IsEmpty) GemmDispatch(false, false, rows, inFeatures, outFeatures, dy, outFeatures, w, inFeatures, dx, inFeatures, accumulate: false);
        if (!dw.IsEmpty) GemmDispatch(true, false, outFeatures, inFeatures, rows, dy, outFeatures, x, inFeatures, dw, inFeatures, accumulate: false);
        if (!db.IsEmpty)
        {
            db.Clear();
            for (int r = 0; r < rows; r++) TensorPrimitives.Add(db, dy.Slice(r * outFeatures, outFeatures), db);
        }
    }

    internal static void GemmDispatch<T>(bool transA, bool transB, int m, int n, int k, ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, Span<T> c, int ldc, bool accumulate)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float))
            Gemm.Multiply(transA, transB, m, n, k, System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(a), lda,
                System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(b), ldb, System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(c), ldc, accumulate);
        else
            Gemm.Multiply(transA, transB, m, n, k, System.Runtime.InteropServices.MemoryMarshal.Cast<T, double>(a), lda,
                System.Runtime.InteropServices.MemoryMarshal.Cast<T, double>(b), ldb, System.Runtime.InteropServices.MemoryMarshal.Cast<T, double>(c), ldc, accumulate);
    }
}
