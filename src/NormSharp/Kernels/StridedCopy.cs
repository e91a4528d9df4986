namespace NormSharp.Kernels;

/// <summary>Copies between strided layouts (views) and dense buffers; the innermost axis is copied as a run.</summary>
internal static class StridedCopy
{
    /// <summary>Reads the view (<paramref name="offset"/>, <paramref name="dims"/>, <paramref name="strides"/>) of
    /// <paramref name="source"/> into the dense <paramref name="destination"/>.</summary>
    public static void Gather<T>(T[] source, int offset, int[] dims, int[] strides, Span<T> destination) =>
        Copy(source, offset, strides, destination, 0, ShapeUtil.ContiguousStrides(dims), dims);

    public static void Copy<T>(T[] source, int sourceOffset, int[] sourceStrides, Span<T> destination, int destinationOffset, int[] destinationStrides, int[] dims)
    {
        int rank = dims.Length;
        if (rank == 0)
        {
            destination[destinationOffset] = source[sourceOffset];
            return;
        }
        int total = ShapeUtil.Product(dims);
        if (total == 0) return;
        int inner = dims[rank - 1];
        int si = sourceStrides[rank - 1], di = destinationStrides[rank - 1];
        Span<int> index = stackalloc int[rank];
        int s = sourceOffset, d = destinationOffset;
        for (int done = 0; done < total; done += inner)
        {
            if (si == 1 && di == 1) source.AsSpan(s, inner).CopyTo(destination.Slice(d, inner));
            else for (int i = 0; i < inner; i++) destination[d + i * di] = source[s + i * si];
            // odometer over the outer axes
            for (int axis = rank - 2; axis >= 0; axis--)
            {
                index[axis]++;
                s += sourceStrides[axis];
                d += destinationStrides[axis];
                if (index[axis] < dims[axis]) break;
                s -= sourceStrides[axis] * dims[axis];
                d -= destinationStrides[axis] * dims[axis];
                index[axis] = 0;
            }
        }
    }
}
