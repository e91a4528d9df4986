using System.Diagnostics;
using System.Runtime.InteropServices;
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
    /// libtorch's own answer to which CPU kernels it dispatches to ("avx512", "avx2", "default"), or null where it
    /// cannot be asked. TorchSharp does not expose at::get_cpu_capability(); it is a C++ function returning a
    /// std::string, called here through its exported name on Linux x64, where a string that short lives inside the
    /// 32-byte std::string object itself (the result is copied out and nothing is freed).
    /// </summary>
    public static unsafe string? CpuCapability()
    {
        if (!Available || !OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return null;
        try
        {
            IntPtr library = NativeLibrary.Load("libtorch_cpu.so", typeof(torch).Assembly, null);
            if (!NativeLibrary.TryGetExport(library, "_ZN2at18get_cpu_capabilityB5cxx11Ev", out IntPtr function)) return null;
            byte* text = stackalloc byte[32];
            ((delegate* unmanaged<byte*, void>)function)(text); // the returned object is built in the caller's memory
            byte* characters = *(byte**)text;
            long length = *(long*)(text + 8);
            return characters == text + 16 && length is > 0 and < 16 ? System.Text.Encoding.ASCII.GetString(characters, (int)length) : null;
        }
        catch (DllNotFoundException) { return null; }
    }

    /// <summary>
    /// glibc malloc's settings for libtorch's buffers, which it allocates and frees on every call: the state glibc's
    /// own adaptation reaches once a block of 32 MiB has been freed (blocks up to its DEFAULT_MMAP_THRESHOLD_MAX,
    /// 32 MiB on 64-bit, stay in the heap, which is trimmed above twice that), set from the start. Left to adapt, a
    /// run's first cases mapped their buffers afresh on every call and faulted on every page: libtorch's conv2
    /// forward took 27-113 ms against 3-10 ms whenever its case came first. Larger buffers are still mapped on each
    /// call, as in any process on glibc's malloc. A variable set by the caller is kept.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string> AllocatorEnvironment = new Dictionary<string, string>
    {
        ["MALLOC_MMAP_THRESHOLD_"] = (32 << 20).ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["MALLOC_TRIM_THRESHOLD_"] = (64 << 20).ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>How libtorch's buffers are allocated in this process, for the table's header.</summary>
    public static string DescribeAllocator() =>
        "libtorch's buffers: glibc malloc with " + string.Join(", ", AllocatorEnvironment.Keys.Select(name =>
            $"{name}={Environment.GetEnvironmentVariable(name) ?? "its default"}")) + " (the same steady state for every case, whatever ran before)";

    /// <summary>
    /// Starts this program again with the environment it needs before anything loads and returns the child's exit
    /// code, or returns null when the present environment already has it: on Debian 12 the shim built by
    /// enable-torchsharp.sh in LD_PRELOAD (its libstdc++ lacks a symbol TorchSharp 0.107's native library asks for),
    /// the variables of <paramref name="extra"/> (a vector width's), and <see cref="AllocatorEnvironment"/>.
    /// </summary>
    public static int? RestartIfNeeded(string[] args, IReadOnlyDictionary<string, string> extra)
    {
        var missing = extra.Where(v => Environment.GetEnvironmentVariable(v.Key) != v.Value).ToDictionary(v => v.Key, v => v.Value);
        foreach (var (name, value) in AllocatorEnvironment)
            if (Environment.GetEnvironmentVariable(name) is null) missing[name] = value;
        string cache = Environment.GetEnvironmentVariable("XDG_CACHE_HOME")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        string shim = Path.Combine(cache, "torchsharp-debian12", "libiosshim.so");
        string preload = Environment.GetEnvironmentVariable("LD_PRELOAD") ?? "";
        if (OperatingSystem.IsLinux() && File.Exists(shim) && !preload.Contains(shim, StringComparison.Ordinal))
            missing["LD_PRELOAD"] = preload.Length == 0 ? shim : shim + ":" + preload;
        string? host = Environment.ProcessPath;
        if (missing.Count == 0 || host is null) return null;
        var start = new ProcessStartInfo(host) { UseShellExecute = false };
        // Run as "dotnet NormSharp.Benchmarks.dll …" the host is dotnet and the assembly comes first.
        if (Path.GetFileNameWithoutExtension(host) == "dotnet") start.ArgumentList.Add(typeof(LibTorch).Assembly.Location);
        foreach (string a in args) start.ArgumentList.Add(a);
        foreach (var (name, value) in missing) start.Environment[name] = value;
        using Process child = Process.Start(start)!;
        child.WaitForExit();
        return child.ExitCode;
    }
}
