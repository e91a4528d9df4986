using System.Runtime.CompilerServices;
using NormSharp.Autograd;

namespace NormSharp;

/// <summary>
/// A dense, row-major n-dimensional array of <see cref="DType.Float32"/> or <see cref="DType.Float64"/> values
/// (images are NCHW) that records the operations applied to it for reverse-mode differentiation.
/// </summary>
/// <remarks>
/// A tensor is a view (shape, strides, offset) over a shared <see cref="Storage"/>. Reshape, flatten, transpose and
/// slicing along the first axis make views without copying; kernels read contiguous data and call
/// <see cref="Contiguous"/>, which copies only when the view is not already dense.
/// </remarks>
public sealed partial class Tensor : IDisposable
{
    private Storage? _storage;
    internal readonly int[] Dims;
    internal readonly int[] Strides;
    internal readonly int Offset;
    private bool _requiresGrad;

    /// <summary>The element type.</summary>
    public DType DType { get; }

    /// <summary>The number of elements.</summary>
    public int Length { get; }

    internal Tensor(Storage storage, DType dtype, int[] dims, int[] strides, int offset)
    {
        _storage = storage;
        DType = dtype;
        Dims = dims;
        Strides = strides;
        Offset = offset;
        Length = ShapeUtil.Product(dims);
    }

    /// <summary>The size of each axis, outermost first (a copy).</summary>
    public int[] Shape => (int[])Dims.Clone();

    /// <summary>The number of axes.</summary>
    public int Rank => Dims.Length;

    /// <summary>The size of one axis; negative axes count from the end.</summary>
    public int Size(int axis) => Dims[ShapeUtil.NormalizeAxis(axis, Rank, "Tensor.Size")];

    /// <summary>True when the elements lie densely in row-major order, so the tensor can be read as one span.</summary>
    public bool IsContiguous => ShapeUtil.IsContiguous(Dims, Strides);

    /// <summary>Whether gradients with respect to this tensor are computed by <see cref="Backward"/>. Only leaf tensors
    /// (those not produced by a recorded operation) may have it set.</summary>
    public bool RequiresGrad
    {
        get => _requiresGrad;
        set
        {
            if (GradFn is not null && !value)
                throw new InvalidOperationException("RequiresGrad can only be cleared on a leaf tensor; use Detach() to stop gradients through a computed tensor.");
            _requiresGrad = value;
        }
    }

    /// <summary>The accumulated gradient of a leaf tensor after <see cref="Backward"/>, or null. Like PyTorch,
    /// successive backward passes add into it until it is zeroed.</summary>
    public Tensor? Grad { get; set; }

    /// <summary>The recorded operation that produced this tensor, or null for a leaf.</summary>
    internal Node? GradFn { get; set; }

    /// <summary>True for tensors not produced by a recorded operation (inputs and parameters).</summary>
    public bool IsLeaf => GradFn is null;

