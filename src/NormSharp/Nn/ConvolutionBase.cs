namespace NormSharp.Nn;

/// <summary>
/// What <see cref="Conv2d"/> and <see cref="ConvTranspose2d"/> share (PyTorch's <c>_ConvNd</c>): channel counts,
/// kernel size, stride and dilation, and a weight and optional bias initialized as PyTorch does (Kaiming-uniform
/// weight with a = √5 and bias U(±1/√fanIn), fanIn = weight.size(1)·kh·kw).
/// </summary>
public abstract class ConvolutionBase : Module
{
    /// <summary>Stores the hyper-parameters; the subclass checks them and then calls <see cref="CreateParameters"/>.</summary>
    private protected ConvolutionBase(int inChannels, int outChannels, Size2 kernelSize, Size2 stride, Size2 dilation, bool bias)
    {
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Stride = stride;
        Dilation = dilation;
        HasBias = bias;
        if (inChannels <= 0 || outChannels <= 0)
            throw new ArgumentException($"{GetType().Name}: in_channels and out_channels must be positive, got {inChannels} and {outChannels}.");
    }

    /// <summary>Creates the weight in the subclass's layout <paramref name="weightShape"/> and the bias, with PyTorch's
    /// default initialization.</summary>
    private protected void CreateParameters(int[] weightShape, RandomGenerator? generator)
    {
        Tensor w = Tensor.Allocate(DType.Float32, weightShape, scoped: false);
        Tensor? b = HasBias ? Tensor.Allocate(DType.Float32, new[] { OutChannels }, scoped: false) : null;
        Init.PyTorchDefault(w, b, generator);
        RegisterParameter("weight", w);
        if (b is null) RegisterAbsentParameter("bias"); else RegisterParameter("bias", b);
    }

    /// <summary>Channels of the input.</summary>
    public int InChannels { get; }

    /// <summary>Channels of the output.</summary>
    public int OutChannels { get; }

    /// <summary>Kernel (height, width).</summary>
    public Size2 KernelSize { get; }

    /// <summary>Step between windows (rows, columns).</summary>
    public Size2 Stride { get; }

    /// <summary>Spacing between kernel taps (rows, columns); 1 is a dense kernel.</summary>
    public Size2 Dilation { get; }

    /// <summary>Whether the layer has a bias (known before the parameters exist, for error messages).</summary>
    private protected bool HasBias { get; }

    /// <summary>The weight: (out, in, kh, kw) for <see cref="Conv2d"/>, (in, out, kh, kw) for <see cref="ConvTranspose2d"/>.</summary>
    public Tensor Weight => GetParameter("weight")!;

    /// <summary>The bias, shape (out), or null.</summary>
    public Tensor? Bias => GetParameter("bias");
}
