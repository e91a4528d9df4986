using System.Diagnostics;
using System.Globalization;
using NormSharp.Nn;
using NormSharp.Optim;
using TorchSharp;
using static TorchSharp.torch;

namespace NormSharp.Benchmarks.SideBySide;

/// <summary>
/// The memory suite of the quick mode (<c>quick memory [--steps N] [--rounds R] [--threads T]</c>): each workload
/// runs as a plain PyTorch-style loop (no scope, no Dispose), inside a <see cref="TensorScope"/> per step, and in
/// libtorch (a dispose scope per step, as TorchSharp needs), each in a fresh process so that collection counts and
/// peak working sets are its own. Reports the median step time over the steady-state steps (after
/// <see cref="WarmupSteps"/>), garbage collections of each generation per 100 steady-state steps, and the process's
/// peak working set, and how often NormSharp's storage pool had no array to hand out (a fresh allocation). Rounds
/// alternate the three variants so that all see the same machine load.
/// </summary>
public static class MemoryComparison
{
    /// <summary>Steps before the steady state: the JIT tiers up, the pool fills.</summary>
    public const int WarmupSteps = 50;

    private enum Variant { Plain, Scoped, LibTorch }

    private sealed record Case(string Key, string Name, Func<Action> Plain, Func<Action>? LibTorch);

    private static readonly Case[] Cases =
    {
        new("bn2d", "BatchNorm2d 128x32x28x28 fwd+bwd", BatchNormStep, LibTorchBatchNormStep),
        new("cnn", "seed CNN (NormSharp.Nn) train step, batch 128, Adam", CnnStep, SeedCnnWorkloads.LibTorchTrainStep),
        new("fit", "Model.Fit's step (TrainOnBatch; scoped inside)", FitStep, null),
    };

    /// <summary>Runs every case as plain, scoped and libtorch child processes and prints the Markdown table.</summary>
    public static void Run(TextWriter output, int steps, int rounds, int threads)
    {
        output.WriteLine($"NormSharp {typeof(Tensor).Assembly.GetName().Version} vs {LibTorch.Describe()}");
        output.WriteLine($"{Environment.ProcessorCount} logical cores, .NET {Environment.Version}, {QuickComparison.MachineDescription()}; " +
            $"{threads} thread(s), {steps} steps per process ({WarmupSteps} warm-up), {rounds} round(s) alternating plain, scoped, libtorch; " +
            "medians over rounds; GCs per 100 steady-state steps (gen 0/1/2); peak working set of the process.");
        output.WriteLine();
        output.WriteLine("| case | variant | step ms | vs scoped | GC pause ms/step | GCs/100 steps gen0/1/2 | pool misses/100 steps | peak working set MiB | vs scoped |");
        output.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (Case c in Cases)
        {
            var results = new Dictionary<Variant, List<Result>>();
            for (int round = 0; round < rounds; round++)
                foreach (Variant v in Enum.GetValues<Variant>())
                {
                    if (v == Variant.LibTorch && (c.LibTorch is null || !LibTorch.Available)) continue;
                    if (v == Variant.Scoped && c.Key == "fit") continue;
                    Result r = RunChild(c.Key, v, steps, threads);
                    (results.TryGetValue(v, out var list) ? list : results[v] = new List<Result>()).Add(r);
                }
            Result? scoped = results.TryGetValue(Variant.Scoped, out var s) ? Median(s) : null;
            foreach (var (v, list) in results)
            {
                Result r = Median(list);
                string timeRatio = scoped is null || v == Variant.Scoped ? "" : (r.StepMs / scoped.StepMs).ToString("F2", CultureInfo.InvariantCulture) + "×";
                string memoryRatio = scoped is null || v == Variant.Scoped ? "" : (r.PeakMiB / scoped.PeakMiB).ToString("F2", CultureInfo.InvariantCulture) + "×";
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {c.Name} | {v.ToString().ToLowerInvariant()} | {r.StepMs:F2} | {timeRatio} | {r.PauseMs:F2} | {r.Gen0:F1} / {r.Gen1:F1} / {r.Gen2:F1} | {(v == Variant.LibTorch ? "—" : r.Misses.ToString("F1", CultureInfo.InvariantCulture))} | {r.PeakMiB:F0} | {memoryRatio} |"));
            }
        }
    }

    private sealed record Result(double StepMs, double Gen0, double Gen1, double Gen2, double PeakMiB, double PauseMs, double Misses);

    private static Result Median(List<Result> results)
    {
        double M(Func<Result, double> f) { var v = results.Select(f).Order().ToList(); return v[v.Count / 2]; }
        return new Result(M(r => r.StepMs), M(r => r.Gen0), M(r => r.Gen1), M(r => r.Gen2), M(r => r.PeakMiB), M(r => r.PauseMs), M(r => r.Misses));
    }