    /// <summary>The buffer, for library code about to read or write its array. A leased buffer is held reachable
    /// until this thread's next safe point (<see cref="StorageGuard"/>), so that it cannot be recycled while a kernel
    /// that outlived this tensor's last use is still reading it.</summary>
    internal Storage Storage
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            Storage storage = _storage ?? throw new ObjectDisposedException(nameof(Tensor), "This tensor was disposed (its TensorScope ended); keep it with TensorScope.Keep to use it afterwards.");
            if (storage.Lease is not null) StorageGuard.Hold(storage);
            return storage;
        }
    }

    /// <summary>Returns the tensor's buffer to the pool now, once no other tensor shares it, instead of when the garbage
    /// collector finds it unreachable. Using the tensor afterwards throws. Optional: a plain loop recycles its buffers
    /// without it, and a <see cref="TensorScope"/> disposes its tensors for you.</summary>
    public void Dispose()
    {
        Storage? s = _storage;
        _storage = null;
        GradFn = null;
        s?.Release();
    }

    // ---- creation ---------------------------------------------------------------------------------------------

    /// <summary>A new tensor with uninitialized (or, with <paramref name="clear"/>, zero) contents, owned by the
    /// innermost <see cref="TensorScope"/> when one is active and <paramref name="scoped"/> is true; otherwise a large
    /// buffer is leased back to the pool when the tensor becomes unreachable (<see cref="StorageLease"/>).</summary>
    internal static Tensor Allocate(DType dtype, int[] dims, bool clear = true, bool scoped = true)
    {
        ShapeUtil.Validate(dims, "Tensor");
        TensorScope? scope = scoped ? TensorScope.Current : null;
        int length = ShapeUtil.Product(dims);
        Storage storage = Storage.Allocate(dtype, length, clear, pooled: scope is not null);
        var t = new Tensor(storage, dtype, (int[])dims.Clone(), ShapeUtil.ContiguousStrides(dims), storage.Start);
        scope?.Register(t);
        return t;
    }

    internal static Tensor Empty(DType dtype, params int[] dims) => Allocate(dtype, dims, clear: false);

    /// <summary>A tensor of zeros.</summary>
    public static Tensor Zeros(int[] shape, DType dtype = DType.Float32) => Allocate(dtype, shape);

    /// <summary>A tensor of ones.</summary>
    public static Tensor Ones(int[] shape, DType dtype = DType.Float32) => Full(shape, 1.0, dtype);

    /// <summary>A tensor with every element equal to <paramref name="value"/>.</summary>
    public static Tensor Full(int[] shape, double value, DType dtype = DType.Float32)
    {
        Tensor t = Allocate(dtype, shape, clear: false);
        // Filled by all threads, as libtorch does: a million-element fill is a third of a ReLU forward + backward.
        Parallelism.For(t.Length, new FillBody(t, value));
        return t;
    }

    /// <summary>Fills elements [start, end) of a tensor of <see cref="Full"/>.</summary>
    private readonly struct FillBody(Tensor tensor, double value) : IChunkBody
    {
        public void Run(int start, int end)
        {
            if (tensor.DType == DType.Float32) tensor.SpanF[start..end].Fill((float)value);
            else tensor.SpanD[start..end].Fill(value);
        }
    }

    /// <summary>A zero tensor with the shape and type of <paramref name="like"/>.</summary>
    public static Tensor ZerosLike(Tensor like) => Allocate(like.DType, like.Dims);

    /// <summary>A float32 tensor that copies <paramref name="data"/>, laid out row-major in <paramref name="shape"/>
    /// (a 1-D tensor when no shape is given).</summary>
    public static Tensor FromArray(float[] data, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(data);
        int[] dims = shape.Length == 0 ? new[] { data.Length } : shape;
        CheckLength(data.Length, dims);
        var t = Allocate(DType.Float32, dims, clear: false);
        data.CopyTo(t.SpanF);
        return t;
    }

    /// <summary>A float64 tensor that copies <paramref name="data"/>, laid out row-major in <paramref name="shape"/>.</summary>
    public static Tensor FromArray(double[] data, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(data);
        int[] dims = shape.Length == 0 ? new[] { data.Length } : shape;
        CheckLength(data.Length, dims);
        var t = Allocate(DType.Float64, dims, clear: false);
        data.CopyTo(t.SpanD);
        return t;
    }

    /// <summary>A scalar (rank-0) tensor.</summary>
    public static Tensor Scalar(double value, DType dtype = DType.Float32) => Full(Array.Empty<int>(), value, dtype);

    private static void CheckLength(int length, int[] dims)
    {
        ShapeUtil.Validate(dims, "Tensor.FromArray");
        int expected = ShapeUtil.Product(dims);
        if (expected != length)
            throw new ArgumentException($"Tensor.FromArray: shape {ShapeUtil.Format(dims)} needs {expected} values, but the array holds {length}.");
    }

    // ---- reading and writing -------------------------------------------------------------------------------------

    /// <summary>The elements in row-major order as float32 (float64 tensors are rounded).</summary>
    public float[] ToArray()
    {
        Tensor c = Contiguous();
        if (DType == DType.Float32) return c.SpanF.ToArray();
        var result = new float[Length];
        ReadOnlySpan<double> d = c.SpanD;
        for (int i = 0; i < result.Length; i++) result[i] = (float)d[i];
        return result;
    }

    /// <summary>The elements in row-major order as float64.</summary>
    public double[] ToDoubleArray()
    {
        Tensor c = Contiguous();
        if (DType == DType.Float64) return c.SpanD.ToArray();
        var result = new double[Length];
        ReadOnlySpan<float> f = c.SpanF;
        for (int i = 0; i < result.Length; i++) result[i] = f[i];
        return result;
    }

    /// <summary>The single value of a one-element tensor.</summary>
    public double Item()
    {
        if (Length != 1) throw new InvalidOperationException($"Item: the tensor has shape {ShapeUtil.Format(Dims)} ({Length} elements); Item needs exactly one.");
        return DType == DType.Float32 ? Storage.Float![Offset] : Storage.Double![Offset];
    }

    /// <summary>Overwrites the values in place (for loading weights). Does not record a gradient.</summary>
    public void CopyFrom(float[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Length != Length)
            throw new ArgumentException($"CopyFrom: the tensor has shape {ShapeUtil.Format(Dims)} ({Length} values), but {values.Length} were given.");
        RequireContiguous("CopyFrom");
        if (DType == DType.Float32) values.CopyTo(SpanF);
        else for (int i = 0; i < values.Length; i++) SpanD[i] = values[i];
    }

    /// <summary>Overwrites the values in place with those of <paramref name="source"/>, which must have the same
    /// shape; converts between element types. Does not record a gradient.</summary>
    public void CopyFrom(Tensor source)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (!ShapeUtil.SameShape(Dims, source.Dims))
            throw new ArgumentException($"CopyFrom: expected a tensor of shape {ShapeUtil.Format(Dims)}, got {ShapeUtil.Format(source.Dims)}.");
        RequireContiguous("CopyFrom");
        Tensor s = source.Contiguous();
        if (DType == DType.Float32 && s.DType == DType.Float32) s.SpanF.CopyTo(SpanF);
        else if (DType == DType.Float64 && s.DType == DType.Float64) s.SpanD.CopyTo(SpanD);
        else if (DType == DType.Float32) { var src = s.SpanD; var dst = SpanF; for (int i = 0; i < dst.Length; i++) dst[i] = (float)src[i]; }
        else { var src = s.SpanF; var dst = SpanD; for (int i = 0; i < dst.Length; i++) dst[i] = src[i]; }
    }

    /// <summary>The elements of a contiguous float32 tensor.</summary>
    internal Span<float> SpanF
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Storage.Float.AsSpan(Offset, Length);
    }

    /// <summary>The elements of a contiguous float64 tensor.</summary>
    internal Span<double> SpanD
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Storage.Double.AsSpan(Offset, Length);
    }

    /// <summary>The elements of a contiguous tensor of element type <typeparamref name="T"/>.</summary>
    internal Span<T> Span<T>() where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return Unsafe.As<float[], T[]>(ref Storage.Float!).AsSpan(Offset, Length);
        if (typeof(T) == typeof(double)) return Unsafe.As<double[], T[]>(ref Storage.Double!).AsSpan(Offset, Length);
        throw new NotSupportedException(typeof(T).Name);
    }

    internal void RequireContiguous(string op)
    {
        if (!IsContiguous) throw new InvalidOperationException($"{op}: the tensor is a non-contiguous view; call Contiguous() first.");
    }

    /// <summary>A new tensor with the same values (and no gradient history).</summary>
    public Tensor CloneData()
    {
        Tensor c = Allocate(DType, Dims, clear: false);
        c.CopyFrom(this);
        return c;
    }

    /// <summary>A tensor sharing this one's data, cut off from the gradient history.</summary>
    public Tensor Detach()
    {
        Storage.AddReference();
        var view = new Tensor(Storage, DType, Dims, Strides, Offset);
        TensorScope.Current?.Register(view);
        return view;
    }

    /// <summary>Converts to another element type (a copy; differentiable).</summary>
    public Tensor To(DType dtype)
    {
        if (dtype == DType) return this;
        Tensor result = Allocate(dtype, Dims, clear: false);
        result.CopyFrom(this);
        Tensor source = this;
        AutogradEngine.Record(result, "To", new[] { this }, g => new[] { g.To(source.DType) });
        return result;
    }

    /// <inheritdoc/>
    public override string ToString() => TensorFormatter.Format(this);
}
