using NormSharp.Keras;
using NormSharp.Serialization;

namespace NormSharp.Onnx.Tests;

/// <summary>The seed CNN's safetensors file holds exactly the state dictionary of the PyTorch definition in
/// docs/interop.md: the same names in the same order, the same shapes, F32 tensors and I64 batch counters.</summary>
public class PyTorchInteropTests
{
    /// <summary>What <c>nn.Sequential(...).state_dict()</c> of docs/interop.md's <c>seed_cnn()</c> holds, written out
    /// from PyTorch's modules: Conv2d (weight, bias), BatchNorm (weight, bias, running_mean, running_var,
    /// num_batches_tracked), Linear (weight, bias).</summary>
    private static IEnumerable<(string Name, int[] Shape)> PyTorchSeedCnnState()
    {
        int channels = 1, index = 0;
        foreach (int filters in new[] { 32, 64, 128 })
        {
            yield return ($"{index}.weight", new[] { filters, channels, 3, 3 });
            yield return ($"{index}.bias", new[] { filters });
            foreach (var entry in BatchNorm(index + 1, filters)) yield return entry;
            channels = filters;
            index += 4;
        }
        yield return ("13.weight", new[] { 128, 128 * 3 * 3 });
        yield return ("13.bias", new[] { 128 });
        foreach (var entry in BatchNorm(15, 128)) yield return entry;
        yield return ("16.weight", new[] { 10, 128 });
        yield return ("16.bias", new[] { 10 });

        static IEnumerable<(string, int[])> BatchNorm(int i, int c) => new[]
        {
            ($"{i}.weight", new[] { c }), ($"{i}.bias", new[] { c }), ($"{i}.running_mean", new[] { c }), ($"{i}.running_var", new[] { c }),
            ($"{i}.num_batches_tracked", Array.Empty<int>()),
        };
    }

    [Fact]
    public void Seed_cnn_safetensors_hold_the_PyTorch_definitions_names_shapes_and_dtypes()
    {
        string path = Path.Combine(Path.GetTempPath(), $"normsharp-pytorch-{Guid.NewGuid():N}.safetensors");
        try
        {
            var (network, _) = TestNetworks.Create("seed-cnn");
            network.SaveSafeTensors(path);
            SafeTensorsContent content = SafeTensors.Load(path);
            var expected = PyTorchSeedCnnState().ToList();
            Assert.Equal(expected.Select(e => e.Name), content.Tensors.Keys);
            foreach (var (name, shape) in expected)
            {
                Assert.Equal(shape, content.Tensors[name].Shape);
                Assert.Equal(name.EndsWith("num_batches_tracked", StringComparison.Ordinal) ? SafeTensorsType.I64 : SafeTensorsType.F32, content.StoredTypes[name]);
            }
            Assert.Equal(3, content.Tensors["1.num_batches_tracked"].Item());
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Keras_BatchNormalization_maps_to_PyTorchs_momentum_and_eps()
    {
        var batchNorm = (Nn.KerasBatchNormalization)((Nn.Sequential)SeedModels.Cnn().Network)[1];
        Assert.Equal(0.01, batchNorm.Momentum!.Value, 12); // PyTorch's momentum = 1 − Keras's 0.99
        Assert.Equal(1e-3, batchNorm.Eps);
    }
}
