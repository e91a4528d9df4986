using System.Numerics.Tensors;
using NormSharp.Autograd;
using NormSharp.Kernels;

namespace NormSharp;

public sealed partial class Tensor
{
    /// <summary>Element-wise sum with broadcasting.</summary>
    public static Tensor operator +(Tensor a, Tensor b) => BinaryRecorded(BinaryOp.Add, a, b);

    /// <summary>Element-wise difference with broadcasting.</summary>
    public static Tensor operator -(Tensor a, Tensor b) => BinaryRecorded(BinaryOp.Subtract, a, b);

    /// <summary>Element-wise product with broadcasting.</summary>
    public static Tensor operator *(Tensor a, Tensor b) => BinaryRecorded(BinaryOp.Multiply, a, b);

    /// <summary>Element-wise quotient with broadcasting.</summary>
    public static Tensor operator /(Tensor a, Tensor b) => BinaryRecorded(BinaryOp.Divide, a, b);

    /// <summary>Adds a scalar to every element.</summary>
    public static Tensor operator +(Tensor a, double s) => a.Affine(1.0, s);

    /// <summary>Subtracts a scalar from every element.</summary>
    public static Tensor operator -(Tensor a, double s) => a.Affine(1.0, -s);

    /// <summary>Multiplies every element by a scalar.</summary>
    public static Tensor operator *(Tensor a, double s) => a.Affine(s, 0.0);

    /// <summary>Multiplies every element by a scalar.</summary>
    public static Tensor operator *(double s, Tensor a) => a.Affine(s, 0.0);

    /// <summary>Divides every element by a scalar.</summary>
    public static Tensor operator /(Tensor a, double s) => a.Affine(1.0 / s, 0.0);

    /// <summary>Negates every element.</summary>
    public static Tensor operator -(Tensor a) => a.Affine(-1.0, 0.0);

    private static Tensor BinaryRecorded(BinaryOp op, Tensor a, Tensor b)
    {
        Tensor result = Binary(op, a, b);
        AutogradEngine.Record(result, op.ToString(), new[] { a, b }, g =>
        {
            Tensor? ga = null, gb = null;
            switch (op)
            {
                case BinaryOp.Add:
                    if (a.RequiresGrad) ga = g.SumToShape(a.Dims);
                    if (b.RequiresGrad) gb = g.SumToShape(b.Dims);
                    break;
                case BinaryOp.Subtract:
                    if (a.RequiresGrad) ga = g.SumToShape(a.Dims);
                    if (b.RequiresGrad) gb = (-g).SumToShape(b.Dims);
                    break;
                case BinaryOp.Multiply:
                    if (a.RequiresGrad) ga = (g * b).SumToShape(a.Dims);
                    if (b.RequiresGrad) gb = (g * a).SumToShape(b.Dims);
                    break;
                default:
                    if (a.RequiresGrad) ga = (g / b).SumToShape(a.Dims);
                    if (b.RequiresGrad) gb = (-(g * result) / b).SumToShape(b.Dims); // d(a/b)/db = -(a/b)/b
                    break;
            }
            return new[] { ga, gb };
        });
        return result;
    }

    /// <summary>a op b with broadcasting, not recorded.</summary>
    internal static Tensor Binary(BinaryOp op, Tensor a, Tensor b)
    {
        if (a.DType != b.DType)
            throw new ArgumentException($"{op}: element types differ ({a.DType} and {b.DType}); convert one with To().");
        int[] dims = ShapeUtil.Broadcast(a.Dims, b.Dims, op.ToString());
        int[] sa = ShapeUtil.BroadcastStrides(a.Dims, a.Strides, dims);
        int[] sb = ShapeUtil.BroadcastStrides(b.Dims, b.Strides, dims);
        Tensor result = Allocate(a.DType, dims, clear: false);
        if (a.DType == DType.Float32)
            Elementwise.Binary(op, a.Storage.Float!, a.Offset, sa, b.Storage.Float!, b.Offset, sb, result.SpanF, dims);
        else
            Elementwise.Binary(op, a.Storage.Double!, a.Offset, sa, b.Storage.Double!, b.Offset, sb, result.SpanD, dims);
        return result;
    }

    /// <summary>scale · x + shift, element-wise.</summary>
    private Tensor Affine(double scale, double shift)
    {
        Tensor x = Contiguous();
        Tensor result = Allocate(DType, Dims, clear: false);
        if (DType == DType.Float32)
        {
            TensorPrimitives.Multiply(x.SpanF, (float)scale, result.SpanF);
            if (shift != 0) TensorPrimitives.Add(result.SpanF, (float)shift, result.SpanF);
        }
        else
        {
            TensorPrimitives.Multiply(x.SpanD, scale, result.SpanD);
            if (shift != 0) TensorPrimitives.Add(result.SpanD, shift, result.SpanD);
        }
        AutogradEngine.Record(result, "Affine", new[] { this }, g => new[] { g * scale });
        return result;
    }

