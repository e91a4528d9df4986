namespace NormSharp;

/// <summary>Shape arithmetic shared by tensors, kernels and layers; also formats shapes for error messages.</summary>
internal static class ShapeUtil
{
    public static int Product(ReadOnlySpan<int> dims)
    {
        long p = SaturatingProduct(dims);
        if (p > int.MaxValue) throw new ArgumentException($"A tensor of shape {Format(dims)} has more than {int.MaxValue} elements.");
        return (int)p;
    }

    /// <summary>The product of the sizes, or <see cref="long.MaxValue"/> once it passes int.MaxValue (0 when a size is
    /// 0). A plain long product wraps: (2147418113, 1718039348, 5) multiplies to 2^64 + 4, which a long holds as 4, so
    /// an ONNX Reshape to that shape passed every check as a view of 4 elements.</summary>
    public static long SaturatingProduct(ReadOnlySpan<int> dims)
    {
        foreach (int d in dims) if (d == 0) return 0;
        long p = 1;
        foreach (int d in dims)
        {
            p *= d; // |p| ≤ int.MaxValue before, so this cannot overflow
            if (p > int.MaxValue) return long.MaxValue;
        }
        return p;
    }

    public static void Validate(ReadOnlySpan<int> dims, string who)
    {
        foreach (int d in dims)
            if (d < 0) throw new ArgumentException($"{who}: shape {Format(dims)} has a negative size.");
    }

    public static int[] ContiguousStrides(ReadOnlySpan<int> dims)
    {
        var strides = new int[dims.Length];
        int s = 1;
        for (int i = dims.Length - 1; i >= 0; i--)
        {
            strides[i] = s;
            s *= Math.Max(dims[i], 1);
        }
        return strides;
    }

    public static bool IsContiguous(ReadOnlySpan<int> dims, ReadOnlySpan<int> strides)
    {
        int s = 1;
        for (int i = dims.Length - 1; i >= 0; i--)
        {
            if (dims[i] != 1 && strides[i] != s) return false;
            s *= dims[i];
        }
        return true;
    }

    public static bool SameShape(ReadOnlySpan<int> a, ReadOnlySpan<int> b) => a.SequenceEqual(b);

    public static int NormalizeAxis(int axis, int rank, string who)
    {
        int a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= Math.Max(rank, 1))
            throw new ArgumentOutOfRangeException(nameof(axis), $"{who}: axis {axis} is out of range for a tensor of rank {rank}.");
        return a;
    }

    /// <summary>The shape two operands broadcast to, following NumPy/PyTorch rules (align trailing axes; a size of 1
    /// stretches).</summary>
    public static int[] Broadcast(int[] a, int[] b, string who)
    {
        int rank = Math.Max(a.Length, b.Length);
        var result = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i < rank - a.Length ? 1 : a[i - (rank - a.Length)];
            int db = i < rank - b.Length ? 1 : b[i - (rank - b.Length)];
            if (da != db && da != 1 && db != 1)
                throw new ArgumentException($"{who}: shapes {Format(a)} and {Format(b)} cannot be broadcast together (axis {i}: {da} vs {db}).");
            result[i] = da == 1 ? db : da;
        }
        return result;
    }

    /// <summary>Strides that read a tensor of shape <paramref name="dims"/>/<paramref name="strides"/> as if it had
    /// the broadcast shape <paramref name="target"/>: stretched axes get stride 0.</summary>
    public static int[] BroadcastStrides(int[] dims, int[] strides, int[] target)
    {
        var result = new int[target.Length];
        int shift = target.Length - dims.Length;
        for (int i = 0; i < dims.Length; i++)
            result[i + shift] = dims[i] == 1 && target[i + shift] != 1 ? 0 : strides[i];
        return result;
    }

    /// <summary>Resolves a requested shape against a length; one entry may be -1 and is inferred.</summary>
    public static int[] InferShape(int[] requested, int length, string who)
    {
        var shape = (int[])requested.Clone();
        int inferred = -1;
        for (int i = 0; i < shape.Length; i++)
        {
            if (shape[i] == -1)
            {
                if (inferred >= 0) throw new ArgumentException($"{who}: shape {Format(requested)} has more than one -1.");
                inferred = i;
            }
            else if (shape[i] < 0) throw new ArgumentException($"{who}: shape {Format(requested)} has a negative size.");
        }
        long known = SaturatingProduct(shape.Where(d => d != -1).ToArray());
        if (inferred >= 0)
        {
            if (known == 0 || length % known != 0)
                throw new ArgumentException($"{who}: cannot reshape {length} elements into {Format(requested)}.");
            shape[inferred] = (int)(length / known);
        }
        else if (known != length)
            throw new ArgumentException($"{who}: cannot reshape {length} elements into {Format(requested)} ({known} elements).");
        return shape;
    }

    public static string Format(ReadOnlySpan<int> dims) => "(" + string.Join(", ", dims.ToArray()) + (dims.Length == 1 ? ",)" : ")");
}
