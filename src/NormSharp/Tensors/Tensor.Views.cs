using NormSharp.Autograd;

namespace NormSharp;

public sealed partial class Tensor
{
    private Tensor MakeView(int[] dims, int[] strides, int offset)
    {
        Storage.AddReference();
        var view = new Tensor(Storage, DType, dims, strides, offset);
        TensorScope.Current?.Register(view);
        return view;
    }

    /// <summary>A dense copy of this tensor, or the tensor itself when it is already contiguous.</summary>
    public Tensor Contiguous()
    {
        if (IsContiguous) return this;
        Tensor result = Allocate(DType, Dims, clear: false);
        if (DType == DType.Float32) Kernels.StridedCopy.Gather(Storage.Float!, Offset, Dims, Strides, result.SpanF);
        else Kernels.StridedCopy.Gather(Storage.Double!, Offset, Dims, Strides, result.SpanD);
        AutogradEngine.Record(result, "Contiguous", new[] { this }, g => new[] { g });
        return result;
    }

    /// <summary>The same elements in another shape; one size may be -1 and is inferred. A view when this tensor is
    /// contiguous, otherwise a copy.</summary>
    public Tensor Reshape(params int[] shape)
    {
        int[] dims = ShapeUtil.InferShape(shape, Length, "Reshape");
        Tensor source = Contiguous();
        Tensor view = source.MakeView(dims, ShapeUtil.ContiguousStrides(dims), source.Offset);
        int[] original = Dims;
        AutogradEngine.Record(view, "Reshape", new[] { source }, g => new[] { g.Reshape(original) });
        return view;
    }

    /// <summary>Flattens axes <paramref name="startAxis"/> to <paramref name="endAxis"/> into one (PyTorch's
    /// <c>torch.flatten</c>).</summary>
    public Tensor Flatten(int startAxis = 0, int endAxis = -1)
    {
        if (Rank == 0) return Reshape(1);
        int s = ShapeUtil.NormalizeAxis(startAxis, Rank, "Flatten");
        int e = ShapeUtil.NormalizeAxis(endAxis, Rank, "Flatten");
        if (s > e) throw new ArgumentException($"Flatten: startAxis {startAxis} comes after endAxis {endAxis} for a tensor of rank {Rank}.");
        var dims = new List<int>();
        for (int i = 0; i < s; i++) dims.Add(Dims[i]);
        int merged = 1;
        for (int i = s; i <= e; i++) merged *= Dims[i];
        dims.Add(merged);
        for (int i = e + 1; i < Rank; i++) dims.Add(Dims[i]);
        return Reshape(dims.ToArray());
    }

    /// <summary>Inserts an axis of size 1 at <paramref name="axis"/>.</summary>
    public Tensor Unsqueeze(int axis)
    {
        int a = ShapeUtil.NormalizeAxis(axis, Rank + 1, "Unsqueeze");
        var dims = new List<int>(Dims);
        dims.Insert(a, 1);
        return Reshape(dims.ToArray());
    }

    /// <summary>Reorders the axes: axis i of the result is axis <c>axes[i]</c> of this tensor. A view, no copy.</summary>
    public Tensor Permute(params int[] axes)
    {
        if (axes.Length != Rank)
            throw new ArgumentException($"Permute: expected {Rank} axes for a tensor of shape {ShapeUtil.Format(Dims)}, got {axes.Length}.");
        var dims = new int[Rank];
        var strides = new int[Rank];
        var inverse = new int[Rank];
        var seen = new bool[Rank];
        for (int i = 0; i < Rank; i++)
        {
            int a = ShapeUtil.NormalizeAxis(axes[i], Rank, "Permute");
            if (seen[a]) throw new ArgumentException($"Permute: axis {a} appears twice in ({string.Join(", ", axes)}).");
            seen[a] = true;
            dims[i] = Dims[a];
            strides[i] = Strides[a];
            inverse[a] = i;
        }
        Tensor view = MakeView(dims, strides, Offset);
        AutogradEngine.Record(view, "Permute", new[] { this }, g => new[] { g.Permute(inverse) });
        return view;
    }

