namespace NormSharp.Nn;

/// <summary>Argument checks and parameter creation shared by the normalization layers.</summary>
internal static class NormalizationHelpers
{
    /// <summary>Validates a normalized shape (non-empty, positive sizes) and returns a copy.</summary>
    public static int[] CheckShape(string layer, int[] normalizedShape)
    {
        ArgumentNullException.ThrowIfNull(normalizedShape);
        if (normalizedShape.Length == 0 || normalizedShape.Any(d => d <= 0))
            throw new ArgumentException($"{layer}: normalizedShape must be a non-empty list of positive sizes, got {ShapeUtil.Format(normalizedShape)}.");
        return (int[])normalizedShape.Clone();
    }

    /// <summary>A float32 tensor of <paramref name="shape"/> filled with <paramref name="value"/>, outside any
    /// TensorScope (parameters live as long as their layer).</summary>
    public static Tensor Constant(int[] shape, double value)
    {
        Tensor t = Tensor.Allocate(DType.Float32, shape, clear: false, scoped: false);
        Init.Constant(t, value);
        return t;
    }
}
