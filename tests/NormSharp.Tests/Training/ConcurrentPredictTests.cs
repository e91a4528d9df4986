using NormSharp.Data;
using NormSharp.Keras;
using NormSharp.Optim;
using NormSharp.Tests.Testing;
using NormSharp.Training;

namespace NormSharp.Tests.Training;

/// <summary>One model serving predictions on several threads at once (an inference service).</summary>
public sealed class ConcurrentPredictTests
{
    /// <summary>A model whose results depend on the mode (BatchNorm, Dropout), trained a little and left in training
    /// mode by Fit: a Predict that let another switch it back to training mode would give different numbers.</summary>
    private static (Keras.Sequential Model, ImageClassificationDataset Data) TrainedModel(bool fuse)
    {
        var data = TestDigits.Train(128);
        var model = new Keras.Sequential(new[] { 1, 28, 28 }, new RandomGenerator(11),
            new Keras.Flatten(), new Dense(64, activation: "relu"), new BatchNormalization(), new Keras.Dropout(0.5), new Dense(10, activation: "softmax"));
        model.Compile(new Adam(model.Network.Parameters(), 1e-2), "categorical_crossentropy");
        model.Fit(data, epochs: 1, batchSize: 32);
        model.FuseForInference = fuse;
        return (model, data);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Predict_on_eight_threads_at_once_equals_predicting_one_after_another(bool fuse)
    {
        var (model, data) = TrainedModel(fuse);
        Tensor all = data.ToTensor();
        const int threads = 8, rounds = 6;
        Tensor[] inputs = Enumerable.Range(0, threads).Select(t => all.Narrow(0, t * 16, 16).Contiguous()).ToArray();
        float[][] sequential = inputs.Select(x => model.Predict(x, batchSize: 5).ToArray()).ToArray();
        Assert.True(model.Network.IsTraining, "Predict restores the mode Fit left");

        var results = new float[threads][][];
        var errors = new Exception?[threads];
        using var start = new Barrier(threads);
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            start.SignalAndWait();
            errors[t] = Record.Exception(() => results[t] = Enumerable.Range(0, rounds).Select(_ => model.Predict(inputs[t], batchSize: 5).ToArray()).ToArray());
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());

        // Before the fix, a Predict ending restored training mode under the others: BatchNorm then refused batches of
        // one, or used batch statistics, and Dropout dropped.
        Assert.All(errors, Assert.Null);
        for (int t = 0; t < threads; t++)
            Assert.All(results[t], r => Assert.Equal(sequential[t], r));
        Assert.True(model.Network.IsTraining, "the last Predict to end restores the mode the first one found");
    }

    [Fact]
    public void Predict_while_fit_runs_on_another_thread_is_refused()
    {
        var (model, data) = TrainedModel(fuse: true);
        Tensor sample = data.ToTensor().Narrow(0, 0, 2);
        Exception? fromPredict = null;
        var predictDuringFit = new BatchHook(() =>
        {
            var other = new Thread(() => fromPredict ??= Record.Exception(() => model.Predict(sample)));
            other.Start();
            other.Join();
        });
        model.Fit(data, epochs: 2, batchSize: 64, callbacks: new[] { predictDuringFit });
        var e = Assert.IsType<InvalidOperationException>(fromPredict);
        Assert.Contains("Model.Predict: the model is training (Fit) on another thread", e.Message);
        Assert.Equal(2, model.EpochsCompleted);
        Assert.Equal(new[] { 2, 10 }, model.Predict(sample).Shape); // and works once Fit has returned
    }

    private sealed class BatchHook(Action action) : Callback
    {
        public override void OnBatchEnd(BatchProgress progress, TrainingContext context) => action();
    }
}
