namespace NormSharp;

public sealed partial class Tensor
{
    /// <summary>Reseeds this thread's <see cref="RandomGenerator.Default"/>, which initializers, dropout and shuffling use
    /// when no generator is passed (PyTorch's <c>torch.manual_seed</c>).</summary>
    public static void ManualSeed(ulong seed) => RandomGenerator.Default = new RandomGenerator(seed);

    /// <summary>Uniform samples in [<paramref name="low"/>, <paramref name="high"/>).</summary>
    public static Tensor Uniform(int[] shape, double low = 0, double high = 1, DType dtype = DType.Float32, RandomGenerator? generator = null)
    {
        Tensor t = Allocate(dtype, shape, clear: false);
        t.FillUniform(low, high, generator);
        return t;
    }

    /// <summary>Normal samples with the given mean and standard deviation.</summary>
    public static Tensor Normal(int[] shape, double mean = 0, double std = 1, DType dtype = DType.Float32, RandomGenerator? generator = null)
    {
        Tensor t = Allocate(dtype, shape, clear: false);
        t.FillNormal(mean, std, generator);
        return t;
    }

    /// <summary>Fills this contiguous tensor with uniform samples in [low, high), in place.</summary>
    public void FillUniform(double low, double high, RandomGenerator? generator = null)
    {
        RequireContiguous("FillUniform");
        RandomGenerator g = generator ?? RandomGenerator.Default;
        if (DType == DType.Float32) { Span<float> s = SpanF; for (int i = 0; i < s.Length; i++) s[i] = (float)(low + (high - low) * g.NextDouble()); }
        else { Span<double> s = SpanD; for (int i = 0; i < s.Length; i++) s[i] = low + (high - low) * g.NextDouble(); }
    }

    /// <summary>Fills this contiguous tensor with normal samples, in place.</summary>
    public void FillNormal(double mean, double std, RandomGenerator? generator = null)
    {
        RequireContiguous("FillNormal");
        RandomGenerator g = generator ?? RandomGenerator.Default;
        if (DType == DType.Float32) { Span<float> s = SpanF; for (int i = 0; i < s.Length; i++) s[i] = (float)(mean + std * g.NextNormal()); }
        else { Span<double> s = SpanD; for (int i = 0; i < s.Length; i++) s[i] = mean + std * g.NextNormal(); }
    }
}
