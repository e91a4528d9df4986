namespace NormSharp.Nn;

/// <summary>
/// The padding of a convolution: an explicit (height, width) amount added on both sides, or one of PyTorch's
/// keywords. <c>"valid"</c> is no padding; <c>"same"</c> pads so that the output has the input's size, which needs
/// stride 1: the total padding dilation·(kernel − 1) is split with the odd element on the bottom/right, as PyTorch does.
/// An int, a tuple, a <see cref="Size2"/> or one of the two strings converts implicitly.
/// </summary>
public readonly record struct ConvPadding
{
    private readonly string? _keyword;

    private ConvPadding(Size2 size, string? keyword)
    {
        Size = size;
        _keyword = keyword;
    }

    /// <summary>Padding that keeps the spatial size (stride 1 only).</summary>
    public static ConvPadding Same => new(default, "same");

    /// <summary>No padding.</summary>
    public static ConvPadding Valid => new(default, "valid");

    /// <summary>The explicit padding on each side (zero for "valid"; not used for "same").</summary>
    public Size2 Size { get; }

    /// <summary>True for PyTorch's <c>padding="same"</c>.</summary>
    public bool IsSame => _keyword == "same";

    /// <summary>True for an explicit padding of zero (PyTorch's default, which its description leaves out; "valid"
    /// pads nothing too but is shown by name).</summary>
    public bool IsZero => _keyword is null && Size == default;

    /// <summary>The same padding (<paramref name="size"/>) on all four sides.</summary>
    public static implicit operator ConvPadding(int size) => new(size, null);

    /// <summary>Padding (h, w): h rows above and below, w columns left and right.</summary>
    public static implicit operator ConvPadding((int Height, int Width) size) => new(size, null);

    /// <summary>Padding (h, w): h rows above and below, w columns left and right.</summary>
    public static implicit operator ConvPadding(Size2 size) => new(size, null);

    /// <summary>PyTorch's keywords <c>"same"</c> and <c>"valid"</c>.</summary>
    public static implicit operator ConvPadding(string keyword) => keyword switch
    {
        "same" => Same,
        "valid" => Valid,
        _ => throw new ArgumentException($"Invalid padding string '{keyword}', should be one of ('valid', 'same')."),
    };

    /// <summary>The padding (before, after) of the rows and of the columns for a kernel of <paramref name="kernel"/>
    /// taps spaced <paramref name="dilation"/> apart.</summary>
    internal ((int Before, int After) Rows, (int Before, int After) Cols) Resolve(Size2 kernel, Size2 dilation)
    {
        if (!IsSame) return ((Size.Height, Size.Height), (Size.Width, Size.Width));
        return (Split(dilation.Height * (kernel.Height - 1)), Split(dilation.Width * (kernel.Width - 1)));

        static (int, int) Split(int total) => (total / 2, total - total / 2);
    }

    /// <summary>The keyword, or the explicit amount as a tuple.</summary>
    public override string ToString() => _keyword ?? Size.ToString();
}
