using System.Numerics;
using System.Runtime.CompilerServices;

namespace NormSharp;

/// <summary>What <see cref="StoragePool{T}"/> keeps, whatever the element type.</summary>
internal static class StoragePool
{
    /// <summary>Buffers of at least this many bytes outlive a step often enough, and cost enough to allocate (the
    /// large-object heap, reclaimed only by full collections, starts at 85,000 bytes), to be worth pooling outside a
    /// scope; smaller ones are plain arrays that the youngest generation reclaims for almost nothing.</summary>
    public const int LeasedMinimumBytes = 32 << 10;

    /// <summary>Whether a buffer of <paramref name="length"/> elements made outside a scope is leased.</summary>
    public static bool IsLeased(int length, DType dtype) =>
        (long)length * (dtype == DType.Float32 ? sizeof(float) : sizeof(double)) >= LeasedMinimumBytes;

    /// <summary>The length of the arrays a request for <paramref name="length"/> elements is served with: a power of
    /// two up to 1024, above that the next multiple of an eighth of the power of two below, so that at most 1/8 of an
    /// array is unused and the same shape always lands in the same size class.</summary>
    public static int SizeClass(int length)
    {
        if (length <= 1024) return (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(length, 1));
        long step = 1L << (BitOperations.Log2((uint)(length - 1)) - 3);
        return (int)Math.Min((length + step - 1) / step * step, Array.MaxLength);
    }
}

/// <summary>
/// The arrays behind tensor storage, by size class, shared by all threads. Arrays come back from scopes, from the
/// autograd engine and from <see cref="StorageLease"/>s; a size class that nothing rented from for a trim window is
/// dropped (<see cref="Trim"/>), so the pool follows the shapes of the current loop instead of keeping every shape it
/// ever saw.
/// </summary>
internal static class StoragePool<T>
{
    private sealed class SizeClass
    {
        public readonly Stack<T[]> Arrays = new();
        public bool RentedSinceTrim = true;
    }

    private static readonly Dictionary<int, SizeClass> s_classes = new();
    private static readonly Lock s_lock = new();
    private static long s_misses;

    /// <summary>How many requests found no array of their size class and allocated one.</summary>
    internal static long Misses => Volatile.Read(ref s_misses);

    /// <summary>An array of at least <paramref name="length"/> elements with unspecified contents, pinned (it never
    /// moves, so <see cref="Storage.Start"/> stays aligned).</summary>
    public static T[] Rent(int length)
    {
        int size = StoragePool.SizeClass(length);
        StorageLease.ReturnCollected();
        if (TryTake(size) is T[] pooled) return pooled;
        if (StorageLease.CollectIfManyOutstanding() && TryTake(size) is T[] reclaimed) return reclaimed;
        Interlocked.Increment(ref s_misses);
        return GC.AllocateUninitializedArray<T>(size, pinned: true);
    }

    private static T[]? TryTake(int size)
    {
        lock (s_lock)
        {
            if (!s_classes.TryGetValue(size, out SizeClass? c) || c.Arrays.Count == 0) return null;
            c.RentedSinceTrim = true;
            return c.Arrays.Pop();
        }
    }

    /// <summary>Takes back an array that <see cref="Rent"/> handed out; nothing may use it afterwards.</summary>
    public static void Return(T[] array)
    {
        lock (s_lock)
        {
            if (!s_classes.TryGetValue(array.Length, out SizeClass? c)) s_classes[array.Length] = c = new SizeClass();
            c.Arrays.Push(array);
        }
    }

    /// <summary>Drops the size classes that nothing rented from since the last trim, so that the pool shrinks when a
    /// loop with other shapes follows. A class in use keeps its arrays: it never holds more than the most its loop
    /// had out at once, and trimming it would only make the next step allocate again.</summary>
    public static void Trim()
    {
        lock (s_lock)
        {
            foreach ((int size, SizeClass c) in s_classes)
            {
                if (!c.RentedSinceTrim) s_classes.Remove(size);
                c.RentedSinceTrim = false;
            }
        }
    }

    /// <summary>The number of arrays held now, for tests.</summary>
    internal static int Count
    {
        get { lock (s_lock) return s_classes.Values.Sum(c => c.Arrays.Count); }
    }
}
