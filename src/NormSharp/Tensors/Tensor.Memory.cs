using System.Runtime.CompilerServices;

namespace NormSharp;

public sealed partial class Tensor
{
    /// <summary>The elements of a contiguous tensor of element type <typeparamref name="T"/> as a
    /// <see cref="Memory{T}"/>, which (unlike a span) can be captured by the parallel bodies of a kernel.</summary>
    internal Memory<T> Memory<T>() where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return new Memory<T>(Unsafe.As<float[], T[]>(ref Storage.Float!), Offset, Length);
        if (typeof(T) == typeof(double)) return new Memory<T>(Unsafe.As<double[], T[]>(ref Storage.Double!), Offset, Length);
        throw new NotSupportedException(typeof(T).Name);
    }
}
