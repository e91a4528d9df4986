using System.Numerics;
using System.Numerics.Tensors;

namespace NormSharp.Kernels;

/// <summary>
/// Epilogues: element-wise steps applied in place to a layer's freshly computed output, so that an activation after
/// a convolution or a fully connected layer costs one pass over the output and no second tensor.
/// </summary>
internal static class Epilogues
{
    /// <summary>y = max(y, 0) in place, with the arithmetic of <see cref="NormSharp.Nn.Functional.Relu"/> (so the
    /// values are bit-identical), split over threads in contiguous chunks.</summary>
    public static void ReluInPlace<T>(ArraySegment<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Parallelism.For(y.Count, (start, end) =>
        {
            Span<T> chunk = y.AsSpan(start, end - start);
            TensorPrimitives.Max(chunk, T.Zero, chunk);
        });
    }
}
