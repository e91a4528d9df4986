using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace NormSharp.Kernels;

/// <summary>The sizes of a 2-D pooling on NCHW data: each of the Planes = N·C channel planes (Rows.Input, Cols.Input)
/// is pooled on its own into (Rows.Output, Cols.Output). Padding is symmetric (PadBefore on both sides).</summary>
internal readonly record struct PoolGeometry(int Planes, WindowAxis Rows, WindowAxis Cols)
{
    /// <summary>Elements in one input plane.</summary>
    public int InPlane => Rows.Input * Cols.Input;

    /// <summary>Elements in one output plane.</summary>
    public int OutPlane => Rows.Output * Cols.Output;

    /// <summary>Window reads per plane, the work estimate for splitting planes over threads.</summary>
    public long WorkPerPlane => (long)OutPlane * Rows.Kernel * Cols.Kernel;
}

/// <summary>
/// Max and average pooling, forward and backward, parallel over channel planes (which are independent, so the result
/// does not depend on the thread count). Max pooling's backward finds each window's argmax again instead of storing
/// indices from the forward: the scan is cheap next to the convolutions around it, and nothing has to be kept alive.
/// </summary>
internal static class Pooling
{
    /// <summary>y[o] = max of the window of o, padding excluded; with <paramref name="relu"/>, max(y[o], 0), which is
    /// what the pooling of max(x, 0) gives bit for bit (taking the larger of two values commutes with flooring both
    /// at zero, NaN and −0 included), at a quarter of the values for a 2×2 window.</summary>
    public static void MaxForward<T>(PoolGeometry g, ArraySegment<T> input, ArraySegment<T> output, bool relu = false)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        Parallelism.For(g.Planes, (first, end) => MaxPlanes(g, input, output, relu, first, end), g.WorkPerPlane);

