using System.Globalization;
using NormSharp;
using NormSharp.Data;
using NormSharp.Distributed;
using NormSharp.Keras;
using NormSharp.Nn;
using NormSharp.Serialization;
using NormSharp.Training;

// Started by NormSharp.Distributed.Tests under mpirun, one copy per rank:
//   syncbn DIR                      runs every DIR/case-*.safetensors through SyncBatchNorm on this rank's part
//   train sync|nosync float32|float64 OUT STEPS N
//                                   trains the seed CNN data-parallel for STEPS batches of N, saves OUT-rank<r>
//   diverge OUT                     the same without SyncBatchNorm, with one image made NaN: prints which batch and
//                                   rank hold it and where Fit stopped, saves OUT-rank<r>
// Each rank writes its own result files; the tests compare them with one process on the whole batch.
ProcessGroup group = ProcessGroup.World;
Parallelism.ThreadCount = 1;
switch (args[0])
{
    case "syncbn":
        foreach (string file in Directory.GetFiles(args[1], "case-*.safetensors").Order())
            RunSyncBatchNormCase(file, group);
        break;
    case "train":
        Train(args[1] == "sync", args[2] == "float64" ? DType.Float64 : DType.Float32, args[3],
            int.Parse(args[4], CultureInfo.InvariantCulture), int.Parse(args[5], CultureInfo.InvariantCulture), group);
        break;
    case "diverge":
        TrainIntoNaN(args[1], group);
        break;
    default:
        throw new ArgumentException($"unknown mode '{args[0]}'");
}
return 0;

// A case file holds the whole batch (x, dy, optional weight and bias) and says how it is split over the ranks.
static void RunSyncBatchNormCase(string file, ProcessGroup group)
{
    SafeTensorsContent content = SafeTensors.Load(file);
    Tensor x = content.Tensors["x"], dy = content.Tensors["dy"];
    int[] parts = content.Metadata["parts"].Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
    double? momentum = content.Metadata["momentum"] == "none" ? null : double.Parse(content.Metadata["momentum"], CultureInfo.InvariantCulture);
    bool affine = content.Tensors.ContainsKey("weight");
    int start = parts.Take(group.Rank).Sum(), count = parts[group.Rank];

    var layer = new SyncBatchNorm(x.Shape[1], momentum: momentum, affine: affine, processGroup: group);
    if (affine) layer.LoadStateDict(new Dictionary<string, Tensor> { ["weight"] = content.Tensors["weight"], ["bias"] = content.Tensors["bias"] }, strict: false);
    Tensor part = x.Narrow(0, start, count).Contiguous().CloneData();
    part.RequiresGrad = true;
    Tensor y = layer.Forward(part);
    y.Backward(dy.Narrow(0, start, count).Contiguous().CloneData());
    var results = new Dictionary<string, Tensor> { ["y"] = y.Detach(), ["dx"] = part.Grad! };
    if (affine) (results["dweight"], results["dbias"]) = (layer.Weight!.Grad!, layer.Bias!.Grad!);
    // A second batch moves the running statistics again (cumulative average when momentum is null).
    using (Tensor.NoGrad()) layer.Forward(part);
    foreach (var (name, buffer) in layer.NamedBuffers()) results[name] = buffer;
    if (count == 0) { results.Remove("y"); results.Remove("dx"); }
    SafeTensors.Save(file.Replace("case-", "out-").Replace(".safetensors", $"-rank{group.Rank}.safetensors"), results);
}

static void Train(bool sync, DType dtype, string output, int steps, int batchSize, ProcessGroup group)
{
    ImageClassificationDataset train = Datasets.Load("mnist-subset").Train.Subset(Enumerable.Range(0, steps * batchSize).ToArray());
    NormSharp.Keras.Sequential model = SeedModels.Cnn(NormalizationKind.Batch, 10, new RandomGenerator(7));
    model.Network.To(dtype);
    // The optimizer `normsharp train` uses: Keras's Adam (epsilon-hat 1e-7).
    model.Compile(new NormSharp.Keras.Optimizers.Adam(model.Network.Parameters(), 1e-3), "categorical_crossentropy", "accuracy");
    if (sync) SyncBatchNorm.ConvertSyncBatchNorm(model.Network, group);
    using var parallel = DistributedDataParallel.Attach(model, group, [$"steps={steps}", $"batch_size={batchSize}"]);
    model.Fit(train, epochs: 1, batchSize, seed: 3);
    SafeTensors.Save($"{output}-rank{group.Rank}.safetensors", model.Network.StateDict(), storedType: _ => SafeTensorsType.F64);
    Console.WriteLine($"rank {group.Rank}: {parallel.BucketCount} gradient buckets, loss {model.History.Epochs[^1].Metrics["loss"]:R}");
}

// Without SyncBatchNorm only the process whose part holds the NaN image has a NaN loss; every process must stop at
// that batch without stepping.
static void TrainIntoNaN(string output, ProcessGroup group)
{
    const int Steps = 6, BatchSize = 32, Poisoned = 70;
    ImageClassificationDataset clean = Datasets.Load("mnist-subset").Train.Subset(Enumerable.Range(0, Steps * BatchSize).ToArray());
    float[] pixels = clean.Pixels.ToArray();
    pixels.AsSpan(Poisoned * clean.SampleSize, clean.SampleSize).Fill(float.NaN);
    var train = new ImageClassificationDataset(pixels, clean.Labels.ToArray(), clean.Channels, clean.Height, clean.Width, clean.ClassCount, "poisoned");
    var loader = new DataLoader(train, BatchSize, shuffle: true, seed: 3);
    for (int rank = 0; rank < group.Size; rank++)
    {
        int batch = 1;
        foreach (Batch part in loader.Batches(1, rank, group.Size))
            using (part)
            {
                if (part.Indices.Contains(Poisoned) && group.Rank == 0) Console.WriteLine($"poisoned: batch {batch}, rank {rank}");
                batch++;
            }
    }
    NormSharp.Keras.Sequential model = SeedModels.Cnn(NormalizationKind.Batch, 10, new RandomGenerator(7));
    model.Compile(new NormSharp.Keras.Optimizers.Adam(model.Network.Parameters(), 1e-3), "categorical_crossentropy", "accuracy");
    using var parallel = DistributedDataParallel.Attach(model, group);
    try
    {
        model.Fit(train, epochs: 1, BatchSize, seed: 3);
        Console.WriteLine($"rank {group.Rank}: finished");
    }
    catch (NonFiniteLossException e) { Console.WriteLine($"rank {group.Rank}: stopped at batch {e.Batch}"); }
    SafeTensors.Save($"{output}-rank{group.Rank}.safetensors", model.Network.StateDict());
}
