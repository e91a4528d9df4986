using NormSharp.Nn;
using NormSharp.Optim;

namespace NormSharp.Tests.Training;

/// <summary>End to end: layers, losses and an optimizer together learn a problem a linear model cannot.</summary>
public class SpiralTests
{
    /// <summary>Two interleaved spirals of <paramref name="perClass"/> points each, two turns long (Lang &amp; Witbrock
    /// 1988), with radius growing from 0.05 to 1 so the arms never touch.</summary>
    private static (Tensor Points, int[] Labels) TwoSpirals(int perClass)
    {
        var points = new float[2 * perClass * 2];
        var labels = new int[2 * perClass];
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < perClass; i++)
            {
                double t = i / (double)perClass;
                double radius = 0.05 + 0.95 * t, angle = 4 * Math.PI * t + k * Math.PI;
                int n = k * perClass + i;
                points[2 * n] = (float)(radius * Math.Cos(angle));
                points[2 * n + 1] = (float)(radius * Math.Sin(angle));
                labels[n] = k;
            }
        return (Tensor.FromArray(points, 2 * perClass, 2), labels);
    }

    [Fact]
    public void Mlp_trained_with_adam_separates_two_spirals()
    {
        var (points, labels) = TwoSpirals(150);
        var generator = new RandomGenerator(2024);
        var model = new Sequential(
            new Linear(2, 64, generator: generator), new Tanh(),
            new Linear(64, 64, generator: generator), new ReLU(),
            new Linear(64, 2, generator: generator));
        var optimizer = new Adam(model.Parameters(), learningRate: 0.01);
        var criterion = new CrossEntropyLoss();

        double firstLoss = double.NaN, lastLoss = double.NaN;
        for (int epoch = 0; epoch < 300; epoch++)
        {
            using var scope = TensorScope.Begin();
            optimizer.ZeroGrad();
            Tensor loss = criterion.Forward(model.Forward(points), labels);
            loss.Backward();
            optimizer.Step();
            lastLoss = loss.Item();
            if (epoch == 0) firstLoss = lastLoss;
        }

        int[] predicted;
        using (Tensor.NoGrad()) predicted = model.Forward(points).ArgMax(1);
        double accuracy = predicted.Zip(labels).Count(p => p.First == p.Second) / (double)labels.Length;
        Assert.True(accuracy >= 0.99, $"training accuracy {accuracy:P1}, loss {firstLoss:F4} → {lastLoss:F4}");
        Assert.True(lastLoss < 0.1 * firstLoss, $"loss {firstLoss:F4} → {lastLoss:F4}");
    }
}
