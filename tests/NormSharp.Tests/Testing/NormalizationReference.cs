namespace NormSharp.Tests.Testing;

/// <summary>
/// The normalization family written out naively in float64, element by element, as an independent reference:
/// every element i belongs to a statistics group and an affine slot, and y = (x − μ_g)/√(σ²_g + ε)·γ_a + β_a with
/// μ and the biased σ² computed over the group by the textbook two-pass formulas.
/// </summary>
public static class NormalizationReference
{
    /// <summary>Normalizes <paramref name="x"/>; <paramref name="group"/> and <paramref name="affine"/> map an element
    /// index to its group and its γ/β index. Not centred: μ = 0 and σ² is the mean square (RMSNorm).</summary>
    public static double[] Normalize(double[] x, Func<int, int> group, Func<int, int> affine, double[]? gamma, double[]? beta, double eps, bool centered = true)
    {
        var (mean, variance) = Statistics(x, group, centered);
        var y = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            int g = group(i), a = affine(i);
            y[i] = (x[i] - mean[g]) / Math.Sqrt(variance[g] + eps) * (gamma?[a] ?? 1) + (beta?[a] ?? 0);
        }
        return y;
    }

    /// <summary>Per-group mean and biased variance (two passes, float64).</summary>
    public static (Dictionary<int, double> Mean, Dictionary<int, double> Variance) Statistics(double[] x, Func<int, int> group, bool centered = true)
    {
        var sum = new Dictionary<int, double>();
        var count = new Dictionary<int, int>();
        for (int i = 0; i < x.Length; i++)
        {
            int g = group(i);
            sum[g] = sum.GetValueOrDefault(g) + (centered ? x[i] : 0);
            count[g] = count.GetValueOrDefault(g) + 1;
        }
        var mean = sum.ToDictionary(kv => kv.Key, kv => kv.Value / count[kv.Key]);
        var squares = new Dictionary<int, double>();
        for (int i = 0; i < x.Length; i++)
        {
            int g = group(i);
            squares[g] = squares.GetValueOrDefault(g) + (x[i] - mean[g]) * (x[i] - mean[g]);
        }
        return (mean, squares.ToDictionary(kv => kv.Key, kv => kv.Value / count[kv.Key]));
    }

    /// <summary>Group of element i for BatchNorm on (N, C, S): its channel.</summary>
    public static Func<int, int> BatchNormGroup(int channels, int spatial) => i => i / spatial % channels;

    /// <summary>Group of element i for GroupNorm on (N, C, S) with G groups: (sample, channel group).</summary>
    public static Func<int, int> GroupNormGroup(int channels, int spatial, int groups) =>
        i => i / (channels * spatial) * groups + i / spatial % channels / (channels / groups);

    /// <summary>Group of element i when each row of <paramref name="rowLength"/> is its own group (LayerNorm).</summary>
    public static Func<int, int> RowGroup(int rowLength) => i => i / rowLength;

    /// <summary>Largest |a − b| / max(|b|, 1): the relative error, with an absolute floor for values near zero;
    /// infinite when either side has a NaN.</summary>
    public static double MaxRelativeError(double[] expected, double[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        double worst = 0;
        for (int i = 0; i < expected.Length; i++)
            worst = double.IsNaN(actual[i]) || double.IsNaN(expected[i]) ? double.PositiveInfinity
                : Math.Max(worst, Math.Abs(actual[i] - expected[i]) / Math.Max(Math.Abs(expected[i]), 1));
        return worst;
    }

    /// <summary>Float32 normal samples with the given mean and spread, and the same values as float64.</summary>
    public static (Tensor Float, double[] Values) RandomFloat(int seed, double mean, double std, params int[] shape)
    {
        Tensor t = Tensor.Normal(shape, mean, std, DType.Float32, new RandomGenerator((ulong)seed));
        return (t, t.ToDoubleArray());
    }
}
