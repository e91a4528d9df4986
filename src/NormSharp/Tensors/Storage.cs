using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace NormSharp;

/// <summary>The element type of a <see cref="Tensor"/>.</summary>
public enum DType
{
    /// <summary>32-bit IEEE 754 floats: the type networks train in.</summary>
    Float32,
    /// <summary>64-bit IEEE 754 floats: used where precision matters, such as finite-difference gradient checks.</summary>
    Float64,
}

/// <summary>
/// The flat buffer behind one or more tensors (a tensor and its views share one). Exactly one of the arrays is set.
/// Large buffers come from <see cref="StoragePool{T}"/> and go back to it in one of two ways (docs/memory.md):
/// deterministically, when the last tensor sharing them is disposed (by a <see cref="TensorScope"/>, by the autograd
/// engine for gradients only it holds, or by the user); or, for tensors created outside a scope, through a
/// <see cref="StorageLease"/> once the garbage collector finds this object unreachable.
/// </summary>
internal sealed class Storage
{
    public float[]? Float;
    public double[]? Double;

    /// <summary>The index of the element a tensor made on this storage starts at. Pooled arrays are pinned and the
    /// tensor starts on a 64-byte (cache-line) boundary inside them, so that a 512-bit load never straddles two lines:
    /// unaligned, every one did, and reading a 256 MiB tensor with them ran at 22–24 GB/s on one AMD EPYC (Zen 5)
    /// core against 31–37 aligned. Zero for small plain arrays and wrapped ones.</summary>
    public readonly int Start;

    /// <summary>The alignment of <see cref="Start"/>, in bytes.</summary>
    private const int CacheLine = 64;
    private int _references = 1;
    private readonly bool _pooled;

    /// <summary>The lease that returns the array to the pool when this storage becomes unreachable; null for storages
    /// the garbage collector or a scope looks after.</summary>
    internal readonly StorageLease? Lease;

    /// <summary>The <see cref="StorageGuard"/> epoch of the last thread that held this storage, so that a thread
    /// records a storage once per epoch however often its kernels read it.</summary>
    internal object? HeldIn;

    /// <summary>A number that grows with every allocation, so the autograd engine can tell a gradient a backward
    /// function just made (and that nothing else can hold) from one it passed through.</summary>
    internal readonly long Serial;

    private static long s_serial;

    private Storage(float[]? f, double[]? d, bool pooled, bool leased, int start = 0)
    {
        Float = f;
        Double = d;
        Start = start;
        _pooled = pooled;
        Serial = Interlocked.Increment(ref s_serial);
        if (leased) Lease = StorageLease.Register(this, (Array?)f ?? d!);
    }

    /// <summary>The serial number the next storage will be at least.</summary>
    internal static long NextSerial => Volatile.Read(ref s_serial) + 1;

    /// <summary>A buffer of <paramref name="length"/> elements. <paramref name="pooled"/>: rented for a scope, returned
    /// by <see cref="Release"/>. Otherwise a large buffer is rented and leased back to the pool when this storage is
    /// collected, and a small one is a plain array (the youngest generation reclaims those cheaply).</summary>
    public static Storage Allocate(DType dtype, int length, bool clear, bool pooled)
    {
        bool leased = !pooled && StoragePool.IsLeased(length, dtype);
        if (dtype == DType.Float32)
        {
            if (!pooled && !leased) return new Storage(new float[length], null, pooled, leased);
            float[] array = StoragePool<float>.Rent(length + CacheLine / sizeof(float));
            int start = AlignedStart(array);
            if (clear) array.AsSpan(start, length).Clear();
            return new Storage(array, null, pooled, leased, start);
        }
        if (!pooled && !leased) return new Storage(null, new double[length], pooled, leased);
        double[] d = StoragePool<double>.Rent(length + CacheLine / sizeof(double));
        int dStart = AlignedStart(d);
        if (clear) d.AsSpan(dStart, length).Clear();
        return new Storage(null, d, pooled, leased, dStart);
    }

    /// <summary>The first index of a pinned <paramref name="array"/> on a <see cref="CacheLine"/> boundary.</summary>
    private static unsafe int AlignedStart<T>(T[] array) where T : unmanaged
    {
        nint address = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
        return (int)((CacheLine - address % CacheLine) % CacheLine) / sizeof(T);
    }

    public static Storage Wrap(float[] data) => new(data, null, pooled: false, leased: false);

    public static Storage Wrap(double[] data) => new(null, data, pooled: false, leased: false);

    public void AddReference() => Interlocked.Increment(ref _references);

    /// <summary>Whether more than one tensor (a view, a detached copy) shares this buffer.</summary>
    public bool IsShared => Volatile.Read(ref _references) > 1;

    /// <summary>Drops one tensor's share; the last share of a pooled or leased buffer returns it to the pool at once.
    /// Callers dispose a tensor only where no kernel can still be reading it (a scope's end, the autograd engine after
    /// the backward function that read a gradient has returned, or user code between operations).</summary>
    public void Release()
    {
        if (Interlocked.Decrement(ref _references) != 0 || !(_pooled || Lease is not null)) return;
        Lease?.Released();
        if (Float is not null) StoragePool<float>.Return(Float);
        if (Double is not null) StoragePool<double>.Return(Double);
        Float = null;
        Double = null;
    }
}
