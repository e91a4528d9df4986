using System.Buffers;

namespace NormSharp;

/// <summary>
/// The pool of kernel scratch buffers (tensor storage has its own, <see cref="StoragePool{T}"/>). Unlike
/// <c>ArrayPool.Shared</c>, whose fast path keeps returned arrays per thread, this pool is shared by all threads, so an
/// array returned by one worker thread is found by whichever thread asks next: the chunks of a
/// <see cref="Parallelism"/> loop run on several threads, and a steady training step must still reuse its arrays.
/// </summary>
internal static class BufferPool<T>
{
    public static readonly ArrayPool<T> Shared = ArrayPool<T>.Create(maxArrayLength: 1 << 28, maxArraysPerBucket: 64);
}
