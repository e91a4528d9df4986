using NormSharp.Keras;
using NormSharp.Optim;
using TorchSharp;
using static TorchSharp.torch;

namespace NormSharp.Benchmarks.SideBySide;

/// <summary>
/// The seed CNN (Conv 3×3 same → BatchNorm → ReLU → MaxPool 2, with 32, 64, 128 filters; Flatten → Dense 128 ReLU →
/// BatchNorm → Dense 10) as NormSharp's Keras-style model and as the same libtorch nn.Sequential: one training step
/// (batch 128, Adam, cross-entropy on the logits) and evaluation-mode inference on a batch of 1000 (softmax included;
/// NormSharp through Model.Predict's fused copy, libtorch through its plain eval forward).
/// </summary>
public static class SeedCnnWorkloads
{
    public const int TrainBatch = 128, InferenceBatch = 1000;

    /// <summary>The training step's name, which the quick mode also measures allocations for.</summary>
    public const string TrainStepName = "train step (batch 128, Adam)";

    public static IEnumerable<Workload> Create()
    {
        yield return new Workload("seed-cnn", TrainStepName, RateUnit.None, 0, NormSharpTrainStep, LibTorchTrainStep);
        yield return new Workload("seed-cnn", "eval inference (batch 1000)", RateUnit.None, 0, NormSharpInference, LibTorchInference);
    }

    /// <summary>A compiled NormSharp seed CNN and one batch of random images and labels.</summary>
    public static (Training.Model Model, Tensor Images, int[] Labels) NormSharpModel(int batch)
    {
        var model = SeedModels.Cnn(generator: new RandomGenerator(1));
        model.Compile(new Adam(model.Network.Parameters()), "sparse_categorical_crossentropy", "accuracy");
        Tensor images = Tensor.Normal(new[] { batch, 1, 28, 28 }, generator: new RandomGenerator(2));
        int[] labels = Enumerable.Range(0, batch).Select(i => i * 7 % 10).ToArray();
        return (model, images, labels);
    }

    private static Action NormSharpTrainStep()
    {
        var (model, images, labels) = NormSharpModel(TrainBatch);
        model.Network.Train();
        return () => model.TrainOnBatch(images, labels);
    }

    /// <summary>What Model.Predict does: builds the fused inference copy (BatchNorm folded, ReLU fused) and runs the
    /// batch through it, softmax included.</summary>
    private static Action NormSharpInference()
    {
        var (model, images, _) = NormSharpModel(InferenceBatch);
        return () =>
        {
            using var scope = TensorScope.Begin();
            model.Predict(images, InferenceBatch);
        };
    }

    private static nn.Module<torch.Tensor, torch.Tensor> LibTorchModel()
    {
        torch.manual_seed(1);
        return nn.Sequential(
            ("conv1", nn.Conv2d(1, 32, 3, padding: 1)), ("bn1", nn.BatchNorm2d(32)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
            ("conv2", nn.Conv2d(32, 64, 3, padding: 1)), ("bn2", nn.BatchNorm2d(64)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
            ("conv3", nn.Conv2d(64, 128, 3, padding: 1)), ("bn3", nn.BatchNorm2d(128)), ("relu3", nn.ReLU()), ("pool3", nn.MaxPool2d(2)),
            ("flatten", nn.Flatten()), ("dense1", nn.Linear(1152, 128)), ("relu4", nn.ReLU()), ("bn4", nn.BatchNorm1d(128)),
            ("dense2", nn.Linear(128, 10)));
    }

    /// <summary>libtorch's training step on the seed CNN: a dispose scope per step, as TorchSharp needs.</summary>
    public static Action LibTorchTrainStep()
    {
        var model = LibTorchModel();
        var optimizer = optim.Adam(model.parameters(), 1e-3);
        torch.Tensor images = torch.randn(TrainBatch, 1, 28, 28);
        torch.Tensor labels = torch.tensor(Enumerable.Range(0, TrainBatch).Select(i => (long)(i * 7 % 10)).ToArray());
        model.train();
        return () =>
        {
            using var scope = torch.NewDisposeScope();
            optimizer.zero_grad();
            torch.Tensor loss = nn.functional.cross_entropy(model.forward(images), labels);
            loss.backward();
            optimizer.step();
            loss.item<float>();
        };
    }

    private static Action LibTorchInference()
    {
        var model = LibTorchModel();
        torch.Tensor images = torch.randn(InferenceBatch, 1, 28, 28);
        model.eval();
        return () =>
        {
            using var scope = torch.NewDisposeScope();
            using (torch.no_grad()) model.forward(images).softmax(1);
        };
    }
}
