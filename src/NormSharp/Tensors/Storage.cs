using System.Buffers;

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
/// Buffers rented inside a <see cref="TensorScope"/> come from a pool and go back to it when the last tensor that
/// shares them is disposed, so that a steady-state training step reuses the same large arrays.
/// </summary>
internal sealed class Storage
{
    public float[]? Float;
    public double[]? Double;
    private int _references = 1;
    private readonly bool _pooled;

    private Storage(float[]? f, double[]? d, bool pooled)
    {
        Float = f;
        Double = d;
        _pooled = pooled;
    }

    public static Storage Allocate(DType dtype, int length, bool clear, bool pooled)
    {
        if (dtype == DType.Float32)
        {
            float[] array = pooled ? BufferPool<float>.Shared.Rent(Math.Max(length, 1)) : new float[length];
            if (pooled && clear) array.AsSpan(0, length).Clear();
            return new Storage(array, null, pooled);
        }
        double[] d = pooled ? BufferPool<double>.Shared.Rent(Math.Max(length, 1)) : new double[length];
        if (pooled && clear) d.AsSpan(0, length).Clear();
        return new Storage(null, d, pooled);
    }

    public static Storage Wrap(float[] data) => new(data, null, pooled: false);

    public static Storage Wrap(double[] data) => new(null, data, pooled: false);

    public void AddReference() => Interlocked.Increment(ref _references);

    public void Release()
    {
        if (Interlocked.Decrement(ref _references) != 0 || !_pooled) return;
        if (Float is not null) BufferPool<float>.Shared.Return(Float);
        if (Double is not null) BufferPool<double>.Shared.Return(Double);
        Float = null;
        Double = null;
    }
}
