using NormSharp.Training;
using Spectre.Console;

namespace NormSharp.Cli;

/// <summary>
/// Shows training progress: on an interactive terminal a live bar per epoch (batches, samples/s, ETA, running loss
/// and accuracy); otherwise (CI, pipes, files) one plain line per epoch and a line every few seconds, so logs stay
/// readable.
/// </summary>
internal sealed class TrainingConsole : Callback
{
    private readonly bool _interactive;
    private readonly TextWriter _out;
    private DateTime _lastPlainLine = DateTime.MinValue;
    private ProgressTask? _task;
    private Action? _finishEpoch;

    public TrainingConsole(TextWriter output, bool interactive)
    {
        _out = output;
        _interactive = interactive;
    }

    public static bool IsInteractive => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive
        && Environment.GetEnvironmentVariable("CI") is null;

    public override void OnEpochBegin(int epoch, TrainingContext context)
    {
        if (!_interactive) return;
        var ready = new ManualResetEventSlim();
        var done = new ManualResetEventSlim();
        var thread = new Thread(() =>
            AnsiConsole.Progress()
                .AutoClear(true)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                .Start(ctx =>
                {
                    _task = ctx.AddTask($"epoch {epoch}", maxValue: 1);
                    ready.Set();
                    done.Wait();
                    _task.Value = _task.MaxValue;
                }))
        { IsBackground = true };
        thread.Start();
        ready.Wait();
        _finishEpoch = () => { done.Set(); thread.Join(); };
    }

    public override void OnBatchEnd(BatchProgress p, TrainingContext context)
    {
        string acc = double.IsNaN(p.Accuracy) ? "" : $" acc {p.Accuracy:P2}";
        if (_interactive && _task is not null)
        {
            _task.MaxValue = p.Batches;
            _task.Value = p.Batch;
            _task.Description = $"epoch {p.Epoch}/{p.Epochs} [grey]{p.Batch}/{p.Batches}[/] loss {p.Loss:F4}{acc} [grey]{p.SamplesPerSecond:F0} img/s[/]";
            return;
        }
        if ((DateTime.UtcNow - _lastPlainLine).TotalSeconds >= 10 && p.Batch < p.Batches)
        {
            _lastPlainLine = DateTime.UtcNow;
            _out.WriteLine($"  epoch {p.Epoch}/{p.Epochs} batch {p.Batch}/{p.Batches} loss {p.Loss:F4}{acc} {p.SamplesPerSecond:F0} img/s eta {p.Remaining.TotalSeconds:F0}s");
        }
    }

    public override void OnEpochEnd(EpochRecord r, TrainingContext context)
    {
        FinishBar();
        string Metric(string name) => r.Metrics.TryGetValue(name, out double v) ? (name.Contains("acc") ? $"{name} {v:P2}" : $"{name} {v:F4}") : "";
        var parts = new[] { "loss", "accuracy", "val_loss", "val_accuracy", "val_accuracy_precise_bn" }.Select(Metric).Where(s => s.Length > 0);
        _out.WriteLine($"epoch {r.Epoch}: {string.Join("  ", parts)}  ({r.Seconds:F1}s, lr {r.LearningRate:G3})");
    }

    public override void OnTrainEnd(TrainingContext context) => FinishBar();

    private void FinishBar()
    {
        _finishEpoch?.Invoke();
        _finishEpoch = null;
        _task = null;
    }

    /// <summary>Prints the history as a table at the end of a run, with <paramref name="footnote"/> (the memory
    /// report) as its caption, or on the line below the Markdown table.</summary>
    public static void PrintTable(TextWriter output, History history, bool interactive, string footnote)
    {
        string[] names = history.MetricNames.ToArray();
        if (interactive)
        {
            var table = new Table().Border(TableBorder.Rounded);
            table.AddColumn("epoch");
            foreach (string n in names) table.AddColumn(new TableColumn(n).RightAligned());
            table.AddColumn(new TableColumn("seconds").RightAligned());
            foreach (EpochRecord e in history.Epochs)
                table.AddRow(new[] { e.Epoch.ToString() }.Concat(names.Select(n => Format(n, e))).Append($"{e.Seconds:F1}").ToArray());
            table.Caption(Markup.Escape(footnote));
            AnsiConsole.Write(table);
            return;
        }
        output.WriteLine("| epoch | " + string.Join(" | ", names) + " | seconds |");
        output.WriteLine("|---:|" + string.Concat(names.Select(_ => "---:|")) + "---:|");
        foreach (EpochRecord e in history.Epochs)
            output.WriteLine($"| {e.Epoch} | " + string.Join(" | ", names.Select(n => Format(n, e))) + $" | {e.Seconds:F1} |");
        output.WriteLine();
        output.WriteLine(footnote);
    }

    private static string Format(string name, EpochRecord e) =>
        !e.Metrics.TryGetValue(name, out double v) ? "" : name.Contains("acc") ? $"{v:P2}" : $"{v:F4}";
}
