namespace NormSharp.Nn;

/// <summary>What <see cref="MaxPool2d"/> and <see cref="AvgPool2d"/> share: a window that slides over each channel
/// plane of (N, C, H, W) or unbatched (C, H, W) input, with the stride defaulting to the window size as in PyTorch.</summary>
public abstract class Pool2dBase : Module
{
    /// <summary>Stores the window; the subclass checks it once its own arguments are set.</summary>
    private protected Pool2dBase(Size2 kernelSize, Size2? stride, Size2 padding, bool ceilMode)
    {
        KernelSize = kernelSize;
        Stride = stride ?? kernelSize;
        Padding = padding;
        CeilMode = ceilMode;
    }

    /// <summary>Window (height, width).</summary>
    public Size2 KernelSize { get; }

    /// <summary>Step between windows.</summary>
    public Size2 Stride { get; }

    /// <summary>Implicit padding on each side (at most half the kernel): −∞ for max pooling, 0 for average pooling.</summary>
    public Size2 Padding { get; }

    /// <summary>Whether the output size rounds up instead of down, adding a partial window at the bottom/right edge.</summary>
    public bool CeilMode { get; }
}
