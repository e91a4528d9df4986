using NormSharp.Nn;

namespace NormSharp.Tests.Testing;

/// <summary>
/// Compares the analytic gradients of a float64 computation with central finite differences. The scalar under test is
/// L = Σ f(inputs) ⊙ R for a fixed random R, so every output element and every input element is exercised.
/// </summary>
public static class GradCheck
{
    /// <summary>The tolerance the issue sets: ‖analytic − numeric‖ / max(‖analytic‖, ‖numeric‖) ≤ 1e-6 per input.</summary>
    public const double Tolerance = 1e-6;

    /// <summary>Checks the gradient of <paramref name="f"/> with respect to every input; all inputs must be float64.
    /// Returns the largest relative error.</summary>
    public static double Check(Func<Tensor[], Tensor> f, params Tensor[] inputs) => Check(f, inputs, inputs);

    /// <summary>Checks the gradient of <paramref name="f"/>(inputs) with respect to <paramref name="wrt"/>
    /// (inputs and/or parameters that f closes over).</summary>
    public static double Check(Func<Tensor[], Tensor> f, Tensor[] inputs, Tensor[] wrt, double step = 1e-6)
    {
        foreach (Tensor t in wrt)
        {
            Assert.Equal(DType.Float64, t.DType);
            t.RequiresGrad = true;
            t.Grad = null;
        }
        Tensor output = f(inputs);
        Assert.Equal(DType.Float64, output.DType);
        var projection = Tensor.Normal(output.Shape, dtype: DType.Float64, generator: new RandomGenerator(12345));
        (output * projection).Sum().Backward();

        double worst = 0;
        for (int w = 0; w < wrt.Length; w++)
        {
            Tensor t = wrt[w];
            Assert.True(t.Grad is not null, $"input {w} of shape {string.Join("x", t.Shape)} received no gradient");
            double[] analytic = t.Grad!.ToDoubleArray();
            var numeric = new double[t.Length];
            Span<double> values = t.SpanD;
            for (int i = 0; i < t.Length; i++)
            {
                double saved = values[i];
                values[i] = saved + step;
                double plus = Evaluate(f, inputs, projection);
                values[i] = saved - step;
                double minus = Evaluate(f, inputs, projection);
                values[i] = saved;
                numeric[i] = (plus - minus) / (2 * step);
            }
            double diff = 0, na = 0, nn = 0;
            for (int i = 0; i < numeric.Length; i++)
            {
                diff += (analytic[i] - numeric[i]) * (analytic[i] - numeric[i]);
                na += analytic[i] * analytic[i];
                nn += numeric[i] * numeric[i];
            }
            double scale = Math.Max(Math.Sqrt(Math.Max(na, nn)), 1e-12);
            double error = Math.Sqrt(diff) / scale;
            Assert.True(error <= Tolerance,
                $"gradient of input {w} (shape {string.Join("x", t.Shape)}) differs from finite differences: relative error {error:E3}\n" +
                $"analytic: {string.Join(", ", analytic.Take(8).Select(v => v.ToString("G6")))}\nnumeric:  {string.Join(", ", numeric.Take(8).Select(v => v.ToString("G6")))}");
            worst = Math.Max(worst, error);
        }
        return worst;
    }

    /// <summary>Checks a module's gradients with respect to its input and all its parameters, in float64.</summary>
    public static double CheckModule(Module module, Tensor input)
    {
        module.To(DType.Float64);
        Tensor x = input.DType == DType.Float64 ? input : input.To(DType.Float64).Detach();
        Tensor[] wrt = new[] { x }.Concat(module.Parameters()).ToArray();
        return Check(inputs => module.Forward(inputs[0]), new[] { x }, wrt);
    }

    private static double Evaluate(Func<Tensor[], Tensor> f, Tensor[] inputs, Tensor projection)
    {
        using (Tensor.NoGrad()) return (f(inputs) * projection).Sum().Item();
    }

    /// <summary>A float64 tensor of standard normal values from a fixed seed.</summary>
    public static Tensor Random(int seed, params int[] shape) =>
        Tensor.Normal(shape, dtype: DType.Float64, generator: new RandomGenerator((ulong)seed));
}
