using NormSharp.Experiments;
using NormSharp.Cli;

namespace NormSharp.Cli;

/// <summary>The <c>normsharp</c> command: train, evaluate, summary, predict, experiment, export, import, bench.</summary>
public static class Program
{
    private const string Usage = """
        normsharp — train and inspect the seed networks with NormSharp

          normsharp train      train a seed model (default: the seed 000 CNN on the embedded MNIST subset)
          normsharp evaluate   test accuracy of a trained model
          normsharp summary    Keras-style layer table
          normsharp predict    classify one digit
          normsharp experiment run an experiment (bn-paper-fig1, norm-compare, ...): CSV, PNG figures, report
          normsharp export     write a trained model as ONNX (--onnx OUT.onnx [--fold-bn])
          normsharp import     load an ONNX model as a NormSharp graph: summary, and a run of an input file
          normsharp bench      time NormSharp against libtorch side by side (runs bench/NormSharp.Benchmarks)
          normsharp help CMD   options of a command
        """;

    public static int Main(string[] argv)
    {
        using var cancellation = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            if (cancellation.IsCancellationRequested) return; // a second Ctrl+C ends the process at once
            e.Cancel = true;
            cancellation.Cancel();
            Console.Error.WriteLine("stopping after this batch (Ctrl+C again to abort)…");
        };
        TextWriter output = Console.Out;
        try
        {
            string command = argv.Length == 0 ? "help" : argv[0];
            var args = new Options(argv.Skip(1));
            return command switch
            {
                "train" => TrainCommand.Run(args, output, cancellation.Token),
                "evaluate" => InspectCommands.Evaluate(args, output),
                "summary" => InspectCommands.Summary(args, output),
                "predict" => InspectCommands.Predict(args, output),
                "experiment" => ExperimentCommand.Run(args, output),
                "export" => ExportCommand.Run(args, output),
                "import" => ImportCommand.Run(args, output),
                "bench" => BenchCommand.Run(args, output),
                "help" or "--help" or "-h" => Help(args.Positional.FirstOrDefault(), output),
                _ => throw new UsageException($"unknown command '{command}'"),
            };
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"normsharp: {e.Message}");
            Console.Error.WriteLine(Usage);
            return 2;
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or IOException or InvalidOperationException or NotSupportedException)
        {
            Console.Error.WriteLine($"normsharp: {e.Message}");
            return 1;
        }
    }

    private static int Help(string? command, TextWriter output)
    {
        output.WriteLine(command switch
        {
            "train" => TrainCommand.Help,
            "evaluate" => InspectCommands.EvaluateHelp,
            "summary" => InspectCommands.SummaryHelp,
            "predict" => InspectCommands.PredictHelp,
            "experiment" => ExperimentCommand.Help,
            "export" => ExportCommand.Help,
            "import" => ImportCommand.Help,
            "bench" => BenchCommand.Help,
            _ => Usage,
        });
        return 0;
    }
}
