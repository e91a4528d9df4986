using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace NormSharp.Kernels;

/// <summary>
/// The column matrix that turns a convolution into a matrix product. For one image x (C, H, W), row
/// (c·kh + i)·kw + j of the column matrix holds, for every output position (oh, ow), the input value under kernel tap
/// (i, j) of channel c: x[c, oh·sh − padTop + i·dh, ow·sw − padLeft + j·dw], or 0 in the padding. Its shape is
/// (C·kh·kw, Hout·Wout). <see cref="Expand"/> builds it; <see cref="Fold"/> is its adjoint (scatter-add back to the
/// image), used for the gradient with respect to the input. The rows may be longer than one image's Hout·Wout
/// (<c>rowStride</c>): the convolution lays several images' column matrices side by side so that one GEMM serves them
/// all. Both walk the same pairs of rows, so the walk is written
/// once (<see cref="ForEachRow"/>) and each supplies only what it does with a pair.
/// </summary>
internal static class Im2Col
{
    /// <summary>Fills <paramref name="columns"/> (C·kh·kw rows, each <paramref name="rowStride"/> long, of which this
    /// image's Hout·Wout entries come first) from one image <paramref name="image"/> (C, H, W).</summary>
    public static void Expand<T>(ReadOnlySpan<T> image, Span<T> columns, int channels, WindowAxis rows, WindowAxis cols, int rowStride)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (IsShiftedPlane(rows, cols))
        {
            ExpandShifted(image, columns, channels, rows, cols, rowStride);
            return;
        }
        var copy = new ExpandRow<T>(image, columns, cols);
        ForEachRow(ref copy, channels, rows, cols, rowStride);
    }

    /// <summary>Adds every entry of <paramref name="columns"/> (laid out as in <see cref="Expand{T}"/>) into the image
    /// position it was read from (the adjoint of Expand); entries that fall in the padding are dropped.</summary>
    /// <remarks>The "same"-size fast path zeroes the padding entries of <paramref name="columns"/> in place (they are
    /// about to be dropped), so the caller must not need them afterwards.</remarks>
    public static void Fold<T>(Span<T> columns, Span<T> image, int channels, WindowAxis rows, WindowAxis cols, int rowStride)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (IsShiftedPlane(rows, cols))
        {
            FoldShifted(columns, image, channels, rows, cols, rowStride);
            return;
        }
        var add = new FoldRow<T>(columns, image, cols);
        ForEachRow(ref add, channels, rows, cols, rowStride);
    }

    /// <summary>Unit stride and dilation with an output as large as the input ("same" padding, as in the seed CNN):
    /// then the column-matrix row of tap (i, j) is the channel plane shifted by d = (i − padTop)·W + (j − padLeft),
    /// row[q] = plane[q + d], except at the positions whose tap reads padding. Those are the q + d outside the plane
    /// (rows above or below) and, within each row, the |j − padLeft| columns that wrap around to the neighbouring
    /// row. So a row is one contiguous copy plus a few zeroed entries, instead of one short copy per output row.</summary>
    internal static bool IsShiftedPlane(WindowAxis rows, WindowAxis cols) =>
        rows.Stride == 1 && cols.Stride == 1 && rows.Dilation == 1 && cols.Dilation == 1
        && rows.Output == rows.Input && cols.Output == cols.Input;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ExpandShifted<T>(ReadOnlySpan<T> image, Span<T> columns, int channels, WindowAxis rows, WindowAxis cols, int rowStride)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int width = cols.Input, plane = rows.Input * width, tap = 0;
        for (int c = 0; c < channels; c++)
            for (int i = 0; i < rows.Kernel; i++)
                for (int j = 0; j < cols.Kernel; j++, tap++)
                {
                    int shift = j - cols.PadBefore, d = (i - rows.PadBefore) * width + shift;
                    var (start, end) = InsidePlane(d, plane);
                    Span<T> row = columns.Slice(tap * rowStride, plane);
                    row[..start].Clear();
                    row[end..].Clear();
                    // A tap more than a plane away (padding wider than the image) reads padding only.
                    if (start < end) VectorCopy.Copy(image.Slice(c * plane + start + d, end - start), row[start..end]);
                    ClearWrappedColumns(row, width, shift);
                }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FoldShifted<T>(Span<T> columns, Span<T> image, int channels, WindowAxis rows, WindowAxis cols, int rowStride)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int width = cols.Input, plane = rows.Input * width, tap = 0;
        for (int c = 0; c < channels; c++)
            for (int i = 0; i < rows.Kernel; i++)
                for (int j = 0; j < cols.Kernel; j++, tap++)
                {
                    int shift = j - cols.PadBefore, d = (i - rows.PadBefore) * width + shift;
                    var (start, end) = InsidePlane(d, plane);
                    Span<T> row = columns.Slice(tap * rowStride, plane);
                    // Zeroed wrapped entries add nothing, so one vector add covers the whole shifted range.
                    if (start == end) continue;
                    ClearWrappedColumns(row, width, shift);
                    Span<T> target = image.Slice(c * plane + start + d, end - start);
                    TensorPrimitives.Add(target, row[start..end], target);
                }
    }

    /// <summary>The positions q whose q + <paramref name="d"/> lies in a plane of <paramref name="plane"/> elements.</summary>
    private static (int Start, int End) InsidePlane(int d, int plane)
    {
        int start = Math.Clamp(-d, 0, plane), end = Math.Clamp(plane - d, 0, plane);
        return (start, Math.Max(start, end));
    }

    /// <summary>Zeroes, in every row of the plane, the columns whose tap at horizontal offset <paramref name="shift"/>
    /// falls outside the image row: the first −shift columns, or the last shift.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ClearWrappedColumns<T>(Span<T> row, int width, int shift) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (shift == 0) return;
        int first = shift < 0 ? 0 : Math.Max(0, width - shift), end = shift < 0 ? Math.Min(width, -shift) : width;
        for (int rowStart = 0; rowStart < row.Length; rowStart += width)
            row.Slice(rowStart + first, end - first).Clear();
    }

    /// <summary>What Expand or Fold does with one row of the column matrix (one tap, one output row oh).</summary>
    private interface IRowPair
    {
        /// <param name="columnStart">Offset of the Wout entries in the column matrix.</param>
        /// <param name="imageStart">Offset of the image row that the tap reads, or −1 when it lies in the padding.</param>
        /// <param name="owFirst">First output column whose tap reads inside the image row.</param>
        /// <param name="owEnd">End of those output columns; the others read padding.</param>
        /// <param name="iwFirst">Image column read by <paramref name="owFirst"/>; later ones step by the stride.</param>
        void Pair(int columnStart, int imageStart, int owFirst, int owEnd, int iwFirst);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForEachRow<TPair>(ref TPair pair, int channels, WindowAxis rows, WindowAxis cols, int rowStride)
        where TPair : struct, IRowPair, allows ref struct
    {
        int inPlane = rows.Input * cols.Input;
        int tap = 0;
        for (int c = 0; c < channels; c++)
            for (int i = 0; i < rows.Kernel; i++)
            {
                var (ohFirst, ohEnd) = rows.ValidOutputs(i);
                for (int j = 0; j < cols.Kernel; j++, tap++)
                {
                    var (owFirst, owEnd) = cols.ValidOutputs(j);
                    int iwFirst = cols.InputIndex(owFirst, j);
                    for (int oh = 0; oh < rows.Output; oh++)
                    {
                        int imageStart = oh >= ohFirst && oh < ohEnd ? c * inPlane + rows.InputIndex(oh, i) * cols.Input : -1;
                        pair.Pair(tap * rowStride + oh * cols.Output, imageStart, owFirst, owEnd, iwFirst);
                    }
                }
            }
    }

    private readonly ref struct ExpandRow<T>(ReadOnlySpan<T> image, Span<T> columns, WindowAxis cols) : IRowPair
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly ReadOnlySpan<T> _image = image;
        private readonly Span<T> _columns = columns;
        private readonly WindowAxis _cols = cols;

        public void Pair(int columnStart, int imageStart, int owFirst, int owEnd, int iwFirst)
        {
            Span<T> dst = _columns.Slice(columnStart, _cols.Output);
            if (imageStart < 0) { dst.Clear(); return; }
            dst[..owFirst].Clear();
            dst[owEnd..].Clear();
            ReadOnlySpan<T> src = _image.Slice(imageStart, _cols.Input);
            if (_cols.Stride == 1) src.Slice(iwFirst, owEnd - owFirst).CopyTo(dst[owFirst..owEnd]);
            else for (int ow = owFirst, iw = iwFirst; ow < owEnd; ow++, iw += _cols.Stride) dst[ow] = src[iw];
        }
    }

    private readonly ref struct FoldRow<T>(ReadOnlySpan<T> columns, Span<T> image, WindowAxis cols) : IRowPair
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        private readonly ReadOnlySpan<T> _columns = columns;
        private readonly Span<T> _image = image;
        private readonly WindowAxis _cols = cols;

        public void Pair(int columnStart, int imageStart, int owFirst, int owEnd, int iwFirst)
        {
            if (imageStart < 0) return;
            ReadOnlySpan<T> src = _columns.Slice(columnStart, _cols.Output);
            Span<T> dst = _image.Slice(imageStart, _cols.Input);
            if (_cols.Stride == 1)
            {
                Span<T> target = dst.Slice(iwFirst, owEnd - owFirst);
                TensorPrimitives.Add(target, src[owFirst..owEnd], target);
            }
            else for (int ow = owFirst, iw = iwFirst; ow < owEnd; ow++, iw += _cols.Stride) dst[iw] += src[ow];
        }
    }
}
