using System.Runtime.InteropServices;

namespace NormSharp.Benchmarks.SideBySide;

/// <summary>
/// Pins the calling thread to one logical CPU while the one-thread rows run, so that both engines (which run a
/// one-thread call on the calling thread) are timed on the same core. The cores of a VM need not be alike: on the
/// 2-vCPU benchmark VM one ran FMA-heavy code 20–25 % slower than the other much of the time (measured with taskset),
/// and an unpinned one-thread row compared whichever cores the two engines' blocks happened to land on. Linux only;
/// elsewhere nothing is pinned.
/// </summary>
internal static class CorePinning
{
    private const int MaskWords = 16; // 1,024 logical CPUs

    [DllImport("libc", SetLastError = true)]
    private static extern int sched_getaffinity(int pid, nint size, ulong[] mask);

    [DllImport("libc", SetLastError = true)]
    private static extern int sched_setaffinity(int pid, nint size, ulong[] mask);

    /// <summary>Pins the calling thread to the lowest-numbered CPU it may run on and returns that CPU and a handle that
    /// restores its former set when disposed; (-1, null) where the affinity cannot be read or set.</summary>
    public static (int Cpu, IDisposable? Restore) PinToOneCpu()
    {
        if (!OperatingSystem.IsLinux()) return (-1, null);
        var allowed = new ulong[MaskWords];
        // pid 0: the calling thread.
        if (sched_getaffinity(0, MaskWords * sizeof(ulong), allowed) != 0) return (-1, null);
        int cpu = Array.FindIndex(allowed, word => word != 0) is int word and >= 0
            ? word * 64 + System.Numerics.BitOperations.TrailingZeroCount(allowed[word]) : -1;
        if (cpu < 0) return (-1, null);
        var one = new ulong[MaskWords];
        one[cpu / 64] = 1UL << (cpu % 64);
        if (sched_setaffinity(0, MaskWords * sizeof(ulong), one) != 0) return (-1, null);
        return (cpu, new Restorer(allowed));
    }

    private sealed class Restorer(ulong[] allowed) : IDisposable
    {
        public void Dispose() => _ = sched_setaffinity(0, MaskWords * sizeof(ulong), allowed);
    }
}
