namespace NormSharp.Nn;

/// <summary>A (height, width) pair for kernel sizes, strides, paddings and dilations. Like PyTorch's int-or-tuple
/// arguments, an int <c>n</c> converts to (n, n) and a tuple <c>(h, w)</c> to (h, w).</summary>
/// <param name="Height">The size along the rows (H).</param>
/// <param name="Width">The size along the columns (W).</param>
public readonly record struct Size2(int Height, int Width)
{
    /// <summary>The square pair (<paramref name="size"/>, <paramref name="size"/>).</summary>
    public static implicit operator Size2(int size) => new(size, size);

    /// <summary>The pair (h, w).</summary>
    public static implicit operator Size2((int Height, int Width) size) => new(size.Height, size.Width);

    /// <summary>PyTorch's tuple notation, e.g. <c>(3, 3)</c>.</summary>
    public override string ToString() => $"({Height}, {Width})";
}
