using System.Runtime.InteropServices;

namespace NormSharp;

/// <summary>
/// Returns the pooled array of a tensor made outside a <see cref="TensorScope"/> to <see cref="StoragePool{T}"/> once
/// the garbage collector has found its <see cref="Storage"/> unreachable: a plain training loop, like PyTorch's,
/// reuses last step's arrays without the user disposing anything.
/// </summary>
/// <remarks>
/// The signal is a weak handle on the small <see cref="Storage"/> object, which dies young (generation 0 or 1), not on
/// the array, which lives on the large-object heap that only a full collection examines. Three rules make this safe
/// (docs/memory.md):
/// <list type="number">
/// <item>The lease holds the array strongly and the storage weakly, tracking resurrection, so the array is returned
/// only after no object, finalizable ones included, can reach the storage: no tensor the user holds, no view of one,
/// no closure or graph node that saved one.</item>
/// <item>A kernel may still be reading an array whose storage the JIT no longer considers live (a method's last use
/// of a tensor can come before the end of the loop over its span). <see cref="StorageGuard"/> keeps every storage a
/// thread touched reachable until that thread's next safe point, where no kernel frame of it can be running.</item>
/// <item>Arrays are returned only by <see cref="ReturnCollected"/> after a collection, never by a finalizer running
/// on its own thread at an arbitrary moment.</item>
/// </list>
/// </remarks>
internal sealed class StorageLease
{
    // Collections are induced once this many bytes were leased since the last one: reclaiming a step's arrays
    // about once a step keeps the plain loop's working set near the scoped loop's while a young-generation
    // collection (a fraction of a millisecond with few survivors) stays small next to the step.
    private const long BackwardCollectBytes = 16L << 20;
    private const long PoolMissCollectBytes = 256L << 20;

    // A size class nothing rented from over this many sweeps is dropped.
    private const int SweepsPerTrim = 64;

    private static readonly List<StorageLease> s_active = new();
    private static readonly Lock s_lock = new();
    private static int s_sweptAtCollection;
    private static int s_sweeps;
    private static long s_bytesSinceCollection;

    private GCHandle _owner;
    private Array? _array;
    private readonly long _bytes;

    private StorageLease(Storage owner, Array array)
    {
        _owner = GCHandle.Alloc(owner, GCHandleType.WeakTrackResurrection);
        _array = array;
        _bytes = (long)array.Length * (array is float[] ? sizeof(float) : sizeof(double));
    }

    /// <summary>Leases <paramref name="array"/> to <paramref name="owner"/> until the owner is collected.</summary>
    public static StorageLease Register(Storage owner, Array array)
    {
        var lease = new StorageLease(owner, array);
        lock (s_lock)
        {
            s_active.Add(lease);
            s_bytesSinceCollection += lease._bytes;
        }
        return lease;
    }

    /// <summary>The array will not be returned when the owner is collected: a thread touched the storage without
    /// recording it (<see cref="StorageGuard"/>).</summary>
    public void Cancel() => Volatile.Write(ref _array, null);

    /// <summary>The owner returned the array itself (its last tensor was disposed), so a collection has nothing to
    /// reclaim for it.</summary>
    public void Released()
    {
        Cancel();
        lock (s_lock) s_bytesSinceCollection -= _bytes;
    }

    /// <summary>After a garbage collection, returns the arrays of leases whose storage it found unreachable. Cheap
    /// when no collection happened since the last call.</summary>
    public static void ReturnCollected()
    {
        int collections = GC.CollectionCount(0);
        if (collections == Volatile.Read(ref s_sweptAtCollection)) return;
        lock (s_lock)
        {
            if (collections == s_sweptAtCollection) return;
            s_sweptAtCollection = collections;
            for (int i = s_active.Count - 1; i >= 0; i--)
            {
                StorageLease lease = s_active[i];
                if (lease._owner.Target is not null) continue;
                lease._owner.Free();
                s_active[i] = s_active[^1];
                s_active.RemoveAt(s_active.Count - 1);
                Array? array = Volatile.Read(ref lease._array);
                if (array is float[] f) StoragePool<float>.Return(f);
                else if (array is double[] d) StoragePool<double>.Return(d);
            }
            if (++s_sweeps % SweepsPerTrim == 0)
            {
                StoragePool<float>.Trim();
                StoragePool<double>.Trim();
            }
        }
    }

    /// <summary>At the end of a backward pass that freed its graph, when a step's worth of arrays may have died:
    /// collects the young generations and returns what died, if enough was leased since the last time.</summary>
    public static void CollectAfterBackward() => CollectIfLeasedSince(BackwardCollectBytes);

    /// <summary>When the pool has no array of a size: collects if a great deal was leased since the last collection
    /// (a loop with no backward pass, such as inference); returns whether it did.</summary>
    public static bool CollectIfManyOutstanding() => CollectIfLeasedSince(PoolMissCollectBytes);

    private static bool CollectIfLeasedSince(long bytes)
    {
        if (Volatile.Read(ref s_bytesSinceCollection) < bytes) return false;
        lock (s_lock) s_bytesSinceCollection = 0;
        // Generation 1 too: a storage that survived one collection while its step was running is in generation 1
        // when the step ends. Anything alive through two such collections lives longer than a step.
        GC.Collect(1, GCCollectionMode.Forced, blocking: true, compacting: false);
        ReturnCollected();
        return true;
    }

    /// <summary>The number of leases whose storage has not been collected yet, for tests.</summary>
    internal static int ActiveCount
    {
        get { lock (s_lock) return s_active.Count; }
    }
}