    /// <summary>Swaps two axes (a view, no copy).</summary>
    public Tensor Transpose(int axis0 = -2, int axis1 = -1)
    {
        int a = ShapeUtil.NormalizeAxis(axis0, Rank, "Transpose");
        int b = ShapeUtil.NormalizeAxis(axis1, Rank, "Transpose");
        var axes = new int[Rank];
        for (int i = 0; i < Rank; i++) axes[i] = i;
        (axes[a], axes[b]) = (axes[b], axes[a]);
        return Permute(axes);
    }

    /// <summary>Elements <paramref name="start"/> to <paramref name="start"/>+<paramref name="length"/>-1 along
    /// <paramref name="axis"/> (a view, no copy).</summary>
    public Tensor Narrow(int axis, int start, int length)
    {
        int a = ShapeUtil.NormalizeAxis(axis, Rank, "Narrow");
        if (start < 0 || length < 0 || start + length > Dims[a])
            throw new ArgumentOutOfRangeException(nameof(start), $"Narrow: range [{start}, {start + length}) is outside axis {a} of size {Dims[a]}.");
        var dims = (int[])Dims.Clone();
        dims[a] = length;
        Tensor view = MakeView(dims, Strides, Offset + start * Strides[a]);
        int[] full = Dims;
        AutogradEngine.Record(view, "Narrow", new[] { this }, g =>
        {
            Tensor result = Allocate(g.DType, full);
            result.Narrow(a, start, length).AssignFrom(g);
            return new[] { result };
        });
        return view;
    }

    /// <summary>Copies <paramref name="source"/> (broadcast to this shape) into this possibly strided view. Not recorded.</summary>
    internal void AssignFrom(Tensor source)
    {
        int[] strides = ShapeUtil.BroadcastStrides(source.Dims, source.Strides, Dims);
        if (DType == DType.Float32)
            Kernels.StridedCopy.Copy(source.To(DType.Float32).Storage.Float!, source.Offset, strides, Storage.Float!, Offset, Strides, Dims);
        else
            Kernels.StridedCopy.Copy(source.To(DType.Float64).Storage.Double!, source.Offset, strides, Storage.Double!, Offset, Strides, Dims);
    }

    /// <summary>Concatenates tensors along an axis; all other sizes must agree.</summary>
    public static Tensor Concat(IReadOnlyList<Tensor> tensors, int axis = 0)
    {
        if (tensors.Count == 0) throw new ArgumentException("Concat: no tensors given.");
        Tensor first = tensors[0];
        int a = ShapeUtil.NormalizeAxis(axis, first.Rank, "Concat");
        var dims = (int[])first.Dims.Clone();
        dims[a] = 0;
        foreach (Tensor t in tensors)
        {
            if (t.Rank != first.Rank || t.DType != first.DType)
                throw new ArgumentException($"Concat: tensor of shape {ShapeUtil.Format(t.Dims)} ({t.DType}) does not match {ShapeUtil.Format(first.Dims)} ({first.DType}).");
            for (int i = 0; i < t.Rank; i++)
                if (i != a && t.Dims[i] != first.Dims[i])
                    throw new ArgumentException($"Concat: shapes {ShapeUtil.Format(first.Dims)} and {ShapeUtil.Format(t.Dims)} differ outside axis {a}.");
            dims[a] += t.Dims[a];
        }
        Tensor result = Allocate(first.DType, dims, clear: false);
        var starts = new int[tensors.Count];
        int start = 0;
        using (NoGrad())
        {
            for (int i = 0; i < tensors.Count; i++)
            {
                starts[i] = start;
                result.Narrow(a, start, tensors[i].Dims[a]).AssignFrom(tensors[i]);
                start += tensors[i].Dims[a];
            }
        }
        Tensor[] inputs = tensors.ToArray();
        AutogradEngine.Record(result, "Concat", inputs, g =>
        {
            var grads = new Tensor?[inputs.Length];
            for (int i = 0; i < inputs.Length; i++)
                if (inputs[i].RequiresGrad) grads[i] = g.Narrow(a, starts[i], inputs[i].Dims[a]).Contiguous();
            return grads;
        });
        return result;
    }
}
