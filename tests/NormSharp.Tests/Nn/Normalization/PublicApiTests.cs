using NormSharp.Nn;

namespace NormSharp.Tests.Nn.Normalization;

/// <summary>The public API exactly as the issue and the docs write it.</summary>
public class PublicApiTests
{
    [Fact]
    public void The_issue_snippet_runs_as_written()
    {
        var x = Tensor.FromArray(Enumerable.Range(0, 2 * 32 * 3 * 3).Select(i => (float)Math.Sin(i)).ToArray(), 2, 32, 3, 3);
        var bn = new BatchNorm2d(numFeatures: 32, eps: 1e-5, momentum: 0.1, affine: true, trackRunningStats: true);
        Tensor y = bn.Forward(x);
        bn.Train();
        bn.Eval();
        Assert.Equal(new[] { 2, 32, 3, 3 }, y.Shape);
        Assert.True(bn.Weight!.RequiresGrad && bn.Bias!.RequiresGrad);
        Assert.Equal(32, bn.RunningMean!.Length + bn.RunningVar!.Length - 32);
        Assert.Equal(1, bn.NumBatchesTracked!.Item());
        Assert.Null(new BatchNorm1d(4, momentum: null).Momentum);
        var modules = new Module[]
        {
            new BatchNorm1d(32), new BatchNorm3d(32), new LayerNorm(normalizedShape: new[] { 768 }, eps: 1e-5, elementwiseAffine: true),
            new GroupNorm(4, 32, 1e-5, true), new InstanceNorm2d(32), new RMSNorm(new[] { 768 }),
        };
        Assert.Equal(6, modules.Length);
    }
}
