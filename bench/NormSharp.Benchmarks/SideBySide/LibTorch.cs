using System.Diagnostics;
using TorchSharp;

namespace NormSharp.Benchmarks.SideBySide;

/// <summary>
/// The libtorch peer (TorchSharp-cpu): loads it once, sets its thread count, and explains why it is missing when it
/// cannot load. libtorch is a reference to measure against, so it lives in this benchmark project only.
/// </summary>
public static class LibTorch
{
    private static readonly Lazy<string?> s_loadError = new(TryLoad);

    /// <summary>True when libtorch's native library loaded.</summary>
    public static bool Available => s_loadError.Value is null;

    /// <summary>Why libtorch did not load, or null when it did.</summary>
    public static string? LoadError => s_loadError.Value;

    /// <summary>Sets libtorch's intra-op thread count (its parallel loops, GEMM and convolution).</summary>
    public static void SetThreads(int threads)
    {
        if (Available) torch.set_num_threads(threads);
    }

    /// <summary>The version string the comparison tables print.</summary>
    public static string Describe() => Available
        ? $"libtorch {torch.__version__} (TorchSharp-cpu {typeof(torch).Assembly.GetName().Version})"
        : $"libtorch not loaded: {LoadError}";

    private static string? TryLoad()
    {
        try
        {
            torch.InitializeDeviceType(DeviceType.CPU);
            using var probe = torch.ones(2);
            return null;
        }
        catch (Exception e)
        {
            string message = e.InnerException?.Message ?? e.Message;
            return message + (message.Contains("GLIBCXX", StringComparison.Ordinal) || message.Contains("LibTorchSharp", StringComparison.Ordinal)
                ? " — on Debian 12 run ../shared/tools/enable-torchsharp.sh once (it patches the NuGet cache's copy and builds an LD_PRELOAD shim); this program then sets LD_PRELOAD itself"
                : "");
        }
    }

    /// <summary>
    /// Debian 12's libstdc++ lacks a symbol TorchSharp 0.107's native library asks for; the shim built by
    /// enable-torchsharp.sh provides it, but only through LD_PRELOAD, which must be set before the process starts.
    /// When the shim exists and is not preloaded yet, runs this program again with it and returns the exit code;
    /// returns null when no restart is needed.
    /// </summary>
    public static int? RestartWithShimIfNeeded(string[] args)
    {
        string cache = Environment.GetEnvironmentVariable("XDG_CACHE_HOME")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        string shim = Path.Combine(cache, "torchsharp-debian12", "libiosshim.so");
        string preload = Environment.GetEnvironmentVariable("LD_PRELOAD") ?? "";
        if (!OperatingSystem.IsLinux() || !File.Exists(shim) || preload.Contains(shim, StringComparison.Ordinal)) return null;
        string? host = Environment.ProcessPath;
        if (host is null) return null;
        var start = new ProcessStartInfo(host) { UseShellExecute = false };
        // Run as "dotnet NormSharp.Benchmarks.dll …" the host is dotnet and the assembly comes first.
        if (Path.GetFileNameWithoutExtension(host) == "dotnet") start.ArgumentList.Add(typeof(LibTorch).Assembly.Location);
        foreach (string a in args) start.ArgumentList.Add(a);
        start.Environment["LD_PRELOAD"] = preload.Length == 0 ? shim : shim + ":" + preload;
        using Process child = Process.Start(start)!;
        child.WaitForExit();
        return child.ExitCode;
    }
}
