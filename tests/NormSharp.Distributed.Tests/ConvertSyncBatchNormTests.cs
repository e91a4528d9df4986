using NormSharp.Keras;
using NormSharp.Nn;
using Sequential = NormSharp.Keras.Sequential;

namespace NormSharp.Distributed.Tests;

/// <summary>SyncBatchNorm and the conversion in a single process (a process group of size 1).</summary>
public sealed class ConvertSyncBatchNormTests
{
    [Fact]
    public void Conversion_keeps_the_tensors_and_names_and_alone_trains_like_BatchNorm()
    {
        Sequential plain = SeedModels.Cnn(NormalizationKind.Batch, 10, new RandomGenerator(5));
        Sequential converted = SeedModels.Cnn(NormalizationKind.Batch, 10, new RandomGenerator(5));
        var before = converted.Network.StateDict();
        SyncBatchNorm.ConvertSyncBatchNorm(converted.Network);

        Assert.Equal(4, converted.Network.NamedModules().Count(m => m.Module is SyncBatchNorm));
        Assert.DoesNotContain(converted.Network.NamedModules(), m => m.Module is KerasBatchNormalization);
        var after = converted.Network.StateDict();
        Assert.Equal(before.Keys, after.Keys);
        Assert.All(before, p => Assert.Same(p.Value, after[p.Key]));

        Tensor x = Tensor.Normal(new[] { 8, 1, 28, 28 }, generator: new RandomGenerator(1));
        Assert.Equal(plain.Network.Forward(x).ToArray(), converted.Network.Forward(x).ToArray());
        Assert.Equal(plain.Network.StateDict()["1.running_var"].ToArray(), converted.Network.StateDict()["1.running_var"].ToArray());
    }

    [Fact]
    public void Only_Keras_layers_created_synchronized_are_converted_by_the_Keras_conversion()
    {
        var model = new Sequential(new[] { 1, 8, 8 }, new Conv2D(4, 3), new BatchNormalization(synchronized: true), new Conv2D(4, 3), new BatchNormalization());
        SyncBatchNorm.ConvertSynchronizedKerasLayers(model.Network);
        Assert.IsType<SyncBatchNorm>(((NormSharp.Nn.Sequential)model.Network)[1]);
        Assert.IsType<KerasBatchNormalization>(((NormSharp.Nn.Sequential)model.Network)[3]);
    }

    [Fact]
    public void Frozen_layers_stay_BatchNorm()
    {
        var model = new NormSharp.Nn.Sequential(new BatchNorm2d(3), new BatchNorm2d(3));
        ((BatchNorm)model[0]).Freeze();
        SyncBatchNorm.ConvertSyncBatchNorm(model);
        Assert.IsType<BatchNorm2d>(model[0]);
        Assert.IsType<SyncBatchNorm>(model[1]);
    }
}

/// <summary>What a process started without mpirun, or on a machine without Open MPI, gets.</summary>
public sealed class ProcessGroupTests
{
    [Fact]
    public void Without_mpirun_the_world_is_this_process_alone_and_collectives_return_their_input()
    {
        Assert.False(ProcessGroup.LaunchedByMpi);
        ProcessGroup world = ProcessGroup.World;
        Assert.Equal((0, 1), (world.Rank, world.Size));
        double[] values = { 1.5, -2 };
        world.AllReduceSum(values);
        Assert.Equal(new[] { 1.5, -2 }, values);
        Assert.Equal(new[] { 1.5, -2 }, world.AllGather(values));
        Assert.Equal(new[] { "text" }, world.AllGather("text"));
    }

    [Fact]
    public void A_missing_libmpi_is_reported_with_what_to_install()
    {
        var error = Assert.Throws<DllNotFoundException>(() => Mpi.Open(["libmpi-that-is-not-installed.so.99"]));
        Assert.Contains("apt-get install openmpi-bin libopenmpi-dev", error.Message);
        Assert.Contains("libmpi-that-is-not-installed.so.99", error.Message);
    }
}
