namespace NormSharp.Kernels;

/// <summary>
/// One spatial axis of a sliding window (convolution or pooling): output position o with kernel tap t reads input
/// index o·Stride − PadBefore + t·Dilation, which may fall in the padding outside [0, Input).
/// </summary>
internal readonly record struct WindowAxis(int Input, int Output, int Kernel, int Stride, int PadBefore, int Dilation)
{
    /// <summary>The input index read by output position <paramref name="output"/> at kernel tap <paramref name="tap"/>.</summary>
    public int InputIndex(int output, int tap) => output * Stride - PadBefore + tap * Dilation;

    /// <summary>The output positions [First, End) whose tap <paramref name="tap"/> reads inside the input; the
    /// others read padding.</summary>
    public (int First, int End) ValidOutputs(int tap) => InsideInput(Stride, tap * Dilation - PadBefore, Output);

    /// <summary>The kernel taps [First, End) of output position <paramref name="output"/> that read inside the input.</summary>
    public (int First, int End) ValidTaps(int output) => InsideInput(Dilation, output * Stride - PadBefore, Kernel);

    /// <summary>The k in [0, count) with 0 ≤ k·step + shift &lt; Input, which form one run [First, End).</summary>
    private (int First, int End) InsideInput(int step, int shift, int count)
    {
        int first = shift >= 0 ? 0 : (-shift + step - 1) / step;
        int last = Input - 1 - shift;
        int end = last < 0 ? 0 : Math.Min(count, last / step + 1);
        return (Math.Min(first, end), end);
    }

    /// <summary>PyTorch's output size: ⌊(Input + padBefore + padAfter − Span) / Stride⌋ + 1, or ⌈·⌉ + 1 in ceil mode,
    /// where a last window that would start in the right padding is dropped. Below 1 when the kernel does not fit.</summary>
    public static int OutputSize(int input, int kernel, int stride, int padBefore, int padAfter, int dilation, bool ceilMode = false)
    {
        int room = input + padBefore + padAfter - (dilation * (kernel - 1) + 1) + (ceilMode ? stride - 1 : 0);
        int output = (int)Math.Floor((double)room / stride) + 1;
        if (ceilMode && (output - 1) * stride >= input + padBefore) output--;
        return output;
    }
}
