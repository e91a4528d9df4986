using NormSharp.Experiments;
using NormSharp.Data;
using NormSharp.Keras;
using SkiaSharp;

namespace NormSharp.Cli;

/// <summary><c>normsharp evaluate</c>, <c>summary</c> and <c>predict</c>: use a model written by <c>train</c>.</summary>
internal static class InspectCommands
{
    public const string EvaluateHelp = """
        normsharp evaluate --model-file FILE [--dataset NAME] [--data-dir DIR] [--batch-size N] [--threads N]
          loss and accuracy of a trained model on a data set's test part (default: the data set it was trained on is not
          recorded in the file, so mnist-subset unless --dataset is given)
        """;

    public const string SummaryHelp = """
        normsharp summary [--model NAME] [--norm KIND] [--model-file FILE]
          the Keras-style layer table of a seed model (default seed-cnn with batch normalization), or of a trained model
        """;

    public const string PredictHelp = """
        normsharp predict --model-file FILE (--image PNG | --index N [--dataset NAME] [--data-dir DIR])
          class probabilities for one digit: a PNG image (any size; scaled to 28×28 grayscale, inverted if the digit is
          dark on light) or test image number N of the data set
        """;

    public static int Evaluate(Options args, TextWriter output)
    {
        string modelFile = Require(args, "model-file");
        string dataset = args.String("dataset", "mnist-subset");
        string? dataDir = args.String("data-dir");
        int batchSize = args.Int("batch-size", 256, 1);
        Parallelism.ThreadCount = args.Int("threads", Environment.ProcessorCount, 1, 1024);
        args.RejectUnknown("evaluate");
        Keras.Sequential model = ModelFile.Load(modelFile);
        LoadedDataset data = Datasets.Load(dataset, new DatasetOptions { DataDirectory = dataDir, Log = output.WriteLine });
        var result = model.Evaluate(data.Test, batchSize);
        output.WriteLine($"{data.Name} test ({data.Test.Count} images): accuracy {result["accuracy"]:P2}, loss {result["loss"]:F4}");
        return 0;
    }

    public static int Summary(Options args, TextWriter output)
    {
        string? modelFile = args.String("model-file");
        string name = args.Choice("model", "seed-cnn", SeedModels.Names.ToArray());
        string norm = args.Choice("norm", "batch", SeedModels.NormalizationNames.ToArray());
        args.RejectUnknown("summary");
        Keras.Sequential model = modelFile is not null ? ModelFile.Load(modelFile)
            : SeedModels.Create(name, SeedModels.ParseNormalization(norm));
        output.WriteLine(model.Summary().ToString());
        return 0;
    }

    public static int Predict(Options args, TextWriter output)
    {
        string modelFile = Require(args, "model-file");
        string? image = args.String("image");
        int index = args.Int("index", -1, -1);
        string dataset = args.String("dataset", "mnist-subset");
        string? dataDir = args.String("data-dir");
        args.RejectUnknown("predict");
        if ((image is null) == (index < 0)) throw new UsageException("predict needs exactly one of --image PNG and --index N");

        Keras.Sequential model = ModelFile.Load(modelFile);
        float[] pixels;
        string what;
        int? truth = null;
        if (image is not null)
        {
            pixels = ReadDigit(image);
            what = image;
        }
        else
        {
            LoadedDataset data = Datasets.Load(dataset, new DatasetOptions { DataDirectory = dataDir, Log = output.WriteLine });
            if (index >= data.Test.Count) throw new UsageException($"--index must be below {data.Test.Count}, the number of test images in {data.Name}");
            pixels = data.Test.Image(index).ToArray();
            truth = data.Test.Labels[index];
            what = $"{data.Name} test image {index}";
        }
        float[] probabilities = model.Predict(Tensor.FromArray(pixels, 1, 1, 28, 28)).ToArray();
        int best = Array.IndexOf(probabilities, probabilities.Max());
        output.WriteLine(Ascii(pixels));
        output.WriteLine($"{what}: predicted {best} ({probabilities[best]:P1})" + (truth is int t ? $", label {t}" : ""));
        for (int c = 0; c < probabilities.Length; c++)
            output.WriteLine($"  {c}  {new string('█', (int)Math.Round(probabilities[c] * 40)),-40} {probabilities[c]:P1}");
        return 0;
    }

    /// <summary>Decodes a PNG into 28×28 values in [0, 1] with a light digit on a dark background, as MNIST has.</summary>
    internal static float[] ReadDigit(string path)
    {
        using SKBitmap? decoded = SKBitmap.Decode(path) ?? throw new InvalidDataException($"'{path}' is not an image SkiaSharp can decode (PNG expected).");
        using SKBitmap small = decoded.Resize(new SKImageInfo(28, 28), new SKSamplingOptions(SKFilterMode.Linear));
        var pixels = new float[28 * 28];
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++)
            {
                SKColor c = small.GetPixel(x, y);
                float alpha = c.Alpha / 255f;
                pixels[y * 28 + x] = alpha * (0.299f * c.Red + 0.587f * c.Green + 0.114f * c.Blue) / 255f + (1 - alpha);
            }
        if (pixels.Average() > 0.5f) for (int i = 0; i < pixels.Length; i++) pixels[i] = 1 - pixels[i];
        return pixels;
    }

    private static string Ascii(float[] pixels)
    {
        var sb = new System.Text.StringBuilder();
        for (int y = 0; y < 28; y += 2)
        {
            for (int x = 0; x < 28; x++) sb.Append(" .:-=+*#%@"[(int)(Math.Clamp((pixels[y * 28 + x] + pixels[(y + 1) * 28 + x]) / 2, 0, 0.999f) * 10)]);
            sb.AppendLine();
        }
        return sb.ToString();
    }

    private static string Require(Options args, string name) =>
        args.String(name) ?? throw new UsageException($"--{name} is required");
}
