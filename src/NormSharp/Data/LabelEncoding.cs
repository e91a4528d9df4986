namespace NormSharp.Data;

/// <summary>Conversions between class indices and the one-hot vectors some losses and metrics expect.</summary>
public static class LabelEncoding
{
    /// <summary>A float32 tensor of shape (N, <paramref name="classCount"/>) whose row i is 1 at column labels[i]
    /// and 0 elsewhere.</summary>
    public static Tensor OneHot(ReadOnlySpan<int> labels, int classCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(classCount);
        Tensor result = Tensor.Allocate(DType.Float32, [labels.Length, classCount], clear: false);
        WriteOneHot(labels, classCount, result.SpanF);
        return result;
    }

    /// <summary>Writes the one-hot rows of <paramref name="labels"/> into <paramref name="target"/>
    /// (labels.Length × classCount values, overwritten).</summary>
    internal static void WriteOneHot(ReadOnlySpan<int> labels, int classCount, Span<float> target)
    {
        target.Clear();
        for (int i = 0; i < labels.Length; i++)
        {
            if ((uint)labels[i] >= (uint)classCount)
                throw new ArgumentOutOfRangeException(nameof(labels), $"OneHot: label {labels[i]} at position {i} is outside [0, {classCount}).");
            target[i * classCount + labels[i]] = 1f;
        }
    }
}
