using NormSharp.Nn;

namespace NormSharp.Onnx;

/// <summary>
/// Convolution with groups (ONNX Conv's <c>group</c>, PyTorch's <c>groups</c>): the input channels split into
/// <c>groups</c> equal parts, each convolved with its own slice of the output channels' filters, and the results
/// concatenated; with one group per channel it is a depthwise convolution (MobileNet, ShuffleNet). Built from
/// <see cref="Functional.Conv2d"/>, Narrow and Concat, so it trains.
/// </summary>
public sealed class GroupedConv2d : Module
{
    /// <summary>A grouped convolution of <paramref name="inChannels"/> to <paramref name="outChannels"/> channels
    /// (both divisible by <paramref name="groups"/>); weight (out, in/groups, kh, kw), bias (out) when given, both
    /// drawn uniformly from ±1/√(in/groups·kh·kw) as PyTorch's Conv2d initializes them.</summary>
    public GroupedConv2d(int inChannels, int outChannels, Size2 kernelSize, int groups, Size2? stride = null, Size2 padding = default, Size2? dilation = null, bool bias = true, RandomGenerator? generator = null)
    {
        if (groups < 1 || inChannels % groups != 0 || outChannels % groups != 0)
            throw new ArgumentException($"GroupedConv2d: groups={groups} must divide in_channels={inChannels} and out_channels={outChannels}.", nameof(groups));
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Groups = groups;
        Stride = stride ?? 1;
        Padding = padding;
        Dilation = dilation ?? 1;
        double bound = 1 / Math.Sqrt(inChannels / groups * kernelSize.Height * kernelSize.Width);
        RegisterParameter("weight", Tensor.Uniform(new[] { outChannels, inChannels / groups, kernelSize.Height, kernelSize.Width }, -bound, bound, generator: generator));
        if (bias) RegisterParameter("bias", Tensor.Uniform(new[] { outChannels }, -bound, bound, generator: generator));
        else RegisterAbsentParameter("bias");
    }

    /// <summary>Input channels.</summary>
    public int InChannels { get; }

    /// <summary>Output channels.</summary>
    public int OutChannels { get; }

    /// <summary>Kernel (height, width).</summary>
    public Size2 KernelSize { get; }

    /// <summary>The number of channel groups.</summary>
    public int Groups { get; }

    /// <summary>Stride (height, width).</summary>
    public Size2 Stride { get; }

    /// <summary>Zero padding on each side (height, width).</summary>
    public Size2 Padding { get; }

    /// <summary>Dilation (height, width).</summary>
    public Size2 Dilation { get; }

    /// <summary>Filters (out, in/groups, kh, kw).</summary>
    public Tensor Weight => GetParameter("weight")!;

    /// <summary>Bias (out), or null.</summary>
    public Tensor? Bias => GetParameter("bias");

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => GroupedConvolution.Forward(input, Weight, Bias, Stride, Padding, Dilation, Groups);

    /// <inheritdoc />
    protected override string ExtraRepresentation =>
        $"{InChannels}, {OutChannels}, kernel_size={KernelSize}, stride={Stride}, padding={Padding}, dilation={Dilation}, groups={Groups}{(Bias is null ? ", bias=False" : "")}";
}

/// <summary>The grouped convolution shared by <see cref="GroupedConv2d"/> and the importer's Conv operation.</summary>
internal static class GroupedConvolution
{
    public static Tensor Forward(Tensor input, Tensor weight, Tensor? bias, Size2 stride, Size2 padding, Size2 dilation, int groups)
    {
        if (groups == 1) return Functional.Conv2d(input, weight, bias, stride, padding, dilation);
        int inPerGroup = weight.Shape[1], outPerGroup = weight.Shape[0] / groups;
        if (input.Rank != 4 || input.Shape[1] != inPerGroup * groups || weight.Shape[0] % groups != 0)
            throw new ArgumentException($"grouped convolution: input {Shapes.Format(input.Shape)} and weight {Shapes.Format(weight.Shape)} do not fit {groups} groups");
        var outputs = new List<Tensor>(groups);
        for (int g = 0; g < groups; g++)
            outputs.Add(Functional.Conv2d(input.Narrow(1, g * inPerGroup, inPerGroup).Contiguous(), weight.Narrow(0, g * outPerGroup, outPerGroup).Contiguous(),
                bias?.Narrow(0, g * outPerGroup, outPerGroup).Contiguous(), stride, padding, dilation));
        return Tensor.Concat(outputs, 1);
    }
}
