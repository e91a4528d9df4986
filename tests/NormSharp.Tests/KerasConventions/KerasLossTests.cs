using NormSharp.Data;
using NormSharp.Keras;
using NormSharp.Nn;
using NormSharp.Training;
using KerasSGD = NormSharp.Keras.Optimizers.SGD;

namespace NormSharp.Tests.KerasConventions;

public class KerasLossTests
{
    private static readonly int[] Labels = { 2, 0, 1, 2 };

    /// <summary>A 4 → 3 softmax classifier on fixed inputs, trained with learning rate 0 so every step returns the
    /// loss of the same weights.</summary>
    private static (Model Model, Tensor Inputs) Classifier(KerasLoss loss, bool softmax = true)
    {
        var linear = new Linear(4, 3, generator: new RandomGenerator(5));
        Module network = softmax ? new NormSharp.Nn.Sequential(linear, new Softmax(1)) : new NormSharp.Nn.Sequential(linear);
        var model = new Model(network, new[] { 4 });
        model.Compile(new KerasSGD(network.Parameters(), 0), loss, "accuracy");
        network.Train();
        return (model, Tensor.Normal(new[] { 4, 4 }, generator: new RandomGenerator(6)));
    }

    private static double ExpectedLoss(Tensor inputs, double smoothing)
    {
        var linear = new Linear(4, 3, generator: new RandomGenerator(5));
        return Functional.CrossEntropy(linear.Forward(inputs), Labels, labelSmoothing: smoothing).Item();
    }

    [Fact]
    public void Categorical_takes_one_hot_rows_and_sparse_takes_integers_for_the_same_loss()
    {
        var (categorical, x) = Classifier(new CategoricalCrossentropy());
        var (sparse, _) = Classifier(new SparseCategoricalCrossentropy());
        double expected = ExpectedLoss(x, 0);
        Assert.Equal(expected, categorical.TrainOnBatch(x, LabelEncoding.OneHot(Labels, 3)), 6);
        Assert.Equal(expected, sparse.TrainOnBatch(x, Labels), 6);
        Assert.Equal(expected, sparse.TrainOnBatch(x, Tensor.FromArray(new float[] { 2, 0, 1, 2 }, 4)), 6);
        Assert.Equal(expected, sparse.TrainOnBatch(x, Tensor.FromArray(new float[] { 2, 0, 1, 2 }, 4, 1)), 6);
    }

    [Fact]
    public void Label_smoothing_mixes_a_uniform_target_into_the_one_hot_rows()
    {
        var (model, x) = Classifier(new CategoricalCrossentropy(labelSmoothing: 0.2));
        double loss = model.TrainOnBatch(x, LabelEncoding.OneHot(Labels, 3));
        Assert.Equal(ExpectedLoss(x, 0.2), loss, 6);
        Assert.NotEqual(ExpectedLoss(x, 0), loss, 3);
    }

    [Fact]
    public void From_logits_reads_the_outputs_as_logits()
    {
        var (model, x) = Classifier(new SparseCategoricalCrossentropy(fromLogits: true), softmax: false);
        Assert.Equal(ExpectedLoss(x, 0), model.TrainOnBatch(x, Labels), 6);
    }

    [Fact]
    public void Probabilities_loss_on_a_network_without_softmax_is_refused_with_the_choices()
    {
        var e = Assert.Throws<ArgumentException>(() => Classifier(new CategoricalCrossentropy(), softmax: false));
        Assert.Contains("fromLogits: true", e.Message);
        Assert.Contains("softmax", e.Message);
    }

    [Fact]
    public void Integer_labels_given_to_the_categorical_loss_are_refused_with_the_choices()
    {
        var (model, x) = Classifier(new CategoricalCrossentropy());
        var e = Assert.Throws<ArgumentException>(() => model.TrainOnBatch(x, Labels));
        Assert.Contains("one-hot rows", e.Message);
        Assert.Contains("sparse_categorical_crossentropy", e.Message);
        e = Assert.Throws<ArgumentException>(() => model.TrainOnBatch(x, Tensor.FromArray(new float[] { 2, 0, 1, 2 }, 4)));
        Assert.Contains("one-hot rows of shape (N, classes)", e.Message);
    }

    [Fact]
    public void Rows_that_are_not_one_hot_are_refused_naming_the_row()
    {
        var (model, x) = Classifier(new CategoricalCrossentropy());
        var rows = LabelEncoding.OneHot(Labels, 3).ToDoubleArray();
        rows[3 * 1 + 1] = 0.5; // row 1 now holds 1 and 0.5
        var e = Assert.Throws<ArgumentException>(() => model.TrainOnBatch(x, Tensor.FromArray(rows.Select(v => (float)v).ToArray(), 4, 3)));
        Assert.Contains("row 1", e.Message);
        Assert.Contains("not one-hot", e.Message);
        Assert.Contains("sparse_categorical_crossentropy", e.Message);
    }

    [Fact]
    public void One_hot_rows_given_to_the_sparse_loss_are_refused_with_the_choices()
    {
        var (model, x) = Classifier(new SparseCategoricalCrossentropy());
        var e = Assert.Throws<ArgumentException>(() => model.TrainOnBatch(x, LabelEncoding.OneHot(Labels, 3)));
        Assert.Contains("integer labels", e.Message);
        Assert.Contains("'categorical_crossentropy'", e.Message);
        e = Assert.Throws<ArgumentException>(() => model.TrainOnBatch(x, Tensor.FromArray(new float[] { 2, 0.5f, 1, 2 }, 4)));
        Assert.Contains("not a class label", e.Message);
    }

    [Fact]
    public void Unknown_loss_and_metric_names_list_the_valid_ones()
    {
        var model = new Model(new NormSharp.Nn.Sequential(new Linear(4, 3), new Softmax(1)), new[] { 4 });
        var e = Assert.Throws<ArgumentException>(() => model.Compile("adam", "hinge"));
        Assert.Contains("categorical_crossentropy, sparse_categorical_crossentropy", e.Message);
        e = Assert.Throws<ArgumentException>(() => model.Compile("adam", "categorical_crossentropy", "sparse_categorical_accuracy"));
        Assert.Contains("accuracy, acc, categorical_accuracy", e.Message);
        model.Compile("adam", "sparse_categorical_crossentropy", "sparse_categorical_accuracy");
        Assert.Equal(new[] { "accuracy" }, model.Metrics);
        Assert.IsType<NormSharp.Keras.Optimizers.Adam>(model.Optimizer);
    }
}
