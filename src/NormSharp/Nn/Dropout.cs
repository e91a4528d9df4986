using System.Globalization;

namespace NormSharp.Nn;

/// <summary>
/// Inverted dropout (PyTorch's <c>nn.Dropout</c>): in training mode each element is zeroed with probability p and the
/// survivors are scaled by 1/(1 − p); after <see cref="Module.Eval"/> it is the identity, with no rescaling, because
/// the training-time scaling already keeps the expected activation unchanged.
/// </summary>
public sealed class Dropout : Module
{
    private readonly RandomGenerator? _generator;

    /// <summary>Creates the layer. Masks come from <paramref name="generator"/>, or from
    /// <see cref="RandomGenerator.Default"/> (reseeded by <see cref="Tensor.ManualSeed"/>) when none is given.</summary>
    public Dropout(double p = 0.5, RandomGenerator? generator = null)
    {
        Functional.CheckDropoutProbability(p, "Dropout");
        P = p;
        _generator = generator;
    }

    /// <summary>The probability of zeroing an element.</summary>
    public double P { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => Functional.Dropout(input, P, IsTraining, _generator);

    /// <inheritdoc/>
    protected override string ExtraRepresentation => "p=" + P.ToString(CultureInfo.InvariantCulture);
}
