using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;

namespace NormSharp.Kernels;

/// <summary>
/// The LSTM cell-state update on row-major data. <c>gates</c> is (rows, 4H): the pre-activations z of the input,
/// forget, cell and output gates in PyTorch's order i, f, g, o; <c>previousCell</c> and <c>cell</c> are (rows, H).
/// Forward and backward recompute the activations from z instead of caching them, which costs three exponentials per
/// element and saves a (rows, 3H) buffer per time step.
/// </summary>
internal static class LstmKernels
{
    /// <summary>c = σ(z_f) ⊙ c_prev + σ(z_i) ⊙ tanh(z_g) (Hochreiter &amp; Schmidhuber 1997 with the forget gate of
    /// Gers et al. 2000, as in PyTorch's nn.LSTM). The output gate's block z_o is not read.</summary>
    public static void CellForward<T>(ReadOnlyMemory<T> gates, ReadOnlyMemory<T> previousCell, Memory<T> cell, int rows, int hidden)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ForEachRow(gates, rows, hidden, (r, input, forget, candidate) =>
        {
            Span<T> c = cell.Span.Slice(r * hidden, hidden);
            TensorPrimitives.Multiply(forget, previousCell.Span.Slice(r * hidden, hidden), c);
            TensorPrimitives.FusedMultiplyAdd(input, candidate, c, c);
        });
    }

    /// <summary>
    /// From dL/dc: dz_i = dc ⊙ g ⊙ i(1 − i), dz_f = dc ⊙ c_prev ⊙ f(1 − f), dz_g = dc ⊙ i ⊙ (1 − g²), dz_o = 0 and
    /// dc_prev = dc ⊙ f, where i, f, g are the activated gates. An empty span skips that gradient.
    /// </summary>
    public static void CellBackward<T>(ReadOnlyMemory<T> gates, ReadOnlyMemory<T> previousCell, ReadOnlyMemory<T> cellGradient,
        Memory<T> gatesGradient, Memory<T> previousCellGradient, int rows, int hidden)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ForEachRow(gates, rows, hidden, (r, input, forget, candidate) =>
        {
            ReadOnlySpan<T> cPrev = previousCell.Span.Slice(r * hidden, hidden);
            ReadOnlySpan<T> dc = cellGradient.Span.Slice(r * hidden, hidden);
            if (!gatesGradient.IsEmpty)
            {
                Span<T> dz = gatesGradient.Span.Slice(r * 4 * hidden, 4 * hidden);
                for (int j = 0; j < hidden; j++)
                {
                    T i = input[j], f = forget[j], g = candidate[j];
                    dz[j] = dc[j] * g * i * (T.One - i);
                    dz[hidden + j] = dc[j] * cPrev[j] * f * (T.One - f);
                    dz[2 * hidden + j] = dc[j] * i * (T.One - g * g);
                }
                dz.Slice(3 * hidden, hidden).Clear();
            }
            if (!previousCellGradient.IsEmpty)
                TensorPrimitives.Multiply(dc, forget, previousCellGradient.Span.Slice(r * hidden, hidden));
        });
    }

    private delegate void RowBody<T>(int row, ReadOnlySpan<T> input, ReadOnlySpan<T> forget, ReadOnlySpan<T> candidate);

    /// <summary>Calls <paramref name="body"/> for every row with that row's activated gates i = σ(z_i), f = σ(z_f),
    /// g = tanh(z_g), rows split over threads.</summary>
    private static void ForEachRow<T>(ReadOnlyMemory<T> gates, int rows, int hidden, RowBody<T> body) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Parallelism.For(rows, (start, end) =>
        {
            T[] rented = ArrayPool<T>.Shared.Rent(3 * hidden);
            Span<T> activations = rented.AsSpan(0, 3 * hidden);
            for (int r = start; r < end; r++)
            {
                Activate(gates.Span.Slice(r * 4 * hidden, 4 * hidden), activations, hidden);
                body(r, activations[..hidden], activations.Slice(hidden, hidden), activations.Slice(2 * hidden, hidden));
            }
            ArrayPool<T>.Shared.Return(rented);
        }, workPerItem: 16L * hidden);
    }

    /// <summary>Writes σ(z_i), σ(z_f), tanh(z_g) of one row into <paramref name="activations"/> (3H); σ is the
    /// sigmoid layer's own kernel, so the gates round as <see cref="NormSharp.Nn.Functional.Sigmoid"/> does.</summary>
    private static void Activate<T>(ReadOnlySpan<T> z, Span<T> activations, int hidden) where T : unmanaged, IFloatingPointIeee754<T>
    {
        Pointwise.Map(new ActivationKernels.Sigmoid<T>(), z[..(2 * hidden)], activations[..(2 * hidden)]);
        TensorPrimitives.Tanh(z.Slice(2 * hidden, hidden), activations.Slice(2 * hidden, hidden));
    }
}
