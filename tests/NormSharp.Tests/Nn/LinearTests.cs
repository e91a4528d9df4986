using NormSharp.Nn;
using NormSharp.Tests.Testing;

namespace NormSharp.Tests.Nn;

public class LinearTests
{
    [Fact]
    public void Forward_matches_hand_computed_values()
    {
        var layer = new Linear(3, 2);
        layer.Weight.CopyFrom(new float[] { 1, 0, -1, 2, 1, 0 });
        layer.Bias!.CopyFrom(new float[] { 0.5f, -1 });
        var y = layer.Forward(Tensor.FromArray(new float[] { 1, 2, 3, -1, 0, 1 }, 2, 3));
        Assert.Equal(new float[] { -1.5f, 3, -1.5f, -3 }, y.ToArray());
    }

    [Fact]
    public void Backward_matches_finite_differences() => GradCheck.CheckModule(new Linear(4, 3), GradCheck.Random(1, 5, 4));

    [Fact]
    public void Backward_without_bias_on_3d_input_matches_finite_differences() => GradCheck.CheckModule(new Linear(4, 3, bias: false), GradCheck.Random(2, 2, 3, 4));

    [Fact]
    public void Default_initialization_is_uniform_within_one_over_sqrt_fan_in()
    {
        var layer = new Linear(100, 50, generator: new RandomGenerator(3));
        float[] w = layer.Weight.ToArray();
        Assert.All(w, v => Assert.InRange(v, -0.1f, 0.1f));
        Assert.True(w.Max() > 0.09f && w.Min() < -0.09f);
    }

    [Fact]
    public void Wrong_input_width_names_the_layer_and_both_shapes()
    {
        var e = Assert.Throws<ArgumentException>(() => new Linear(784, 128).Forward(Tensor.Zeros(new[] { 32, 100 })));
        Assert.Contains("Linear(in_features=784, out_features=128)", e.Message);
        Assert.Contains("(32, 100)", e.Message);
    }

    [Fact]
    public void State_dict_uses_pytorch_names()
    {
        var model = new Sequential(new Linear(2, 3), new Sequential(new Linear(3, 1)));
        Assert.Equal(new[] { "0.weight", "0.bias", "1.0.weight", "1.0.bias" }, model.StateDict().Keys);
        var copy = new Sequential(new Linear(2, 3), new Sequential(new Linear(3, 1)));
        copy.LoadStateDict(model.StateDict());
        Assert.Equal(model.StateDict()["1.0.weight"].ToArray(), copy.StateDict()["1.0.weight"].ToArray());
        var bad = new Sequential(new Linear(2, 4), new Sequential(new Linear(4, 1)));
        var e = Assert.Throws<ArgumentException>(() => bad.LoadStateDict(model.StateDict()));
        Assert.Contains("0.weight", e.Message);
    }
}
