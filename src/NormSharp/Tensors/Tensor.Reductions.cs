using NormSharp.Autograd;
using NormSharp.Kernels;

namespace NormSharp;

public sealed partial class Tensor
{
    /// <summary>Sum of all elements (a scalar tensor).</summary>
    public Tensor Sum()
    {
        Tensor result = Reshape(Length).Sum(0);
        return result;
    }

    /// <summary>Sum along one axis; the axis is kept with size 1 when <paramref name="keepDim"/> is true.</summary>
    public Tensor Sum(int axis, bool keepDim = false)
    {
        int a = ShapeUtil.NormalizeAxis(axis, Rank, "Sum");
        (int outer, int n, int inner) = Split(a);
        Tensor x = Contiguous();
        int[] dims = ReducedDims(a, keepDim);
        Tensor result = Allocate(DType, dims, clear: false);
        if (DType == DType.Float32) Elementwise.SumAxis<float>(x.SpanF, outer, n, inner, result.SpanF);
        else Elementwise.SumAxis<double>(x.SpanD, outer, n, inner, result.SpanD);
        int[] inputDims = Dims;
        int[] keptDims = ReducedDims(a, keepDim: true);
        AutogradEngine.Record(result, "Sum", new[] { this }, g => new[] { g.Reshape(keptDims).ExpandTo(inputDims) });
        return result;
    }

    /// <summary>Sum over several axes.</summary>
    public Tensor Sum(int[] axes, bool keepDim = false)
    {
        int[] sorted = axes.Select(a => ShapeUtil.NormalizeAxis(a, Rank, "Sum")).Distinct().OrderByDescending(a => a).ToArray();
        Tensor t = this;
        foreach (int a in sorted) t = t.Sum(a, keepDim);
        return t;
    }

    /// <summary>Mean of all elements (a scalar tensor).</summary>
    public Tensor Mean() => Sum() * (1.0 / Math.Max(Length, 1));

    /// <summary>Mean along one axis.</summary>
    public Tensor Mean(int axis, bool keepDim = false) => Sum(axis, keepDim) * (1.0 / Dims[ShapeUtil.NormalizeAxis(axis, Rank, "Mean")]);

    /// <summary>Mean over several axes.</summary>
    public Tensor Mean(int[] axes, bool keepDim = false)
    {
        long count = 1;
        foreach (int a in axes.Select(a => ShapeUtil.NormalizeAxis(a, Rank, "Mean")).Distinct()) count *= Dims[a];
        return Sum(axes, keepDim) * (1.0 / count);
    }

    /// <summary>Maximum along one axis; the gradient flows to the first maximal element.</summary>
    public Tensor Max(int axis, bool keepDim = false)
    {
        int a = ShapeUtil.NormalizeAxis(axis, Rank, "Max");
        (int outer, int n, int inner) = Split(a);
        if (n == 0) throw new ArgumentException($"Max: axis {a} of shape {ShapeUtil.Format(Dims)} is empty.");
        Tensor x = Contiguous();
        Tensor result = Allocate(DType, ReducedDims(a, keepDim), clear: false);
        var indices = new int[outer * inner];
        if (DType == DType.Float32) Elementwise.MaxAxis<float>(x.SpanF, outer, n, inner, result.SpanF, indices);
        else Elementwise.MaxAxis<double>(x.SpanD, outer, n, inner, result.SpanD, indices);
        int[] inputDims = Dims;
        AutogradEngine.Record(result, "Max", new[] { this }, g =>
        {
            Tensor grad = Allocate(g.DType, inputDims);
            Tensor gc = g.Contiguous();
            for (int o = 0; o < outer; o++)
                for (int i = 0; i < inner; i++)
                {
                    int src = o * inner + i, dst = (o * n + indices[src]) * inner + i;
                    if (g.DType == DType.Float32) grad.SpanF[dst] = gc.SpanF[src]; else grad.SpanD[dst] = gc.SpanD[src];
                }
            return new[] { grad };
        });
        return result;
    }

    /// <summary>Maximum of all elements (a scalar tensor).</summary>
    public Tensor Max() => Reshape(Length).Max(0);

    /// <summary>The index of the first maximum along <paramref name="axis"/>, for each position of the other axes in
    /// row-major order (e.g. the predicted class of each row of logits).</summary>
    public int[] ArgMax(int axis = -1)
    {
        int a = ShapeUtil.NormalizeAxis(axis, Rank, "ArgMax");
        (int outer, int n, int inner) = Split(a);
        Tensor x = Contiguous();
        var indices = new int[outer * inner];
        if (DType == DType.Float32) Elementwise.MaxAxis<float>(x.SpanF, outer, n, inner, new float[outer * inner], indices);
        else Elementwise.MaxAxis<double>(x.SpanD, outer, n, inner, new double[outer * inner], indices);
        return indices;
    }

    /// <summary>Copies this tensor, stretched along its size-1 axes, into a new tensor of <paramref name="shape"/>.</summary>
    public Tensor ExpandTo(int[] shape)
    {
        if (ShapeUtil.SameShape(Dims, shape)) return this;
        int[] target = ShapeUtil.Broadcast(Dims, shape, "ExpandTo");
        if (!ShapeUtil.SameShape(target, shape))
            throw new ArgumentException($"ExpandTo: shape {ShapeUtil.Format(Dims)} cannot be expanded to {ShapeUtil.Format(shape)}.");
        Tensor result = Allocate(DType, shape, clear: false);
        result.AssignFrom(this);
        int[] original = Dims;
        AutogradEngine.Record(result, "ExpandTo", new[] { this }, g => new[] { g.SumToShape(original) });
        return result;
    }

    private (int Outer, int N, int Inner) Split(int axis)
    {
        int outer = 1, inner = 1;
        for (int i = 0; i < axis; i++) outer *= Dims[i];
        for (int i = axis + 1; i < Rank; i++) inner *= Dims[i];
        return (outer, Dims[axis], inner);
    }

    private int[] ReducedDims(int axis, bool keepDim)
    {
        var dims = new List<int>(Dims);
        if (keepDim) dims[axis] = 1; else dims.RemoveAt(axis);
        return dims.ToArray();
    }
}
