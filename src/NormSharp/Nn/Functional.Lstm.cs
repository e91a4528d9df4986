using NormSharp.Autograd;
using NormSharp.Kernels;

namespace NormSharp.Nn;

public static partial class Functional
{
    /// <summary>
    /// The LSTM cell-state update c = σ(z_f) ⊙ c_prev + σ(z_i) ⊙ tanh(z_g) as one fused operation: <paramref name="gates"/>
    /// is (N, 4H), the gate pre-activations in PyTorch's order i, f, g, o (the output gate's block is not used here);
    /// <paramref name="previousCell"/> is (N, H). Returns the new cell state (N, H).
    /// </summary>
    public static Tensor LstmCellState(Tensor gates, Tensor previousCell)
    {
        ArgumentNullException.ThrowIfNull(gates);
        ArgumentNullException.ThrowIfNull(previousCell);
        if (previousCell.Rank != 2 || gates.Rank != 2 || gates.Dims[0] != previousCell.Dims[0] || gates.Dims[1] != 4 * previousCell.Dims[1])
            throw new ArgumentException($"LstmCellState: expected gates (N, 4H) and a previous cell state (N, H), got {ShapeUtil.Format(gates.Dims)} and {ShapeUtil.Format(previousCell.Dims)}.");
        CheckSameType("LstmCellState", gates, previousCell);
        int rows = previousCell.Dims[0], hidden = previousCell.Dims[1];
        Tensor z = gates.Contiguous(), cPrev = previousCell.Contiguous();
        Tensor cell = Tensor.Allocate(z.DType, cPrev.Dims, clear: false);
        if (z.DType == DType.Float32) LstmKernels.CellForward<float>(z.AsArraySegment<float>(), cPrev.AsArraySegment<float>(), cell.AsArraySegment<float>(), rows, hidden);
        else LstmKernels.CellForward<double>(z.AsArraySegment<double>(), cPrev.AsArraySegment<double>(), cell.AsArraySegment<double>(), rows, hidden);

        AutogradEngine.Record(cell, "LstmCellState", new[] { gates, previousCell }, dc =>
        {
            Tensor g = dc.Contiguous();
            Tensor? dz = gates.RequiresGrad ? Tensor.Allocate(z.DType, z.Dims, clear: false) : null;
            Tensor? dcPrev = previousCell.RequiresGrad ? Tensor.Allocate(z.DType, cPrev.Dims, clear: false) : null;
            if (z.DType == DType.Float32)
                LstmKernels.CellBackward<float>(z.AsArraySegment<float>(), cPrev.AsArraySegment<float>(), g.AsArraySegment<float>(), dz is null ? default : dz.AsArraySegment<float>(), dcPrev is null ? default : dcPrev.AsArraySegment<float>(), rows, hidden);
            else
                LstmKernels.CellBackward<double>(z.AsArraySegment<double>(), cPrev.AsArraySegment<double>(), g.AsArraySegment<double>(), dz is null ? default : dz.AsArraySegment<double>(), dcPrev is null ? default : dcPrev.AsArraySegment<double>(), rows, hidden);
            return new[] { dz, dcPrev };
        });
        return cell;
    }
}