    /// <summary><see cref="MaxForward{T}"/> on planes [first, end), in one loop: the seed CNN's last pooling has
    /// 128 000 planes of nine outputs, where a call per plane or per row costs more than the work.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MaxPlanes<T>(PoolGeometry g, ArraySegment<T> input, ArraySegment<T> output, bool relu, int first, int end)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        bool pairs = IsDisjointPairs(g), vectors = pairs && Vector128.IsHardwareAccelerated && g.Cols.Output >= Simd128<T>.Count;
        int inWidth = g.Cols.Input, outWidth = g.Cols.Output;
        for (int p = first; p < end; p++)
        {
            ReadOnlySpan<T> x = input.AsSpan(p * g.InPlane, g.InPlane);
            Span<T> y = output.AsSpan(p * g.OutPlane, g.OutPlane);
            if (!pairs)
            {
                for (int o = 0; o < y.Length; o++) y[o] = Floor(x[ArgMax(x, g, o)], relu);
                continue;
            }
            for (int oh = 0; oh < g.Rows.Output; oh++)
            {
                ReadOnlySpan<T> top = x.Slice(2 * oh * inWidth, inWidth), bottom = x.Slice((2 * oh + 1) * inWidth, inWidth);
                Span<T> row = y.Slice(oh * outWidth, outWidth);
                if (vectors) MaxPairs(top, bottom, row, relu);
                else
                    for (int ow = 0; ow < row.Length; ow++)
                        row[ow] = Floor(Max4(top[2 * ow], top[2 * ow + 1], bottom[2 * ow], bottom[2 * ow + 1]).Value, relu);
            }
        }
    }

    /// <summary>One output row of the 2×2 pooling from its two input rows, at least a 128-bit vector long, with the
    /// widest vectors that fit the row (the seed CNN's rows are 14, 7 and 3 outputs long). Every width takes the
    /// maximum by the scalar rule, so the result does not depend on the width.</summary>
    private static void MaxPairs<T>(ReadOnlySpan<T> top, ReadOnlySpan<T> bottom, Span<T> row, bool relu)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (Vector512.IsHardwareAccelerated && row.Length >= Simd512<T>.Count) MaxPairs<T, Simd512<T>>(top, bottom, row, relu);
        else if (Vector256.IsHardwareAccelerated && row.Length >= Simd256<T>.Count) MaxPairs<T, Simd256<T>>(top, bottom, row, relu);
        else MaxPairs<T, Simd128<T>>(top, bottom, row, relu);
    }

    /// <summary><see cref="MaxPairs{T}"/> with vectors of <typeparamref name="TVector"/> for a row of at least
    /// Count outputs: the last vector overlaps the one before it rather than leaving a scalar tail. The window's four
    /// values are combined as <see cref="Max4{T}"/> scans them, (top pair, then bottom pair, then the two), which
    /// gives the same value as the scan in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void MaxPairs<T, TVector>(ReadOnlySpan<T> top, ReadOnlySpan<T> bottom, Span<T> row, bool relu)
        where T : unmanaged, IFloatingPointIeee754<T> where TVector : struct, ISimdVector<TVector, T>
    {
        int lanes = TVector.Count, last = row.Length - lanes;
        ref readonly T t = ref MemoryMarshal.GetReference(top), b = ref MemoryMarshal.GetReference(bottom);
        ref T y = ref MemoryMarshal.GetReference(row);
        for (int ow = 0; ; ow = Math.Min(ow + lanes, last))
        {
            nuint at = (nuint)(2 * ow);
            TVector t0 = TVector.LoadUnsafe(in t, at), t1 = TVector.LoadUnsafe(in t, at + (nuint)lanes);
            TVector b0 = TVector.LoadUnsafe(in b, at), b1 = TVector.LoadUnsafe(in b, at + (nuint)lanes);
            TVector max = Take(Take(TVector.EvenLanes(t0, t1), TVector.OddLanes(t0, t1)), Take(TVector.EvenLanes(b0, b1), TVector.OddLanes(b0, b1)));
            if (relu) max = TVector.Max(max, TVector.Zero);
            max.StoreUnsafe(ref y, (nuint)ow);
            if (ow == last) return;
        }

        // ArgMax's rule on lanes: the candidate wins when larger or NaN (a NaN is the one value not ≤ itself).
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static TVector Take(TVector max, TVector candidate) =>
            TVector.ConditionalSelect(~TVector.LessThanOrEqual(candidate, candidate), candidate,
                TVector.ConditionalSelect(TVector.LessThan(max, candidate), candidate, max));
    }

    /// <summary>max(v, 0) when <paramref name="relu"/> is set (as <see cref="NormSharp.Nn.Functional.Relu"/> computes
    /// it: a NaN stays, −0 becomes +0), otherwise v.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static T Floor<T>(T v, bool relu) where T : unmanaged, IFloatingPointIeee754<T> => relu ? T.Max(v, T.Zero) : v;

    /// <summary>dx[argmax of the window of o] += dy[o]: the gradient goes to the window's maximum only.</summary>
    public static void MaxBackward<T>(PoolGeometry g, ArraySegment<T> input, ArraySegment<T> gradOutput, ArraySegment<T> gradInput)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        ForEachPlane(g, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (p) =>
        {
            ReadOnlySpan<T> x = input.AsSpan(p * g.InPlane, g.InPlane);
            ReadOnlySpan<T> dy = gradOutput.AsSpan(p * g.OutPlane, g.OutPlane);
            Span<T> dx = gradInput.AsSpan(p * g.InPlane, g.InPlane);
            if (IsDisjointPairs(g))
            {
                // The windows tile the input, so every dx is written once: dy at the window's maximum, 0 elsewhere.
                for (int oh = 0; oh < g.Rows.Output; oh++)
                {
                    int topStart = 2 * oh * g.Cols.Input, bottomStart = topStart + g.Cols.Input;
                    ReadOnlySpan<T> top = x.Slice(topStart, g.Cols.Input), bottom = x.Slice(bottomStart, g.Cols.Input);
                    Span<T> dxTop = dx.Slice(topStart, g.Cols.Input), dxBottom = dx.Slice(bottomStart, g.Cols.Input);
                    ReadOnlySpan<T> dyRow = dy.Slice(oh * g.Cols.Output, g.Cols.Output);
                    for (int ow = 0; ow < dyRow.Length; ow++)
                    {
                        int tap = Max4(top[2 * ow], top[2 * ow + 1], bottom[2 * ow], bottom[2 * ow + 1]).Tap;
                        T d = dyRow[ow];
                        if (typeof(T) == typeof(float))
                        {
                            // A lane mask rather than four conditional stores: which tap wins is unpredictable.
                            Vector128<float> spread = Vector128.Create(Unsafe.As<T, float>(ref d))
                                & Vector128.Equals(Vector128.Create(tap), Vector128.Create(0, 1, 2, 3)).AsSingle();
                            Unsafe.WriteUnaligned(ref Unsafe.As<T, byte>(ref dxTop[2 * ow]), spread.AsUInt64().GetElement(0));
                            Unsafe.WriteUnaligned(ref Unsafe.As<T, byte>(ref dxBottom[2 * ow]), spread.AsUInt64().GetElement(1));
                            continue;
                        }
                        dxTop[2 * ow] = tap == 0 ? d : T.Zero;
                        dxTop[2 * ow + 1] = tap == 1 ? d : T.Zero;
                        dxBottom[2 * ow] = tap == 2 ? d : T.Zero;
                        dxBottom[2 * ow + 1] = tap == 3 ? d : T.Zero;
                    }
                    // An odd last column or row lies in no window (floor mode) and gets no gradient.
                    if ((g.Cols.Input & 1) != 0) dxTop[^1] = dxBottom[^1] = T.Zero;
                }
                if ((g.Rows.Input & 1) != 0) dx.Slice((g.Rows.Input - 1) * g.Cols.Input).Clear();
                return;
            }
            dx.Clear();
            for (int o = 0; o < dy.Length; o++) dx[ArgMax(x, g, o)] += dy[o];
        });

    /// <summary>The common 2×2 window with stride 2 and no padding or dilation (the seed CNN's MaxPool2D(2)): the
    /// windows are disjoint pairs of rows and columns, with a fast path that visits each input once.</summary>
    private static bool IsDisjointPairs(PoolGeometry g) =>
        IsPair(g.Rows) && IsPair(g.Cols);

    private static bool IsPair(WindowAxis axis) =>
        axis.Kernel == 2 && axis.Stride == 2 && axis.PadBefore == 0 && axis.Dilation == 1 && axis.Output == axis.Input / 2;

    /// <summary>The maximum of a 2×2 window and its tap in row-major order (0..3), by <see cref="ArgMax{T}"/>'s rule:
    /// the first of equal values, a NaN wins (the last NaN, as the scan would find it).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (T Value, int Tap) Max4<T>(T a, T b, T c, T d) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float))
        {
            var (value, index) = Max4(Unsafe.As<T, float>(ref a), Unsafe.As<T, float>(ref b), Unsafe.As<T, float>(ref c), Unsafe.As<T, float>(ref d));
            return (Unsafe.As<float, T>(ref value), index);
        }
        T max = a;
        int tap = 0;
        if (b > max || T.IsNaN(b)) { max = b; tap = 1; }
        if (c > max || T.IsNaN(c)) { max = c; tap = 2; }
        if (d > max || T.IsNaN(d)) { max = d; tap = 3; }
        return (max, tap);
    }

    /// <summary>The index in the plane of the largest value in the window of output <paramref name="o"/>. Ties go to
    /// the first in row-major order and a NaN wins (PyTorch's rule: <c>val &gt; max || isnan(val)</c>, starting from
    /// −∞ at the first tap inside the input).</summary>
    private static int ArgMax<T>(ReadOnlySpan<T> plane, PoolGeometry g, int o)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int oh = o / g.Cols.Output, ow = o % g.Cols.Output;
        var (iFirst, iEnd) = g.Rows.ValidTaps(oh);
        var (jFirst, jEnd) = g.Cols.ValidTaps(ow);
        int best = g.Rows.InputIndex(oh, iFirst) * g.Cols.Input + g.Cols.InputIndex(ow, jFirst);
        T max = T.NegativeInfinity;
        for (int i = iFirst; i < iEnd; i++)
        {
            int rowStart = g.Rows.InputIndex(oh, i) * g.Cols.Input;
            for (int j = jFirst; j < jEnd; j++)
            {
                int index = rowStart + g.Cols.InputIndex(ow, j);
                T v = plane[index];
                if (v > max || T.IsNaN(v)) { max = v; best = index; }
            }
        }
        return best;
    }

    /// <summary>The float <see cref="Max4{T}"/> without branches: on real data which tap wins is a coin toss, and
    /// mispredicted branches made the scalar version cost more than the convolution's im2col. Each step is a compare
    /// and two blends on lane 0 of a vector register.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (float Value, int Tap) Max4(float a, float b, float c, float d)
    {
        Vector128<float> max = Vector128.CreateScalarUnsafe(a);
        Vector128<int> tap = Vector128<int>.Zero;
        Take(ref max, ref tap, b, 1);
        Take(ref max, ref tap, c, 2);
        Take(ref max, ref tap, d, 3);
        return (max.ToScalar(), tap.ToScalar());

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Take(ref Vector128<float> max, ref Vector128<int> tap, float value, int index)
        {
            Vector128<float> candidate = Vector128.CreateScalarUnsafe(value);
            Vector128<float> wins = Vector128.GreaterThan(candidate, max) | ~Vector128.Equals(candidate, candidate);
            max = Vector128.ConditionalSelect(wins, candidate, max);
            tap = Vector128.ConditionalSelect(wins.AsInt32(), Vector128.Create(index), tap);
        }
    }

    /// <summary>y[o] = (Σ of the window of o) / divisor, where the divisor counts the padding that the window covers
    /// when <paramref name="countIncludePad"/> is set (PyTorch's default) and only the input positions otherwise.</summary>
    public static void AverageForward<T>(PoolGeometry g, bool countIncludePad, ArraySegment<T> input, ArraySegment<T> output)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        ForEachPlane(g, p =>
        {
            ReadOnlySpan<T> x = input.AsSpan(p * g.InPlane, g.InPlane);
            Span<T> y = output.AsSpan(p * g.OutPlane, g.OutPlane);
            for (int o = 0; o < y.Length; o++)
            {
                var (rows, cols, divisor) = AverageWindow<T>(g, countIncludePad, o);
                T sum = T.Zero;
                for (int ih = rows.Start; ih < rows.End; ih++)
                    for (int iw = cols.Start; iw < cols.End; iw++) sum += x[ih * g.Cols.Input + iw];
                y[o] = sum / divisor;
            }
        });

    /// <summary>dx[i] = Σ over the windows o that contain i of dy[o] / divisor(o).</summary>
    public static void AverageBackward<T>(PoolGeometry g, bool countIncludePad, ArraySegment<T> gradOutput, ArraySegment<T> gradInput)
        where T : unmanaged, IFloatingPointIeee754<T> =>
        ForEachPlane(g, p =>
        {
            ReadOnlySpan<T> dy = gradOutput.AsSpan(p * g.OutPlane, g.OutPlane);
            Span<T> dx = gradInput.AsSpan(p * g.InPlane, g.InPlane);
            dx.Clear();
            for (int o = 0; o < dy.Length; o++)
            {
                var (rows, cols, divisor) = AverageWindow<T>(g, countIncludePad, o);
                T share = dy[o] / divisor;
                for (int ih = rows.Start; ih < rows.End; ih++)
                    for (int iw = cols.Start; iw < cols.End; iw++) dx[ih * g.Cols.Input + iw] += share;
            }
        });

    /// <summary>The input rows and columns [Start, End) of the window of output <paramref name="o"/> and its divisor.
    /// As in PyTorch, a window is first clipped to the padded input (which matters in ceil mode), giving the count with
    /// padding, then to the input itself.</summary>
    private static ((int Start, int End) Rows, (int Start, int End) Cols, T Divisor) AverageWindow<T>(PoolGeometry g, bool countIncludePad, int o)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (rowStart, rowEnd, paddedRows) = Clip(g.Rows, o / g.Cols.Output);
        var (colStart, colEnd, paddedCols) = Clip(g.Cols, o % g.Cols.Output);
        int divisor = countIncludePad ? paddedRows * paddedCols : (rowEnd - rowStart) * (colEnd - colStart);
        return ((rowStart, rowEnd), (colStart, colEnd), T.CreateChecked(divisor));

        static (int Start, int End, int Padded) Clip(WindowAxis axis, int output)
        {
            int start = axis.InputIndex(output, 0);
            int end = Math.Min(start + axis.Kernel, axis.Input + axis.PadBefore);
            int padded = end - start;
            return (Math.Max(start, 0), Math.Min(end, axis.Input), padded);
        }
    }

    /// <summary>Runs <paramref name="body"/>(plane) for every plane, split over the threads.</summary>
    private static void ForEachPlane(PoolGeometry g, Action<int> body) =>
        Parallelism.For(g.Planes, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (first, end) =>
        {
            for (int p = first; p < end; p++) body(p);
        }, g.WorkPerPlane);
}
