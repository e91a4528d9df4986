using System.Numerics;
using System.Numerics.Tensors;

namespace NormSharp.Kernels;

/// <summary>
/// The column matrix that turns a convolution into a matrix product. For one image x (C, H, W), row
/// (c·kh + i)·kw + j of the column matrix holds, for every output position (oh, ow), the input value under kernel tap
/// (i, j) of channel c: x[c, oh·sh − padTop + i·dh, ow·sw − padLeft + j·dw], or 0 in the padding. Its shape is
/// (C·kh·kw, Hout·Wout). <see cref="Expand"/> builds it; <see cref="Fold"/> is its adjoint (scatter-add back to the
/// image), used for the gradient with respect to the input.
/// </summary>
internal static class Im2Col
{
    /// <summary>Fills <paramref name="columns"/> (C·kh·kw, Hout·Wout) from one image <paramref name="image"/> (C, H, W).</summary>
    public static void Expand<T>(ReadOnlySpan<T> image, Span<T> columns, int channels, WindowAxis rows, WindowAxis cols)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int inPlane = rows.Input * cols.Input, outPlane = rows.Output * cols.Output;
        int row = 0;
        for (int c = 0; c < channels; c++)
        {
            ReadOnlySpan<T> plane = image.Slice(c * inPlane, inPlane);
            for (int i = 0; i < rows.Kernel; i++)
            {
                var (ohFirst, ohEnd) = rows.ValidOutputs(i);
                for (int j = 0; j < cols.Kernel; j++, row++)
                {
                    Span<T> tap = columns.Slice(row * outPlane, outPlane);
                    var (owFirst, owEnd) = cols.ValidOutputs(j);
                    tap[..(ohFirst * cols.Output)].Clear();
                    tap[(ohEnd * cols.Output)..].Clear();
                    for (int oh = ohFirst; oh < ohEnd; oh++)
                    {
                        Span<T> dst = tap.Slice(oh * cols.Output, cols.Output);
                        ReadOnlySpan<T> src = plane.Slice(rows.InputIndex(oh, i) * cols.Input, cols.Input);
                        dst[..owFirst].Clear();
                        dst[owEnd..].Clear();
                        int iw = cols.InputIndex(owFirst, j);
                        if (cols.Stride == 1) src.Slice(iw, owEnd - owFirst).CopyTo(dst[owFirst..owEnd]);
                        else for (int ow = owFirst; ow < owEnd; ow++, iw += cols.Stride) dst[ow] = src[iw];
                    }
                }
            }
        }
    }

    /// <summary>Adds every entry of <paramref name="columns"/> (C·kh·kw, Hout·Wout) into the image position it was
    /// read from (the adjoint of <see cref="Expand"/>); entries that fall in the padding are dropped.</summary>
    public static void Fold<T>(ReadOnlySpan<T> columns, Span<T> image, int channels, WindowAxis rows, WindowAxis cols)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int inPlane = rows.Input * cols.Input, outPlane = rows.Output * cols.Output;
        int row = 0;
        for (int c = 0; c < channels; c++)
        {
            Span<T> plane = image.Slice(c * inPlane, inPlane);
            for (int i = 0; i < rows.Kernel; i++)
            {
                var (ohFirst, ohEnd) = rows.ValidOutputs(i);
                for (int j = 0; j < cols.Kernel; j++, row++)
                {
                    ReadOnlySpan<T> tap = columns.Slice(row * outPlane, outPlane);
                    var (owFirst, owEnd) = cols.ValidOutputs(j);
                    for (int oh = ohFirst; oh < ohEnd; oh++)
                    {
                        ReadOnlySpan<T> src = tap.Slice(oh * cols.Output, cols.Output);
                        Span<T> dst = plane.Slice(rows.InputIndex(oh, i) * cols.Input, cols.Input);
                        int iw = cols.InputIndex(owFirst, j);
                        if (cols.Stride == 1)
                        {
                            Span<T> target = dst.Slice(iw, owEnd - owFirst);
                            TensorPrimitives.Add(target, src[owFirst..owEnd], target);
                        }
                        else for (int ow = owFirst; ow < owEnd; ow++, iw += cols.Stride) dst[iw] += src[ow];
                    }
                }
            }
        }
    }
}
