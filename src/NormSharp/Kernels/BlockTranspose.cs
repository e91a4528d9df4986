using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace NormSharp.Kernels;

/// <summary>
/// Small float32 blocks transposed in registers, for the packing that makes rows k-major: the GEMM's panels of a
/// transposed operand (<see cref="Gemm"/>) and the implicit convolution's panels (<see cref="Convolution"/>). The
/// callers load the block's rows and handle what is left over with scalar copies; pure data movement, so the bits
/// never depend on which block size ran.
/// </summary>
internal static unsafe class BlockTranspose
{
    /// <summary>Whether <see cref="Store4x4"/> runs in registers (SSE, or AdvSimd on ARM64).</summary>
    public static bool FourByFour => Sse.IsSupported || AdvSimd.Arm64.IsSupported;

    /// <summary>Whether <see cref="Store8x8"/> runs in registers (AVX).</summary>
    public static bool EightByEight => Avx.IsSupported;

    /// <summary>dst[k·dstStride + u] = r_u[k] for u, k &lt; 4. Rows paired element by element (r0[0], r1[0], r0[1],
    /// r1[1]), then the pairs' halves joined. Needs <see cref="FourByFour"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store4x4(Vector128<float> r0, Vector128<float> r1, Vector128<float> r2, Vector128<float> r3, float* dst, nint dstStride)
    {
        if (Sse.IsSupported)
        {
            Vector128<float> low01 = Sse.UnpackLow(r0, r1), high01 = Sse.UnpackHigh(r0, r1);
            Vector128<float> low23 = Sse.UnpackLow(r2, r3), high23 = Sse.UnpackHigh(r2, r3);
            Sse.Store(dst, Sse.MoveLowToHigh(low01, low23));
            Sse.Store(dst + dstStride, Sse.MoveHighToLow(low23, low01));
            Sse.Store(dst + 2 * dstStride, Sse.MoveLowToHigh(high01, high23));
            Sse.Store(dst + 3 * dstStride, Sse.MoveHighToLow(high23, high01));
        }
        else
        {
            Vector128<double> low01 = AdvSimd.Arm64.ZipLow(r0, r1).AsDouble(), high01 = AdvSimd.Arm64.ZipHigh(r0, r1).AsDouble();
            Vector128<double> low23 = AdvSimd.Arm64.ZipLow(r2, r3).AsDouble(), high23 = AdvSimd.Arm64.ZipHigh(r2, r3).AsDouble();
            AdvSimd.Store(dst, AdvSimd.Arm64.ZipLow(low01, low23).AsSingle());
            AdvSimd.Store(dst + dstStride, AdvSimd.Arm64.ZipHigh(low01, low23).AsSingle());
            AdvSimd.Store(dst + 2 * dstStride, AdvSimd.Arm64.ZipLow(high01, high23).AsSingle());
            AdvSimd.Store(dst + 3 * dstStride, AdvSimd.Arm64.ZipHigh(high01, high23).AsSingle());
        }
    }

    /// <summary>dst[k·dstStride + u] = r_u[k] for u, k &lt; 8: in-lane unpacks and shuffles transpose each 4 × 4
    /// quarter, and a 128-bit permute swaps the off-diagonal quarters (about half the instructions per float of four
    /// <see cref="Store4x4"/> blocks). Needs <see cref="EightByEight"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store8x8(Vector256<float> r0, Vector256<float> r1, Vector256<float> r2, Vector256<float> r3,
        Vector256<float> r4, Vector256<float> r5, Vector256<float> r6, Vector256<float> r7, float* dst, nint dstStride)
    {
        // tAB: rows A and B interleaved, positions {0, 1, 4, 5} (low) or {2, 3, 6, 7} (high).
        Vector256<float> t01L = Avx.UnpackLow(r0, r1), t01H = Avx.UnpackHigh(r0, r1), t23L = Avx.UnpackLow(r2, r3), t23H = Avx.UnpackHigh(r2, r3);
        Vector256<float> t45L = Avx.UnpackLow(r4, r5), t45H = Avx.UnpackHigh(r4, r5), t67L = Avx.UnpackLow(r6, r7), t67H = Avx.UnpackHigh(r6, r7);
        // sK: rows 0–3 (or 4–7) at positions K and K + 4.
        Vector256<float> s0 = Avx.Shuffle(t01L, t23L, 0x44), s1 = Avx.Shuffle(t01L, t23L, 0xEE), s2 = Avx.Shuffle(t01H, t23H, 0x44), s3 = Avx.Shuffle(t01H, t23H, 0xEE);
        Vector256<float> s4 = Avx.Shuffle(t45L, t67L, 0x44), s5 = Avx.Shuffle(t45L, t67L, 0xEE), s6 = Avx.Shuffle(t45H, t67H, 0x44), s7 = Avx.Shuffle(t45H, t67H, 0xEE);
        Avx.Store(dst, Avx.Permute2x128(s0, s4, 0x20));
        Avx.Store(dst + dstStride, Avx.Permute2x128(s1, s5, 0x20));
        Avx.Store(dst + 2 * dstStride, Avx.Permute2x128(s2, s6, 0x20));
        Avx.Store(dst + 3 * dstStride, Avx.Permute2x128(s3, s7, 0x20));
        Avx.Store(dst + 4 * dstStride, Avx.Permute2x128(s0, s4, 0x31));
        Avx.Store(dst + 5 * dstStride, Avx.Permute2x128(s1, s5, 0x31));
        Avx.Store(dst + 6 * dstStride, Avx.Permute2x128(s2, s6, 0x31));
        Avx.Store(dst + 7 * dstStride, Avx.Permute2x128(s3, s7, 0x31));
    }
}
