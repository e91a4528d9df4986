using System.Numerics;
using System.Numerics.Tensors;

namespace NormSharp.Kernels;

internal enum BinaryOp { Add, Subtract, Multiply, Divide }

/// <summary>Broadcasting element-wise arithmetic. Each contiguous run of the innermost axis goes to
/// <see cref="TensorPrimitives"/>, which vectorizes it (Vector512/256/128 with a scalar tail).</summary>
internal static class Elementwise
{
    /// <summary>dst = a op b, where a and b are read through broadcast strides over <paramref name="dims"/> and dst
    /// is dense.</summary>
    public static void Binary<T>(BinaryOp op, T[] a, int aOffset, int[] aStrides, T[] b, int bOffset, int[] bStrides, Span<T> dst, int[] dims)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Coalesce(ref dims, ref aStrides, ref bStrides);
        int rank = dims.Length;
        int total = ShapeUtil.Product(dims);
        if (total == 0) return;
        int inner = rank == 0 ? 1 : dims[rank - 1];
        int sa = rank == 0 ? 0 : aStrides[rank - 1], sb = rank == 0 ? 0 : bStrides[rank - 1];
        Span<int> index = stackalloc int[Math.Max(rank, 1)];
        int ia = aOffset, ib = bOffset;
        for (int d = 0; d < total; d += inner)
        {
            Run(op, a, ia, sa, b, ib, sb, dst.Slice(d, inner));
            for (int axis = rank - 2; axis >= 0; axis--)
            {
                index[axis]++;
                ia += aStrides[axis];
                ib += bStrides[axis];
                if (index[axis] < dims[axis]) break;
                ia -= aStrides[axis] * dims[axis];
                ib -= bStrides[axis] * dims[axis];
                index[axis] = 0;
            }
        }
    }

    private static void Run<T>(BinaryOp op, T[] a, int ia, int sa, T[] b, int ib, int sb, Span<T> dst)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = dst.Length;
        if (sa == 1 && sb == 1)
        {
            ReadOnlySpan<T> x = a.AsSpan(ia, n), y = b.AsSpan(ib, n);
            switch (op)
            {
                case BinaryOp.Add: TensorPrimitives.Add(x, y, dst); break;
                case BinaryOp.Subtract: TensorPrimitives.Subtract(x, y, dst); break;
                case BinaryOp.Multiply: TensorPrimitives.Multiply(x, y, dst); break;
                default: TensorPrimitives.Divide(x, y, dst); break;
            }
        }
        else if (sa == 1 && sb == 0)
        {
            ReadOnlySpan<T> x = a.AsSpan(ia, n);
            T y = b[ib];
            switch (op)
            {
                case BinaryOp.Add: TensorPrimitives.Add(x, y, dst); break;
                case BinaryOp.Subtract: TensorPrimitives.Subtract(x, y, dst); break;
                case BinaryOp.Multiply: TensorPrimitives.Multiply(x, y, dst); break;
                default: TensorPrimitives.Divide(x, y, dst); break;
            }
        }
        else if (sa == 0 && sb == 1)
        {
            T x = a[ia];
            ReadOnlySpan<T> y = b.AsSpan(ib, n);
            switch (op)
            {
                case BinaryOp.Add: TensorPrimitives.Add(y, x, dst); break;
                case BinaryOp.Subtract: TensorPrimitives.Subtract(x, y, dst); break;
                case BinaryOp.Multiply: TensorPrimitives.Multiply(y, x, dst); break;
                default: TensorPrimitives.Divide(x, y, dst); break;
            }
        }
        else
        {
            for (int i = 0; i < n; i++)
            {
                T x = a[ia + i * sa], y = b[ib + i * sb];
                dst[i] = op switch
                {
                    BinaryOp.Add => x + y,
                    BinaryOp.Subtract => x - y,
                    BinaryOp.Multiply => x * y,
                    _ => x / y,
                };
            }
        }
    }

    /// <summary>Merges adjacent axes that are laid out contiguously for both operands, so runs get longer.</summary>
    private static void Coalesce(ref int[] dims, ref int[] aStrides, ref int[] bStrides)
    {
        if (dims.Length < 2) return;
        var d = new List<int> { dims[0] };
        var sa = new List<int> { aStrides[0] };
        var sb = new List<int> { bStrides[0] };
        for (int i = 1; i < dims.Length; i++)
        {
            int last = d.Count - 1;
            bool mergeA = sa[last] == aStrides[i] * dims[i];
            bool mergeB = sb[last] == bStrides[i] * dims[i];
            if (dims[i] == 1) continue;
            if (d[last] == 1) { d[last] = dims[i]; sa[last] = aStrides[i]; sb[last] = bStrides[i]; continue; }
            if (mergeA && mergeB)
            {
                d[last] *= dims[i];
                sa[last] = aStrides[i];
                sb[last] = bStrides[i];
            }
            else
            {
                d.Add(dims[i]);
                sa.Add(aStrides[i]);
                sb.Add(bStrides[i]);
            }
        }
        dims = d.ToArray();
        aStrides = sa.ToArray();
        bStrides = sb.ToArray();
    }

    /// <summary>Sums <paramref name="source"/>, viewed as (outer, n, inner), over its middle axis into
    /// <paramref name="destination"/> of shape (outer, inner), accumulating in the element type with pairwise adds of
    /// whole rows.</summary>
    public static void SumAxis<T>(ReadOnlySpan<T> source, int outer, int n, int inner, Span<T> destination)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int o = 0; o < outer; o++)
        {
            if (inner == 1)
            {
                destination[o] = TensorPrimitives.Sum(source.Slice(o * n, n));
                continue;
            }
            Span<T> row = destination.Slice(o * inner, inner);
            row.Clear();
            for (int r = 0; r < n; r++)
                TensorPrimitives.Add(row, source.Slice((o * n + r) * inner, inner), row);
        }
    }

    /// <summary>Maximum over the middle axis of (outer, n, inner), with the index of the first maximum.</summary>
    public static void MaxAxis<T>(ReadOnlySpan<T> source, int outer, int n, int inner, Span<T> values, Span<int> indices)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                int baseIndex = o * n * inner + i;
                T best = source[baseIndex];
                int bestIndex = 0;
                for (int r = 1; r < n; r++)
                {
                    T v = source[baseIndex + r * inner];
                    if (v > best || (T.IsNaN(v) && !T.IsNaN(best))) { best = v; bestIndex = r; }
                }
                values[o * inner + i] = best;
                indices[o * inner + i] = bestIndex;
            }
    }
}
