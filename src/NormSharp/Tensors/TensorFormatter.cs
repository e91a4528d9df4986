using System.Globalization;
using System.Text;

namespace NormSharp;

/// <summary>Prints tensors the way PyTorch does: nested brackets, with long axes elided.</summary>
internal static class TensorFormatter
{
    private const int EdgeItems = 3;

    public static string Format(Tensor t)
    {
        var sb = new StringBuilder("tensor(");
        double[] values = t.ToDoubleArray();
        Append(sb, values, t.Dims, 0, 0, ShapeUtil.ContiguousStrides(t.Dims));
        sb.Append(", shape=").Append(ShapeUtil.Format(t.Dims));
        if (t.DType == DType.Float64) sb.Append(", dtype=float64");
        if (t.RequiresGrad) sb.Append(", requires_grad");
        return sb.Append(')').ToString();
    }

    private static void Append(StringBuilder sb, double[] values, int[] dims, int axis, int offset, int[] strides)
    {
        if (axis == dims.Length)
        {
            sb.Append(values[offset].ToString("G6", CultureInfo.InvariantCulture));
            return;
        }
        sb.Append('[');
        int n = dims[axis];
        for (int i = 0; i < n; i++)
        {
            if (n > 2 * EdgeItems && i == EdgeItems)
            {
                sb.Append("..., ");
                i = n - EdgeItems;
            }
            Append(sb, values, dims, axis + 1, offset + i * strides[axis], strides);
            if (i < n - 1) sb.Append(", ");
        }
        sb.Append(']');
    }
}
