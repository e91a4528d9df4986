using NormSharp.Nn;
using NormSharp.Optim;

namespace NormSharp.Tests;

/// <summary>The ten-line example of README.md, kept here so the README stays true.</summary>
public class ReadmeExampleTests
{
    [Fact]
    public void Readme_example_learns_the_sign_xor()
    {
        Tensor.ManualSeed(0);
        var model = new Sequential(new Linear(2, 64), new BatchNorm1d(64), new ReLU(), new Linear(64, 2));
        var optimizer = new Adam(model.Parameters(), learningRate: 1e-2);
        var x = Tensor.Normal(new[] { 256, 2 });
        int[] y = x.ToArray().Chunk(2).Select(p => p[0] * p[1] > 0 ? 1 : 0).ToArray();   // XOR of the signs
        double first = 0, last = 0;
        for (int step = 0; step < 200; step++)
        {
            optimizer.ZeroGrad();
            var loss = Functional.CrossEntropy(model.Forward(x), y);
            loss.Backward(); optimizer.Step();
            if (step == 0) first = loss.Item();
            last = loss.Item();
        }
        Assert.True(last < first / 5, $"loss went from {first} to {last}");
        model.Eval();
        int[] predicted = model.Forward(x).ArgMax(1);
        Assert.True(predicted.Zip(y).Count(p => p.First == p.Second) >= 245);
    }
}
