namespace NormSharp.Nn;

/// <summary>Weight initializers with PyTorch's definitions (<c>torch.nn.init</c>); all fill a tensor in place.</summary>
public static class Init
{
    /// <summary>Fan-in and fan-out of a weight of shape (out, in, *kernel), as PyTorch computes them.</summary>
    public static (int FanIn, int FanOut) Fans(Tensor weight)
    {
        if (weight.Rank < 2) throw new ArgumentException($"Init.Fans: a weight needs at least 2 axes, got shape {ShapeUtil.Format(weight.Dims)}.");
        int receptive = 1;
        for (int i = 2; i < weight.Rank; i++) receptive *= weight.Dims[i];
        return (weight.Dims[1] * receptive, weight.Dims[0] * receptive);
    }

    /// <summary>Kaiming (He) uniform: U(−b, b) with b = gain·√(3/fanIn), gain = √(2/(1+a²)) for leaky ReLU slope a.
    /// PyTorch's default for Linear and Conv weights is a = √5, which gives b = 1/√fanIn.</summary>
    public static void KaimingUniform(Tensor weight, double a = 0, RandomGenerator? generator = null)
    {
        double gain = Math.Sqrt(2.0 / (1 + a * a));
        double bound = gain * Math.Sqrt(3.0 / Fans(weight).FanIn);
        weight.FillUniform(-bound, bound, generator);
    }

    /// <summary>Kaiming (He) normal: N(0, gain²/fanIn).</summary>
    public static void KaimingNormal(Tensor weight, double a = 0, RandomGenerator? generator = null)
    {
        double gain = Math.Sqrt(2.0 / (1 + a * a));
        weight.FillNormal(0, gain / Math.Sqrt(Fans(weight).FanIn), generator);
    }

    /// <summary>Xavier (Glorot) uniform: U(−b, b) with b = gain·√(6/(fanIn+fanOut)); Keras's default for Dense and Conv.</summary>
    public static void XavierUniform(Tensor weight, double gain = 1, RandomGenerator? generator = null)
    {
        var (fanIn, fanOut) = Fans(weight);
        double bound = gain * Math.Sqrt(6.0 / (fanIn + fanOut));
        weight.FillUniform(-bound, bound, generator);
    }

    /// <summary>Xavier (Glorot) normal: N(0, gain²·2/(fanIn+fanOut)).</summary>
    public static void XavierNormal(Tensor weight, double gain = 1, RandomGenerator? generator = null)
    {
        var (fanIn, fanOut) = Fans(weight);
        weight.FillNormal(0, gain * Math.Sqrt(2.0 / (fanIn + fanOut)), generator);
    }

    /// <summary>U(low, high).</summary>
    public static void Uniform(Tensor tensor, double low = 0, double high = 1, RandomGenerator? generator = null) => tensor.FillUniform(low, high, generator);

    /// <summary>N(mean, std²).</summary>
    public static void Normal(Tensor tensor, double mean = 0, double std = 1, RandomGenerator? generator = null) => tensor.FillNormal(mean, std, generator);

    /// <summary>Sets every element to <paramref name="value"/>.</summary>
    public static void Constant(Tensor tensor, double value)
    {
        tensor.RequireContiguous("Init.Constant");
        if (tensor.DType == DType.Float32) tensor.SpanF.Fill((float)value); else tensor.SpanD.Fill(value);
    }

    /// <summary>PyTorch's default initialization of a Linear/Conv layer: weight Kaiming-uniform with a = √5 (bound
    /// 1/√fanIn) and bias U(−1/√fanIn, 1/√fanIn).</summary>
    public static void PyTorchDefault(Tensor weight, Tensor? bias, RandomGenerator? generator = null)
    {
        KaimingUniform(weight, Math.Sqrt(5), generator);
        if (bias is null) return;
        double bound = 1.0 / Math.Sqrt(Fans(weight).FanIn);
        bias.FillUniform(-bound, bound, generator);
    }
}
