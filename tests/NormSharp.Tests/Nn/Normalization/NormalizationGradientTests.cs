using NormSharp.Nn;
using NormSharp.Tests.Testing;

namespace NormSharp.Tests.Nn.Normalization;

/// <summary>Every layer's backward pass against central finite differences in float64, in training and evaluation
/// mode, with and without affine parameters (GradCheck: relative error ≤ 1e-6 for the input and every parameter).</summary>
public class NormalizationGradientTests
{
    public static TheoryData<string, bool, bool> Cases()
    {
        var data = new TheoryData<string, bool, bool>();
        foreach (string layer in new[] { "BatchNorm1d-2d-input", "BatchNorm1d-3d-input", "BatchNorm2d", "BatchNorm3d", "BatchNorm2d-untracked", "KerasBatchNormalization-channels-last",
                     "LayerNorm", "LayerNorm-no-bias", "LayerNorm-2-axes", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d-tracked", "InstanceNorm2d-unbatched", "RMSNorm" })
            foreach (bool training in new[] { true, false })
                foreach (bool affine in new[] { true, false })
                    data.Add(layer, training, affine);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Backward_matches_finite_differences(string layer, bool training, bool affine)
    {
        var (module, shape) = Create(layer, affine);
        // Non-trivial running statistics and affine parameters, so evaluation mode is not the identity.
        using (Tensor.NoGrad()) module.Forward(Tensor.Normal(shape, 0.5, 2, generator: new RandomGenerator(1)));
        foreach (Tensor p in module.Parameters()) p.CopyFrom(Tensor.Normal(p.Shape, 1, 0.3, generator: new RandomGenerator(2)));
        module.Train(training);
        double error = GradCheck.CheckModule(module, GradCheck.Random(3, shape) * 1.5 + 0.25);
        Assert.True(error <= GradCheck.Tolerance);
    }

    internal static (Module Module, int[] Shape) Create(string layer, bool affine) => layer switch
    {
        "BatchNorm1d-2d-input" => (new BatchNorm1d(3, affine: affine), new[] { 5, 3 }),
        "BatchNorm1d-3d-input" => (new BatchNorm1d(3, affine: affine), new[] { 2, 3, 4 }),
        "BatchNorm2d" => (new BatchNorm2d(2, affine: affine), new[] { 2, 2, 3, 3 }),
        "BatchNorm3d" => (new BatchNorm3d(2, affine: affine), new[] { 2, 2, 2, 2, 2 }),
        "BatchNorm2d-untracked" => (new BatchNorm2d(2, affine: affine, trackRunningStats: false), new[] { 3, 2, 2, 2 }),
        "KerasBatchNormalization-channels-last" => (new KerasBatchNormalization(3, axis: -1, center: affine, scale: affine), new[] { 2, 2, 2, 3 }),
        "LayerNorm" => (new LayerNorm(6, elementwiseAffine: affine), new[] { 3, 6 }),
        "LayerNorm-no-bias" => (new LayerNorm(6, elementwiseAffine: affine, bias: false), new[] { 2, 2, 6 }),
        "LayerNorm-2-axes" => (new LayerNorm(new[] { 2, 3 }, elementwiseAffine: affine), new[] { 2, 2, 3 }),
        "GroupNorm" => (new GroupNorm(2, 4, affine: affine), new[] { 2, 4, 3 }),
        "InstanceNorm1d" => (new InstanceNorm1d(3, affine: affine), new[] { 2, 3, 5 }),
        "InstanceNorm2d-tracked" => (new InstanceNorm2d(2, affine: affine, trackRunningStats: true), new[] { 2, 2, 2, 3 }),
        "InstanceNorm2d-unbatched" => (new InstanceNorm2d(2, affine: affine), new[] { 2, 3, 3 }),
        "RMSNorm" => (new RMSNorm(5, elementwiseAffine: affine), new[] { 3, 5 }),
        _ => throw new ArgumentException(layer),
    };
}