    /// <summary>Sums a broadcast gradient back to <paramref name="shape"/> (the shape of the operand that was
    /// stretched).</summary>
    internal Tensor SumToShape(int[] shape)
    {
        if (ShapeUtil.SameShape(Dims, shape)) return this;
        Tensor t = this;
        int lead = Rank - shape.Length;
        for (int i = 0; i < lead; i++) t = t.Sum(0);
        for (int i = 0; i < shape.Length; i++)
            if (shape[i] == 1 && t.Dims[i] != 1) t = t.Sum(i, keepDim: true);
        return t;
    }

    /// <summary>Adds <paramref name="other"/> (broadcast to this shape) into this contiguous tensor, in place and
    /// without recording.</summary>
    internal void AddInPlace(Tensor other)
    {
        RequireContiguous("AddInPlace");
        if (ShapeUtil.SameShape(Dims, other.Dims) && other.IsContiguous && other.DType == DType)
        {
            if (DType == DType.Float32) TensorPrimitives.Add(SpanF, other.SpanF, SpanF);
            else TensorPrimitives.Add(SpanD, other.SpanD, SpanD);
            return;
        }
        using (NoGrad()) CopyFrom(Binary(BinaryOp.Add, this, other.To(DType)));
    }

    /// <summary>Sets every element to zero, in place.</summary>
    public void ZeroInPlace()
    {
        RequireContiguous("ZeroInPlace");
        if (DType == DType.Float32) SpanF.Clear(); else SpanD.Clear();
    }

    /// <summary>e^x, element-wise.</summary>
    public Tensor Exp()
    {
        Tensor result = Unary(this, static (x, y) => TensorPrimitives.Exp(x, y), static (x, y) => TensorPrimitives.Exp(x, y));
        AutogradEngine.Record(result, "Exp", new[] { this }, g => new[] { g * result });
        return result;
    }

    /// <summary>Natural logarithm, element-wise.</summary>
    public Tensor Log()
    {
        Tensor x = this;
        Tensor result = Unary(this, static (x, y) => TensorPrimitives.Log(x, y), static (x, y) => TensorPrimitives.Log(x, y));
        AutogradEngine.Record(result, "Log", new[] { this }, g => new[] { g / x });
        return result;
    }

    /// <summary>Square root, element-wise.</summary>
    public Tensor Sqrt()
    {
        Tensor result = Unary(this, static (x, y) => TensorPrimitives.Sqrt(x, y), static (x, y) => TensorPrimitives.Sqrt(x, y));
        AutogradEngine.Record(result, "Sqrt", new[] { this }, g => new[] { g / (result * 2.0) });
        return result;
    }

    /// <summary>x^p for a scalar exponent, element-wise.</summary>
    public Tensor Pow(double exponent)
    {
        Tensor x = this;
        float pf = (float)exponent;
        Tensor result = Unary(this, (x, y) => TensorPrimitives.Pow(x, pf, y), (x, y) => TensorPrimitives.Pow(x, exponent, y));
        AutogradEngine.Record(result, "Pow", new[] { this }, g => new[] { g * x.Pow(exponent - 1) * exponent });
        return result;
    }

    /// <summary>x², element-wise.</summary>
    public Tensor Square() => this * this;

    /// <summary>|x|, element-wise (gradient sign(x), 0 at 0).</summary>
    public Tensor Abs()
    {
        Tensor x = this;
        Tensor result = Unary(this, static (x, y) => TensorPrimitives.Abs(x, y), static (x, y) => TensorPrimitives.Abs(x, y));
        AutogradEngine.Record(result, "Abs", new[] { this }, g => new[] { g * Unary(x, static (x, y) => Sign(x, y), static (x, y) => Sign(x, y)) });
        return result;
    }

    private static void Sign<T>(ReadOnlySpan<T> x, Span<T> y) where T : System.Numerics.INumber<T>
    {
        for (int i = 0; i < x.Length; i++) y[i] = T.CreateTruncating(T.Sign(x[i]));
    }

    internal delegate void SpanMap<T>(ReadOnlySpan<T> source, Span<T> destination);

    /// <summary>Applies a span-to-span kernel to a contiguous copy of <paramref name="t"/>, not recorded.</summary>
    internal static Tensor Unary(Tensor t, SpanMap<float> f32, SpanMap<double> f64)
    {
        Tensor x = t.Contiguous();
        Tensor result = Allocate(t.DType, t.Dims, clear: false);
        if (t.DType == DType.Float32) f32(x.SpanF, result.SpanF); else f64(x.SpanD, result.SpanD);
        return result;
    }
}
