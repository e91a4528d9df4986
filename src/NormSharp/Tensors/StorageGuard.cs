using System.Runtime.CompilerServices;

namespace NormSharp;

/// <summary>
/// Keeps every leased <see cref="Storage"/> a thread touched reachable until that thread's next safe point, so that a
/// kernel reading an array whose tensor the JIT already considers dead can never see the array returned to the pool
/// and rented again under it (see <see cref="StorageLease"/>).
/// </summary>
/// <remarks>
/// A thread touches a storage through <see cref="Tensor"/>'s storage accessor, the only way library code reaches a
/// tensor's array. Spans and array segments of it live only inside tensor operations and kernels, which never call
/// back into a module, an optimizer or the autograd engine; so a thread entering one of those holds no span, and the
/// entry is a safe point for it (<see cref="SafePoint"/>): <c>Tensor.Backward</c>, <c>Optimizer.Step</c> and
/// <c>ZeroGrad</c>, <c>Sequential.Forward</c>, each batch of <c>Model.Predict</c>, and a kernel worker thread between
/// parallel loops. A thread that touches a great deal without reaching a safe point (a loop of bare tensor operations)
/// cancels the leases of what it holds and lets them go: those arrays are left to the garbage collector, as before
/// leases existed, rather than kept alive.
/// </remarks>
internal static class StorageGuard
{
    private const int MaximumHeld = 4096;
    private const long MaximumHeldBytes = 512L << 20;

    private sealed class Holds
    {
        public readonly List<Storage> Storages = new();
        public object Epoch = new();
        public long Bytes;

        public void Clear()
        {
            Storages.Clear();
            Epoch = new object();
            Bytes = 0;
        }
    }

    [ThreadStatic] private static Holds? t_holds;

    /// <summary>Records that this thread may read <paramref name="storage"/>'s array until its next safe point.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Hold(Storage storage)
    {
        Holds? holds = t_holds;
        if (holds is null || !ReferenceEquals(storage.HeldIn, holds.Epoch)) Record(storage);
    }

    private static void Record(Storage storage)
    {
        Holds holds = t_holds ??= new Holds();
        holds.Storages.Add(storage);
        storage.HeldIn = holds.Epoch;
        holds.Bytes += storage.Float?.Length * (long)sizeof(float) ?? storage.Double?.Length * (long)sizeof(double) ?? 0;
        if (holds.Storages.Count <= MaximumHeld && holds.Bytes <= MaximumHeldBytes) return;
        foreach (Storage held in holds.Storages) held.Lease!.Cancel();
        holds.Clear();
    }

    /// <summary>Declares that no frame of this thread holds a span or array segment of a tensor: the storages it
    /// touched so far may be collected and their arrays reused.</summary>
    public static void SafePoint()
    {
        Holds? holds = t_holds;
        if (holds is not null && holds.Storages.Count > 0) holds.Clear();
    }

    /// <summary>The number of storages this thread holds, for tests.</summary>
    internal static int HeldCount => t_holds?.Storages.Count ?? 0;
}
