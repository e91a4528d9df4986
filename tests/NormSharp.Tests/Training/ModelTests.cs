using NormSharp.Data;
using NormSharp.Keras;
using NormSharp.Optim;
using NormSharp.Training;

namespace NormSharp.Tests.Training;

public sealed class ModelTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("normsharp-model-").FullName;
    private static readonly Lazy<LoadedDataset> s_digits = new(() => Datasets.Load(DatasetCatalog.EmbeddedName, new DatasetOptions { AllowDownload = false }));

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static ImageClassificationDataset Digits(int count) => s_digits.Value.Train.Subset(Enumerable.Range(0, count).ToArray());

    private static Keras.Sequential SmallMlp(ulong seed) => new(new[] { 1, 28, 28 }, new RandomGenerator(seed),
        new Keras.Flatten(), new Dense(32, activation: "relu"), new Dense(10, activation: "softmax"));

    [Fact]
    public void Summary_of_the_seed_cnn_without_normalization_counts_like_keras()
    {
        ModelSummary s = SeedModels.Cnn(NormalizationKind.None).Summary();
        // Keras: conv 320 + 18,496 + 73,856, dense 147,584 + 1,290.
        Assert.Equal(241_546, s.TotalParameters);
        Assert.Equal(0, s.NonTrainableParameters);
        Assert.Equal(new[] { 32, 28, 28 }, s.Rows[0].OutputShape);
        Assert.Equal(new[] { 128, 3, 3 }, s.Rows[^6].OutputShape);
        Assert.Equal(new[] { 1152 }, s.Rows[^5].OutputShape);
        Assert.Equal(new[] { 10 }, s.Rows[^1].OutputShape);
        Assert.Contains("Total params: 241,546", s.ToString());
    }

    [Fact]
    public void Summary_of_the_seed_cnn_with_batch_normalization_has_kerass_counts()
    {
        ModelSummary s = SeedModels.Cnn().Summary();
        Assert.Equal(242_954, s.TotalParameters);
        Assert.Equal(704, s.NonTrainableParameters);
        Assert.Equal(242_250, s.TrainableParameters);
        Assert.Equal(128, s.Rows[1].Parameters); // BatchNormalization(32): gamma, beta, moving mean, moving variance
        Assert.Equal(new[] { "0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked" },
            SeedModels.Cnn().Network.StateDict().Keys.Take(7));
    }

    [Theory]
    [InlineData("seed-cnn", NormalizationKind.Layer)]
    [InlineData("seed-cnn", NormalizationKind.Group)]
    [InlineData("seed-cnn-small", NormalizationKind.Batch)]
    [InlineData("mlp", NormalizationKind.Group)]
    public void Every_seed_model_builds_and_classifies_ten_classes(string name, NormalizationKind norm)
    {
        var model = SeedModels.Create(name, norm);
        Assert.Equal(new[] { 3, 10 }, model.Predict(Tensor.Zeros(new[] { 3, 1, 28, 28 })).Shape);
    }

    [Fact]
    public void Fit_lowers_the_loss_and_records_keras_metrics()
    {
        var model = SmallMlp(1);
        model.Compile(new Adam(model.Network.Parameters(), 1e-2), "categorical_crossentropy", "accuracy");
        History h = model.Fit(Digits(512), epochs: 3, batchSize: 64, validation: Digits(128));
        Assert.Equal(new[] { 1, 2, 3 }, h.Epochs.Select(e => e.Epoch));
        Assert.Equal(new[] { "loss", "accuracy", "val_loss", "val_accuracy" }, h.MetricNames);
        Assert.True(h.Values("loss")[2] < h.Values("loss")[0] * 0.7, $"loss {string.Join(", ", h.Values("loss"))}");
        Assert.True(h.Values("accuracy")[2] > 0.7);
    }

    [Fact]
    public void Evaluate_agrees_with_predict()
    {
        var model = SmallMlp(2);
        model.Compile(new Adam(model.Network.Parameters(), 1e-2), "categorical_crossentropy", "accuracy");
        var data = Digits(300);
        model.Fit(data, epochs: 1, batchSize: 50);
        int[] predicted = model.Predict(data.ToTensor(), batchSize: 64).ArgMax(1);
        int[] labels = data.Labels.ToArray();
        double accuracy = predicted.Zip(labels).Count(p => p.First == p.Second) / 300.0;
        Assert.Equal(accuracy, model.Evaluate(data)["accuracy"], 12);
        float[] row = model.Predict(data.ToTensor().Narrow(0, 0, 1)).ToArray();
        Assert.Equal(1.0, row.Sum(), 5); // softmax output
    }

    [Fact]
    public void Resumed_training_ends_with_the_same_weights_bit_for_bit()
    {
        var data = Digits(256);
        var straight = SmallMlp(3);
        straight.Compile(new Adam(straight.Network.Parameters()), "categorical_crossentropy", "accuracy");
        straight.Fit(data, epochs: 3, batchSize: 32, seed: 9);

        string path = Path.Combine(_dir, "ckpt.safetensors");
        var first = SmallMlp(3);
        first.Compile(new Adam(first.Network.Parameters()), "categorical_crossentropy", "accuracy");
        first.Fit(data, epochs: 1, batchSize: 32, seed: 9, callbacks: new[] { new ModelCheckpoint(path) });

        var resumed = SmallMlp(77); // different initial weights: everything must come from the checkpoint
        resumed.Compile(new Adam(resumed.Network.Parameters()), "categorical_crossentropy", "accuracy");
        resumed.LoadCheckpoint(path);
        Assert.Equal(1, resumed.EpochsCompleted);
        resumed.Fit(data, epochs: 3, batchSize: 32, seed: 9);

        foreach (var (name, tensor) in straight.Network.StateDict())
            Assert.Equal(tensor.ToArray(), resumed.Network.StateDict()[name].ToArray());
        Assert.Equal(straight.History.Values("loss"), resumed.History.Values("loss"));
    }

    [Fact]
    public void Early_stopping_ends_training_when_the_monitored_metric_stalls()
    {
        var model = SmallMlp(4);
        model.Compile(new SGD(model.Network.Parameters(), 0), "categorical_crossentropy", "accuracy");
        var stop = new EarlyStopping("loss", patience: 1, minDelta: 1e-4);
        model.Fit(Digits(64), epochs: 10, batchSize: 16, callbacks: new[] { stop });
        Assert.Equal(3, stop.StoppedEpoch); // epoch 1 sets the best; 2 and 3 do not improve on it
        Assert.Equal(3, model.History.Epochs.Count);
    }

    [Fact]
    public void Learning_rate_scheduler_sets_the_rate_recorded_for_each_epoch()
    {
        var model = SmallMlp(5);
        model.Compile(new SGD(model.Network.Parameters(), 0.1), "categorical_crossentropy");
        model.Fit(Digits(32), epochs: 3, batchSize: 16, callbacks: new[] { new LearningRateCallback((epoch, _) => 0.1 / epoch) });
        Assert.Equal(new[] { 0.1, 0.05, 0.1 / 3 }, model.History.Epochs.Select(e => e.LearningRate));
    }

    [Fact]
    public void Scheduler_callback_positions_a_pytorch_scheduler_by_epoch()
    {
        var model = SmallMlp(8);
        var sgd = new SGD(model.Network.Parameters(), 0.1);
        model.Compile(sgd, "categorical_crossentropy");
        model.Fit(Digits(32), epochs: 4, batchSize: 16, callbacks: new[] { new LearningRateCallback(new StepLR(sgd, stepSize: 2, gamma: 0.5)) });
        Assert.Equal(new[] { 0.1, 0.1, 0.05, 0.05 }, model.History.Epochs.Select(e => e.LearningRate));
    }

    [Fact]
    public void Cancellation_stops_after_the_current_batch_and_keeps_completed_epochs()
    {
        var model = SmallMlp(6);
        model.Compile(new Adam(model.Network.Parameters()), "categorical_crossentropy");
        using var cts = new CancellationTokenSource();
        var cancelInEpoch2 = new CallbackProbe(p => { if (p.Epoch == 2 && p.Batch == 1) cts.Cancel(); });
        model.Fit(Digits(64), epochs: 5, batchSize: 16, callbacks: new[] { cancelInEpoch2 }, cancellation: cts.Token);
        Assert.Equal(1, model.EpochsCompleted);
        Assert.Equal(5, cancelInEpoch2.Batches); // 4 batches of epoch 1, then the first of epoch 2
    }

    [Fact]
    public void Wrong_input_shape_and_uncompiled_use_are_explained()
    {
        var model = SmallMlp(7);
        var e = Assert.Throws<InvalidOperationException>(() => model.Fit(Digits(16), 1));
        Assert.Contains("Compile", e.Message);
        var e2 = Assert.Throws<ArgumentException>(() => model.Predict(Tensor.Zeros(new[] { 2, 28, 28 })));
        Assert.Contains("(N, 1, 28, 28)", e2.Message);
        Assert.Contains("(2, 28, 28)", e2.Message);
        Assert.Throws<ArgumentException>(() => model.Compile(new Adam(model.Network.Parameters()), "hinge"));
    }

    [Fact]
    public void History_round_trips_through_json_and_writes_csv()
    {
        var h = new History();
        h.Add(new EpochRecord(1, new Dictionary<string, double> { ["loss"] = 0.5, ["accuracy"] = 0.8 }, 1e-3, 2.5, 0.5));
        h.Add(new EpochRecord(2, new Dictionary<string, double> { ["loss"] = 0.25, ["accuracy"] = 0.9 }, 1e-3, 2.0, 0.5));
        var copy = History.FromJson(h.ToJson());
        Assert.Equal(h.Values("loss"), copy.Values("loss"));
        Assert.Equal("epoch,loss,accuracy,learning_rate,seconds,validation_seconds\n1,0.5,0.8,0.001,2.5,0.5\n2,0.25,0.9,0.001,2,0.5\n", h.ToCsv());
    }

    private sealed class CallbackProbe(Action<BatchProgress> onBatch) : Callback
    {
        public int Batches { get; private set; }

        public override void OnBatchEnd(BatchProgress progress, TrainingContext context)
        {
            Batches++;
            onBatch(progress);
        }
    }
}
