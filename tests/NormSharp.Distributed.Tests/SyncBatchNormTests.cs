using System.Globalization;
using NormSharp.Nn;
using NormSharp.Serialization;

namespace NormSharp.Distributed.Tests;

/// <summary>SyncBatchNorm on 2 processes, each holding a part of a batch, against BatchNorm on the whole batch in
/// this process: outputs, input/weight/bias gradients and running statistics (after two batches).</summary>
public sealed class SyncBatchNormTests
{
    private const double Tolerance = 1e-6;

    private sealed record Case(string Name, int[] Shape, int[] Parts, double? Momentum, bool Affine);

    private static IEnumerable<Case> Cases()
    {
        var shapes = new[] { ("1d-NC", new[] { 6, 3 }), ("1d-NCL", new[] { 6, 3, 5 }), ("2d", new[] { 6, 4, 3, 5 }), ("3d", new[] { 6, 2, 3, 4, 2 }) };
        var splits = new[] { ("equal", new[] { 3, 3 }), ("unequal", new[] { 2, 4 }), ("single", new[] { 1, 5 }) };
        foreach (var (shapeName, shape) in shapes)
            foreach (var (splitName, parts) in splits)
                foreach (double? momentum in new double?[] { null, 0.1 })
                    foreach (bool affine in new[] { true, false })
                        yield return new Case($"{shapeName}-{splitName}-momentum{(momentum is null ? "none" : "0.1")}-{(affine ? "affine" : "plain")}", shape, parts, momentum, affine);
        foreach (bool affine in new[] { true, false })
            yield return new Case($"2d-zero-momentum0.1-{(affine ? "affine" : "plain")}", new[] { 6, 4, 3, 5 }, new[] { 6, 0 }, 0.1, affine);
    }

    [Fact]
    public void Two_processes_with_parts_of_a_batch_match_BatchNorm_on_the_whole_batch()
    {
        string directory = Directory.CreateTempSubdirectory("normsharp-syncbn-").FullName;
        try
        {
            Case[] cases = Cases().ToArray();
            var generator = new RandomGenerator(11);
            var inputs = new Dictionary<string, Dictionary<string, Tensor>>();
            foreach (Case c in cases)
            {
                var tensors = new Dictionary<string, Tensor>
                {
                    // Mean 3, spread 2: the merge must not lose the spread to the mean.
                    ["x"] = Tensor.Normal(c.Shape, 3, 2, generator: generator),
                    ["dy"] = Tensor.Normal(c.Shape, 0, 1, generator: generator),
                };
                if (c.Affine)
                {
                    tensors["weight"] = Tensor.Uniform(new[] { c.Shape[1] }, 0.5, 1.5, generator: generator);
                    tensors["bias"] = Tensor.Uniform(new[] { c.Shape[1] }, -0.5, 0.5, generator: generator);
                }
                inputs[c.Name] = tensors;
                SafeTensors.Save(Path.Combine(directory, $"case-{c.Name}.safetensors"), tensors, new Dictionary<string, string>
                {
                    ["parts"] = string.Join(',', c.Parts),
                    ["momentum"] = c.Momentum?.ToString(CultureInfo.InvariantCulture) ?? "none",
                });
            }

            var (exitCode, output) = MpiRun.Run($"-np 2 dotnet {MpiRun.Program("NormSharp.Distributed.Worker")} syncbn {directory}", directory, TimeSpan.FromMinutes(3));
            Assert.True(exitCode == 0, $"the workers failed (exit code {exitCode}):\n{output}");

            var failures = new List<string>();
            double worst = 0;
            foreach (Case c in cases)
            {
                Dictionary<string, Tensor> expected = WholeBatch(c, inputs[c.Name]);
                var ranks = Enumerable.Range(0, 2).Select(r => SafeTensors.Load(Path.Combine(directory, $"out-{c.Name}-rank{r}.safetensors")).Tensors).ToArray();
                var actual = new Dictionary<string, Tensor>
                {
                    ["y"] = Concat(ranks.Where(r => r.ContainsKey("y")).Select(r => r["y"]).ToArray()),
                    ["dx"] = Concat(ranks.Where(r => r.ContainsKey("dx")).Select(r => r["dx"]).ToArray()),
                };
                // dγ and dβ are each process's part; data-parallel training sums them.
                if (c.Affine) foreach (string name in new[] { "dweight", "dbias" }) actual[name] = Sum(ranks[0][name], ranks[1][name]);
                foreach (string name in new[] { "running_mean", "running_var", "num_batches_tracked" })
                    for (int r = 0; r < 2; r++) actual[$"{name} (rank {r})"] = ranks[r][name];
                foreach (var (name, value) in actual)
                {
                    double error = RelativeError(value, expected[name.Split(' ')[0]]);
                    worst = Math.Max(worst, error);
                    if (!(error <= Tolerance)) failures.Add($"{c.Name}: {name} differs by {error:E2} (relative)");
                }
            }
            Assert.True(failures.Count == 0, string.Join('\n', failures));
            Assert.True(worst <= Tolerance, $"largest relative difference {worst:E2}");
        }
        finally { Directory.Delete(directory, recursive: true); }
    }

    /// <summary>BatchNorm1d/2d/3d on the whole batch: forward and backward, then a second forward for the running
    /// statistics, as the workers do.</summary>
    private static Dictionary<string, Tensor> WholeBatch(Case c, Dictionary<string, Tensor> inputs)
    {
        BatchNorm layer = c.Shape.Length switch
        {
            2 or 3 => new BatchNorm1d(c.Shape[1], momentum: c.Momentum, affine: c.Affine),
            4 => new BatchNorm2d(c.Shape[1], momentum: c.Momentum, affine: c.Affine),
            _ => new BatchNorm3d(c.Shape[1], momentum: c.Momentum, affine: c.Affine),
        };
        if (c.Affine) layer.LoadStateDict(new Dictionary<string, Tensor> { ["weight"] = inputs["weight"], ["bias"] = inputs["bias"] }, strict: false);
        Tensor x = inputs["x"].CloneData();
        x.RequiresGrad = true;
        Tensor y = layer.Forward(x);
        y.Backward(inputs["dy"]);
        var result = new Dictionary<string, Tensor> { ["y"] = y.Detach(), ["dx"] = x.Grad! };
        if (c.Affine) (result["dweight"], result["dbias"]) = (layer.Weight!.Grad!, layer.Bias!.Grad!);
        using (Tensor.NoGrad()) layer.Forward(x);
        foreach (var (name, buffer) in layer.NamedBuffers()) result[name] = buffer;
        return result;
    }

    private static Tensor Concat(Tensor[] parts) => parts.Length == 1 ? parts[0] : Tensor.Concat(parts);

    private static Tensor Sum(Tensor a, Tensor b) => Tensor.FromArray(a.ToDoubleArray().Zip(b.ToDoubleArray(), (p, q) => p + q).ToArray(), a.Shape);

    /// <summary>max |actual − expected| / max |expected|.</summary>
    internal static double RelativeError(Tensor actual, Tensor expected)
    {
        Assert.Equal(expected.Shape, actual.Shape);
        double[] a = actual.ToDoubleArray(), e = expected.ToDoubleArray();
        double scale = e.Length == 0 ? 1 : Math.Max(e.Max(Math.Abs), 1e-30);
        return a.Zip(e, (p, q) => Math.Abs(p - q)).DefaultIfEmpty(0).Max() / scale;
    }
}
