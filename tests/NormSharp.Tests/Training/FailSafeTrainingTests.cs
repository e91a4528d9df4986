using NormSharp.Tests.Testing;
using NormSharp.Keras;
using NormSharp.Optim;
using NormSharp.Serialization;
using NormSharp.Training;

namespace NormSharp.Tests.Training;

/// <summary>Long runs fail safely: a diverging loss stops training at the batch it happens, a folder that cannot be
/// written is reported before training, a disk that fills during training leaves the last checkpoint intact, and two
/// runs cannot share an output folder. Full disks and read-only folders are simulated through
/// <see cref="AtomicFile.Intercept"/>, since these tests may run as root, which permission bits do not stop.</summary>
public sealed class FailSafeTrainingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("normsharp-failsafe-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Keras.Sequential CompiledMlp(ulong seed)
    {
        var model = new Keras.Sequential(new[] { 1, 28, 28 }, new RandomGenerator(seed),
            new Keras.Flatten(), new Dense(16, activation: "relu"), new Dense(10, activation: "softmax"));
        model.Compile(new Adam(model.Network.Parameters(), 1e-2), "categorical_crossentropy", "accuracy");
        return model;
    }

    private string CheckpointPath => Path.Combine(_dir, "checkpoint.safetensors");

    /// <summary>Sets the first weight to NaN after batch <paramref name="batch"/> of epoch <paramref name="epoch"/>, so
    /// the next batch's loss is NaN.</summary>
    private sealed class PoisonWeights(int epoch, int batch) : Callback
    {
        public bool TrainEnded { get; private set; }

        public override void OnBatchEnd(BatchProgress progress, TrainingContext context)
        {
            if (progress.Epoch != epoch || progress.Batch != batch) return;
            Tensor weight = context.Model.Network.Parameters().First();
            float[] values = weight.ToArray();
            values[0] = float.NaN;
            weight.CopyFrom(values);
        }

        public override void OnTrainEnd(TrainingContext context) => TrainEnded = true;
    }

    [Fact]
    public void A_nan_loss_stops_training_at_its_epoch_and_batch_and_keeps_the_last_good_checkpoint()
    {
        var model = CompiledMlp(1);
        var poison = new PoisonWeights(epoch: 2, batch: 2);
        var e = Assert.Throws<NonFiniteLossException>(() =>
            model.Fit(TestDigits.Train(64), epochs: 4, batchSize: 16, callbacks: new Callback[] { new ModelCheckpoint(CheckpointPath), poison }));

        Assert.Equal((2, 3), (e.Epoch, e.Batch));
        Assert.True(double.IsNaN(e.Loss));
        Assert.Contains("epoch 2, batch 3 of 4 is NaN", e.Message);
        Assert.True(poison.TrainEnded, "callbacks get OnTrainEnd before the exception");
        Assert.Equal(1, model.EpochsCompleted);

        var restored = CompiledMlp(99);
        restored.LoadCheckpoint(CheckpointPath);
        Assert.Equal(1, restored.EpochsCompleted);
        Assert.All(restored.Network.Parameters(), p => Assert.All(p.ToArray(), v => Assert.True(float.IsFinite(v))));
        // The NaN batch's update was not applied: only the poisoned weight is NaN, the other weights stayed finite.
        Assert.Equal(1, model.Network.Parameters().Sum(p => p.ToArray().Count(float.IsNaN)));
    }

    [Fact]
    public void Terminate_on_nan_can_be_turned_off()
    {
        var model = CompiledMlp(2);
        model.TerminateOnNaN = false;
        model.Fit(TestDigits.Train(64), epochs: 3, batchSize: 16, callbacks: new[] { new PoisonWeights(epoch: 2, batch: 2) });
        Assert.Equal(3, model.EpochsCompleted);
        Assert.True(double.IsNaN(model.History.Values("loss")[1]));
    }

    [Fact]
    public void A_read_only_output_folder_is_reported_before_training()
    {
        var model = CompiledMlp(3);
        float[] before = model.Network.Parameters().First().ToArray();
        var e = Assert.Throws<IOException>(() => WithIntercept(
            (path, _) => throw new UnauthorizedAccessException($"Access to the path '{path}' is denied."),
            () => model.Fit(TestDigits.Train(32), epochs: 2, batchSize: 16, callbacks: new[] { new ModelCheckpoint(CheckpointPath) })));
        Assert.Contains("cannot write checkpoints to", e.Message);
        Assert.Contains("is denied", e.Message);
        Assert.Contains("nothing was trained", e.Message);
        Assert.Equal(0, model.EpochsCompleted);
        Assert.Equal(before, model.Network.Parameters().First().ToArray());
        Assert.Empty(Directory.GetFiles(_dir));
    }

    [Fact]
    public void A_disk_without_room_for_one_checkpoint_is_reported_before_training()
    {
        var model = CompiledMlp(4);
        var e = Assert.Throws<IOException>(() => WithIntercept(
            (_, file) => new FullDiskStream(file, freeBytes: 1000),
            () => model.Fit(TestDigits.Train(32), epochs: 2, batchSize: 16, callbacks: new[] { new ModelCheckpoint(CheckpointPath) })));
        Assert.Contains("No space left on device", e.Message);
        Assert.Contains("nothing was trained", e.Message);
        Assert.Equal(0, model.EpochsCompleted);
        Assert.Empty(Directory.GetFiles(_dir));
    }

    [Fact]
    public void A_disk_that_fills_during_training_leaves_the_last_checkpoint_intact()
    {
        var model = CompiledMlp(5);
        int writes = 0;
        // The probe before training and the checkpoint of epoch 1 fit; the disk is full when epoch 2 is saved.
        var e = Assert.Throws<IOException>(() => WithIntercept(
            (_, file) => ++writes <= 2 ? file : new FullDiskStream(file, freeBytes: 4096),
            () => model.Fit(TestDigits.Train(32), epochs: 3, batchSize: 16, callbacks: new[] { new ModelCheckpoint(CheckpointPath) })));
        Assert.Contains("saving epoch 2", e.Message);
        Assert.Contains("intact", e.Message);

        Assert.Equal(new[] { "checkpoint.safetensors" }, Directory.GetFiles(_dir).Select(Path.GetFileName)); // no temporary left
        var restored = CompiledMlp(98);
        restored.LoadCheckpoint(CheckpointPath);
        Assert.Equal(1, restored.EpochsCompleted);
    }

    [Fact]
    public void A_second_run_on_the_same_output_folder_is_refused_with_the_first_runs_process_id()
    {
        string folder = Path.Combine(_dir, "run");
        using (OutputFolderLock.Acquire(folder))
        {
            var e = Assert.Throws<IOException>(() => OutputFolderLock.Acquire(folder));
            Assert.Contains($"'{folder}' is in use by another training run (PID {Environment.ProcessId}, started ", e.Message);
        }
        using (OutputFolderLock.Acquire(folder)) { } // released: the next run gets it
        Assert.Equal(new[] { OutputFolderLock.LockFileName }, Directory.GetFiles(folder).Select(Path.GetFileName));
    }

    private static void WithIntercept(Func<string, Stream, Stream> intercept, Action action)
    {
        AtomicFile.Intercept.Value = intercept;
        try { action(); }
        finally { AtomicFile.Intercept.Value = null; }
    }

    /// <summary>A file on a disk with <c>freeBytes</c> left: writing past them fails as Linux reports ENOSPC.</summary>
    private sealed class FullDiskStream(Stream inner, long freeBytes) : Stream
    {
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (inner.Length + buffer.Length > freeBytes) throw new IOException("No space left on device : 'checkpoint'");
            inner.Write(buffer);
        }

        public override void Flush() => inner.Flush();
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
