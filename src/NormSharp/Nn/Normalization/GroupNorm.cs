namespace NormSharp.Nn;

/// <summary>
/// Group normalization (Wu &amp; He 2018), PyTorch's <c>nn.GroupNorm</c>: the channels of each sample of an
/// (N, C, *) input are divided into <see cref="NumGroups"/> groups of C/G consecutive channels, and each (sample,
/// group) is normalized by its own mean and biased variance; γ (ones) and β (zeros) are per channel. Independent of
/// the batch size, with no running statistics: training and evaluation are the same. G = C is instance
/// normalization with affine; G = 1 normalizes each sample over all its channels and positions.
/// </summary>
public sealed class GroupNorm : Module
{
    /// <summary>Creates the layer; <paramref name="numChannels"/> must be divisible by <paramref name="numGroups"/>.</summary>
    public GroupNorm(int numGroups, int numChannels, double eps = 1e-5, bool affine = true)
    {
        if (numGroups <= 0 || numChannels <= 0 || numChannels % numGroups != 0)
            throw new ArgumentException($"GroupNorm: numChannels ({numChannels}) must be a positive multiple of numGroups ({numGroups}).");
        NumGroups = numGroups;
        NumChannels = numChannels;
        Eps = eps;
        Affine = affine;
        if (affine)
        {
            RegisterParameter("weight", NormalizationHelpers.Constant(new[] { numChannels }, 1));
            RegisterParameter("bias", NormalizationHelpers.Constant(new[] { numChannels }, 0));
        }
        else
        {
            RegisterAbsentParameter("weight");
            RegisterAbsentParameter("bias");
        }
    }

    /// <summary>G, the number of groups the channels are divided into.</summary>
    public int NumGroups { get; }

    /// <summary>C, the number of channels expected on axis 1.</summary>
    public int NumChannels { get; }

    /// <summary>ε, added to the variance before the square root.</summary>
    public double Eps { get; }

    /// <summary>Whether the layer has learnable per-channel γ and β.</summary>
    public bool Affine { get; }

    /// <summary>γ, shape (C), or null.</summary>
    public Tensor? Weight => GetParameter("weight");

    /// <summary>β, shape (C), or null.</summary>
    public Tensor? Bias => GetParameter("bias");

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank < 2 || input.Dims[1] != NumChannels)
            throw new ArgumentException($"{Describe()}: expected an input of shape (N, {NumChannels}, *), got {ShapeUtil.Format(input.Dims)}.");
        return Functional.GroupNorm(Describe(), input, NumGroups, Weight, Bias, Eps);
    }

    /// <inheritdoc/>
    protected override string ExtraRepresentation => $"{NumGroups}, {NumChannels}, eps={PythonRepr.Float(Eps)}, affine={PythonRepr.Bool(Affine)}";
}
