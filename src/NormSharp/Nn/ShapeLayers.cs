using System.Globalization;

namespace NormSharp.Nn;

/// <summary>Flattens axes startAxis..endAxis into one (PyTorch's <c>nn.Flatten</c>, which keeps the batch axis by
/// default: (N, C, H, W) → (N, C·H·W)). A view when the input is contiguous.</summary>
public sealed class Flatten : Module
{
    /// <summary>Creates the layer; negative axes count from the end.</summary>
    public Flatten(int startAxis = 1, int endAxis = -1)
    {
        StartAxis = startAxis;
        EndAxis = endAxis;
    }

    /// <summary>The first axis merged.</summary>
    public int StartAxis { get; }

    /// <summary>The last axis merged.</summary>
    public int EndAxis { get; }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        int rank = input.Rank;
        int start = StartAxis < 0 ? StartAxis + rank : StartAxis, end = EndAxis < 0 ? EndAxis + rank : EndAxis;
        if (start < 0 || start >= rank || end < 0 || end >= rank || start > end)
            throw new ArgumentException($"{Describe()}: start_dim and end_dim must name axes of the input, start_dim first; got an input of shape {ShapeUtil.Format(input.Dims)}.");
        return input.Flatten(start, end);
    }

    /// <inheritdoc/>
    protected override string ExtraRepresentation => string.Create(CultureInfo.InvariantCulture, $"start_dim={StartAxis}, end_dim={EndAxis}");
}

/// <summary>Reshapes each sample, keeping the batch axis: (N, ...) → (N, *shape), like Keras's <c>Reshape</c>. One
/// entry of the shape may be −1 and is inferred from the sample size.</summary>
public sealed class Reshape : Module
{
    private readonly int[] _shape;

    /// <summary>Creates the layer with the per-sample target shape.</summary>
    public Reshape(params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (shape.Count(s => s == -1) > 1 || shape.Any(s => s < -1))
            throw new ArgumentException($"Reshape: the shape {ShapeUtil.Format(shape)} may hold one -1 and no other negative size.", nameof(shape));
        _shape = (int[])shape.Clone();
    }

    /// <summary>The per-sample target shape (a copy; −1 marks the inferred size).</summary>
    public int[] TargetShape => (int[])_shape.Clone();

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank < 1)
            throw new ArgumentException($"{Describe()}: expected an input with a batch axis, got shape {ShapeUtil.Format(input.Dims)}.");
        int sampleSize = ShapeUtil.Product(input.Dims.AsSpan(1));
        int inferredAt = Array.IndexOf(_shape, -1);
        long known = ShapeUtil.SaturatingProduct(_shape.Where(s => s != -1).ToArray());
        bool fits = inferredAt >= 0 ? known != 0 && sampleSize % known == 0 : known == sampleSize;
        if (!fits)
            throw new ArgumentException($"{Describe()}: each sample of the input of shape {ShapeUtil.Format(input.Dims)} has {sampleSize} elements, which do not fill {ShapeUtil.Format(_shape)}.");
        var dims = new int[_shape.Length + 1];
        dims[0] = input.Dims[0];
        _shape.CopyTo(dims, 1);
        if (inferredAt >= 0) dims[1 + inferredAt] = (int)(sampleSize / known);
        return input.Reshape(dims);
    }

    /// <inheritdoc/>
    protected override string ExtraRepresentation => "shape=" + ShapeUtil.Format(_shape);
}

/// <summary>Returns its input unchanged (PyTorch's <c>nn.Identity</c>): a placeholder where a layer is optional.</summary>
public sealed class Identity : Module
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return input;
    }
}
