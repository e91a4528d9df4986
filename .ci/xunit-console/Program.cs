using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

// The run's first line says which instruction sets the JIT found, so that a log shows what the tests exercised: on
// ARM64 the kernels' 128-bit paths with fused multiply-add (AdvSimd), and SVE only where the CPU reports it.
Console.WriteLine($"NormSharp tests on {RuntimeInformation.ProcessArchitecture}: Vector128 {Vector128.IsHardwareAccelerated}, " +
    $"Vector256 {Vector256.IsHardwareAccelerated}, Vector512 {Vector512.IsHardwareAccelerated}; " +
    (RuntimeInformation.ProcessArchitecture == Architecture.Arm64
        ? $"AdvSimd {AdvSimd.Arm64.IsSupported}, Sve {Sve.IsSupported}"
        : $"Avx2 {Avx2.IsSupported}, Fma {Fma.IsSupported}, Avx512F {Avx512F.IsSupported}"));
return Xunit.ConsoleClient.Program.Main(args);
