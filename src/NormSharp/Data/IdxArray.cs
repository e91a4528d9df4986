namespace NormSharp.Data;

/// <summary>
/// The contents of one IDX file (the format of MNIST, Fashion-MNIST and EMNIST): an array of unsigned bytes with its
/// dimensions, outermost first; images are (count, rows, columns) and labels (count).
/// </summary>
public sealed class IdxArray
{
    /// <summary>Wraps <paramref name="data"/> (not copied) as an array of the given dimensions.</summary>
    public IdxArray(int[] dimensions, byte[] data)
    {
        ArgumentNullException.ThrowIfNull(dimensions);
        ArgumentNullException.ThrowIfNull(data);
        if (dimensions.Length is 0 or > byte.MaxValue)
            throw new ArgumentException($"IdxArray: an IDX array has 1 to 255 dimensions, got {dimensions.Length}.", nameof(dimensions));
        if (dimensions.Any(d => d < 0))
            throw new ArgumentException($"IdxArray: dimensions must not be negative, got {ShapeUtil.Format(dimensions)}.", nameof(dimensions));
        long count = IdxReader.ElementCount(dimensions.Select(d => (long)d).ToArray());
        if (count != data.Length)
            throw new ArgumentException($"IdxArray: dimensions {ShapeUtil.Format(dimensions)} need {count} bytes, but {data.Length} were given.", nameof(data));
        Dimensions = (int[])dimensions.Clone();
        Data = data;
    }

    /// <summary>The size of each axis, outermost first.</summary>
    public IReadOnlyList<int> Dimensions { get; }

    /// <summary>The values in row-major order.</summary>
    public byte[] Data { get; }

    /// <summary>The number of items: the size of the outermost axis.</summary>
    public int Count => Dimensions[0];
}