    private static Result RunChild(string key, Variant variant, int steps, int threads)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
        // Run as "dotnet NormSharp.Benchmarks.dll …" the host is dotnet and the assembly comes first.
        if (Path.GetFileNameWithoutExtension(start.FileName) == "dotnet") start.ArgumentList.Add(typeof(MemoryComparison).Assembly.Location);
        foreach (string a in new[] { "memory-run", key, variant.ToString(), steps.ToString(CultureInfo.InvariantCulture), threads.ToString(CultureInfo.InvariantCulture) })
            start.ArgumentList.Add(a);
        using Process child = Process.Start(start)!;
        string line = child.StandardOutput.ReadToEnd().Trim().Split('\n').Last();
        child.WaitForExit();
        if (child.ExitCode != 0) throw new InvalidOperationException($"memory-run {key} {variant} exited with {child.ExitCode}: {line}");
        double[] v = line.Split(' ').Select(x => double.Parse(x, CultureInfo.InvariantCulture)).ToArray();
        return new Result(v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
    }

    /// <summary>The child process: runs <paramref name="steps"/> steps of one case and variant and prints
    /// "step-ms gen0 gen1 gen2 peak-MiB gc-pause-ms-per-step pool-misses-per-100-steps".</summary>
    public static int RunOne(string key, string variantName, int steps, int threads)
    {
        Case c = Cases.Single(x => x.Key == key);
        var variant = Enum.Parse<Variant>(variantName);
        Parallelism.ThreadCount = threads;
        LibTorch.SetThreads(threads);
        Action step = variant == Variant.LibTorch ? c.LibTorch!() : c.Plain();
        if (variant == Variant.Scoped)
        {
            Action plain = step;
            step = () =>
            {
                using var scope = TensorScope.Begin();
                plain();
            };
        }
        for (int i = 0; i < WarmupSteps; i++) step();
        int gen0 = GC.CollectionCount(0), gen1 = GC.CollectionCount(1), gen2 = GC.CollectionCount(2);
        TimeSpan paused = GC.GetTotalPauseDuration();
        long misses = StoragePool<float>.Misses;
        var times = new List<double>(steps);
        for (int i = WarmupSteps; i < steps; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            step();
            times.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        }
        double per100 = 100.0 / Math.Max(times.Count, 1);
        int g2 = GC.CollectionCount(2) - gen2, g1 = GC.CollectionCount(1) - gen1 - g2, g0 = GC.CollectionCount(0) - gen0 - g1 - g2;
        times.Sort();
        using var self = Process.GetCurrentProcess();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{times[times.Count / 2]:F3} {g0 * per100:F2} {g1 * per100:F2} {g2 * per100:F2} {self.PeakWorkingSet64 / 1048576.0:F1} {(GC.GetTotalPauseDuration() - paused).TotalMilliseconds / times.Count:F3} {(StoragePool<float>.Misses - misses) * per100:F2}"));
        return 0;
    }

    // ---- NormSharp: the loops as a user writes them, without a scope ------------------------------------------

    private static Action BatchNormStep()
    {
        var layer = new BatchNorm2d(32);
        Tensor input = Tensor.Normal(new[] { 128, 32, 28, 28 }, 0.5, 2, generator: new RandomGenerator(1));
        input.RequiresGrad = true;
        Tensor gradOutput = Tensor.Normal(new[] { 128, 32, 28, 28 }, generator: new RandomGenerator(2));
        return () => layer.Forward(input).Backward(gradOutput);
    }

    /// <summary>The seed CNN written with NormSharp.Nn, as README's ten-line loop trains it.</summary>
    public static Action CnnStep()
    {
        var generator = new RandomGenerator(1);
        var model = new Sequential(
            new Conv2d(1, 32, 3, padding: 1, generator: generator), new BatchNorm2d(32), new ReLU(), new MaxPool2d(2),
            new Conv2d(32, 64, 3, padding: 1, generator: generator), new BatchNorm2d(64), new ReLU(), new MaxPool2d(2),
            new Conv2d(64, 128, 3, padding: 1, generator: generator), new BatchNorm2d(128), new ReLU(), new MaxPool2d(2),
            new Nn.Flatten(), new Linear(1152, 128, generator: generator), new ReLU(), new BatchNorm1d(128), new Linear(128, 10, generator: generator));
        var optimizer = new Adam(model.Parameters());
        Tensor images = Tensor.Normal(new[] { 128, 1, 28, 28 }, generator: new RandomGenerator(2));
        int[] labels = Enumerable.Range(0, 128).Select(i => i * 7 % 10).ToArray();
        return () =>
        {
            optimizer.ZeroGrad();
            Tensor loss = Functional.CrossEntropy(model.Forward(images), labels);
            loss.Backward();
            optimizer.Step();
            loss.Item();
        };
    }

    private static Action FitStep()
    {
        var (model, images, labels) = SeedCnnWorkloads.NormSharpModel(128);
        model.Network.Train();
        return () => model.TrainOnBatch(images, labels);
    }

    // ---- libtorch ---------------------------------------------------------------------------------------------

    private static Action LibTorchBatchNormStep()
    {
        var layer = nn.BatchNorm2d(32);
        torch.manual_seed(1);
        torch.Tensor input = (torch.randn(128, 32, 28, 28) * 2 + 0.5).requires_grad_(true);
        torch.Tensor gradOutput = torch.randn(128, 32, 28, 28);
        layer.train();
        return () =>
        {
            using var scope = torch.NewDisposeScope();
            layer.forward(input).backward(new[] { gradOutput });
        };
    }
}
