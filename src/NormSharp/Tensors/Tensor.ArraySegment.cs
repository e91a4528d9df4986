using System.Runtime.CompilerServices;

namespace NormSharp;

public sealed partial class Tensor
{
    /// <summary>The elements of a contiguous tensor of element type <typeparamref name="T"/> as an array segment, which
    /// (unlike a span) kernels can hand to the threads of <see cref="Parallelism"/>.</summary>
    internal ArraySegment<T> AsArraySegment<T>() where T : unmanaged
    {
        RequireContiguous("AsArraySegment");
        if (typeof(T) == typeof(float)) return new ArraySegment<T>(Unsafe.As<float[], T[]>(ref Storage.Float!), Offset, Length);
        if (typeof(T) == typeof(double)) return new ArraySegment<T>(Unsafe.As<double[], T[]>(ref Storage.Double!), Offset, Length);
        throw new NotSupportedException(typeof(T).Name);
    }
}
