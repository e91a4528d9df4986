using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace NormSharp.Benchmarks.SideBySide;

/// <summary>
/// The vector width both engines run with. .NET and libtorch choose theirs when they start (the runtime reads
/// DOTNET_EnableAVX512/DOTNET_EnableAVX2, libtorch ATEN_CPU_CAPABILITY for its own kernels and ONEDNN_MAX_CPU_ISA for
/// oneDNN's when it loads), so a width other than the machine's widest is set by running the benchmark again with
/// those variables, which pins both engines to the same width for a like-for-like comparison.
/// libtorch's matrix products (Linear, matmul) go to the MKL linked into it, which ignores MKL_ENABLE_INSTRUCTIONS on
/// AMD processors (measured here: 80 GFLOP/s with it set to SSE4_2, more than SSE without FMA can reach) and runs at
/// most AVX2 on them; its one code path without AVX is MKL_CBWR=COMPATIBLE (SSE2), which the 128-bit width sets.
/// </summary>
public static class VectorWidth
{
    /// <summary>The environment that runs both engines at <paramref name="bits"/> (512, 256 or 128) on x86; 512 pins
    /// libtorch's own kernels to AVX-512 and leaves oneDNN its default (its AVX-512 kernels).</summary>
    public static IReadOnlyDictionary<string, string> Environment(int bits) => bits switch
    {
        512 => new Dictionary<string, string> { ["ATEN_CPU_CAPABILITY"] = "avx512" },
        256 => new Dictionary<string, string>
        {
            ["DOTNET_EnableAVX512"] = "0", ["ATEN_CPU_CAPABILITY"] = "avx2", ["ONEDNN_MAX_CPU_ISA"] = "AVX2",
        },
        128 => new Dictionary<string, string>
        {
            ["DOTNET_EnableAVX512"] = "0", ["DOTNET_EnableAVX2"] = "0", ["ATEN_CPU_CAPABILITY"] = "default", ["ONEDNN_MAX_CPU_ISA"] = "SSE41",
            ["MKL_CBWR"] = "COMPATIBLE",
        },
        _ => throw new ArgumentException($"--width takes 512, 256 or 128 (bits of a vector), got {bits}."),
    };

    /// <summary>The width .NET's vectors have in this process: the widest accelerated Vector512/256/128.</summary>
    public static int Current => Vector512.IsHardwareAccelerated ? 512 : Vector256.IsHardwareAccelerated ? 256 : 128;

    /// <summary>Fails with the reason when this machine cannot run <paramref name="bits"/>-bit vectors in hardware.</summary>
    public static void CheckSupported(int bits)
    {
        if (!RuntimeInformation.ProcessArchitecture.Equals(Architecture.X64))
            throw new PlatformNotSupportedException($"--width pins x86 instruction sets; this is {RuntimeInformation.ProcessArchitecture} (ARM64 vectors are 128-bit, the default there)");
        if (bits == 512 && !Avx512F.IsSupported) throw new PlatformNotSupportedException("--width 512: this CPU has no AVX-512 (or the runtime has it turned off)");
        if (bits == 256 && !Avx2.IsSupported) throw new PlatformNotSupportedException("--width 256: this CPU has no AVX2 (or the runtime has it turned off)");
    }

    /// <summary>A line naming the instruction sets each engine runs with, for the report's header.</summary>
    public static string Describe()
    {
        string dotnet = Current switch
        {
            512 => "AVX-512 (Vector512)",
            256 => "AVX2 (Vector256)",
            _ => AdvSimdOrSse(),
        };
        string aten = System.Environment.GetEnvironmentVariable("ATEN_CPU_CAPABILITY") is { Length: > 0 } pinned ? $"pinned to {pinned}" : "its default";
        string onednn = System.Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA") is { Length: > 0 } isa ? $"at most {isa}" : "its default";
        string running = LibTorch.CpuCapability() is { } capability ? $", running {capability}" : "";
        string mkl = System.Environment.GetEnvironmentVariable("MKL_CBWR") is { Length: > 0 } branch ? $"MKL_CBWR={branch}" : "its default (at most AVX2 on AMD)";
        return $"vector ISA: NormSharp {dotnet}, {FusedMultiplyAdd()}; libtorch kernels {aten}{running}, oneDNN {onednn}, MKL {mkl}";
    }

    private static string AdvSimdOrSse() => RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? "AdvSimd (Vector128)" : "SSE4.1 (Vector128)";

    private static string FusedMultiplyAdd() => Fma.IsSupported || System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported ? "fused multiply-add" : "no FMA";
}
