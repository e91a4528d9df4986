using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;

namespace NormSharp.Kernels;

/// <summary>
/// The sizes of a 2-D convolution (cross-correlation, as PyTorch computes it) on NCHW data, from the convolution's
/// side: it reads x (Batch, InChannels, Rows.Input, Cols.Input) with a weight (OutChannels, InChannels, kh, kw) and
/// writes y (Batch, OutChannels, Rows.Output, Cols.Output). A transposed convolution runs this geometry backwards.
/// </summary>
internal readonly record struct ConvGeometry(int Batch, int InChannels, int OutChannels, WindowAxis Rows, WindowAxis Cols)
{
    /// <summary>Elements in one input channel plane.</summary>
    public int InPlane => Rows.Input * Cols.Input;

    /// <summary>Elements in one output channel plane.</summary>
    public int OutPlane => Rows.Output * Cols.Output;

    /// <summary>Elements under one output position's window: InChannels·kh·kw, the rows of the column matrix.</summary>
    public int PatchSize => InChannels * Rows.Kernel * Cols.Kernel;

    /// <summary>Multiply-adds of the forward pass for one image (the backward data and weight passes cost the same each).</summary>
    public long MultiplyAddsPerImage => (long)OutChannels * OutPlane * PatchSize;

    /// <summary>A 1×1 kernel with unit stride and no padding reads the image itself as its column matrix.</summary>
    public bool IsPointwise => Rows.Kernel == 1 && Cols.Kernel == 1 && Rows.Stride == 1 && Cols.Stride == 1
        && Rows.PadBefore == 0 && Cols.PadBefore == 0 && Rows.Output == Rows.Input && Cols.Output == Cols.Input;
}

/// <summary>
/// Convolution by im2col + GEMM, in the three passes that the layers need. Per image, with X the column matrix of x
/// (<see cref="Im2Col"/>) and W the weight read as (OutChannels, PatchSize):
/// <list type="bullet">
/// <item>forward: y = W·X + b;</item>
/// <item>input gradient (data pass): dx = Fold(Wᵀ·dy), which is also the forward of a transposed convolution;</item>
/// <item>weight gradient: dW = Σ_images dy·Xᵀ, and db = Σ dy over images and positions.</item>
/// </list>
/// Images are independent in the first two passes, so they run in parallel over the batch; each image gives the same
/// bits whatever the thread count. A single image runs on one thread here and leaves the threads to the GEMM.
/// <para>Why im2col rather than a direct loop: on the seed CNN's convolutions (3×3, batch 128, one thread) building the
/// column matrices took 0.4 / 3.9 / 3.8 ms and even a plain row-vectorized GEMM on them 3.6 / 46 / 144 ms, against
/// 9 / 172 / 357 ms for a direct convolution made of vectorized shifted-row multiply-adds (conv1 / conv2 / conv3).</para>
/// </summary>
internal static class Convolution
{
    /// <summary>The weight gradient sums over images in this many fixed groups (one partial sum each, added in group
    /// order), so its rounding does not depend on the thread count.</summary>
    private const int WeightGradientGroups = 16;

    /// <summary>y = W ⋆ x + b. x is (Batch, InChannels, H, W), y is (Batch, OutChannels, Hout, Wout); an empty bias
    /// means none.</summary>
    public static void Forward<T>(ConvGeometry g, ArraySegment<T> input, ArraySegment<T> weight, ArraySegment<T> bias, ArraySegment<T> output)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ForEachWithColumns<T>(g, g.Batch, g.MultiplyAddsPerImage, (n, columns) =>
        {
            ReadOnlySpan<T> x = input.AsSpan(n * g.InChannels * g.InPlane, g.InChannels * g.InPlane);
            Span<T> y = output.AsSpan(n * g.OutChannels * g.OutPlane, g.OutChannels * g.OutPlane);
            if (columns is not null) Im2Col.Expand(x, columns, g.InChannels, g.Rows, g.Cols);
            FillChannels<T>(y, bias, g.OutChannels, g.OutPlane);
            LinearKernels.GemmDispatch(false, false, g.OutChannels, g.OutPlane, g.PatchSize,
                weight, g.PatchSize, columns is null ? x : columns, g.OutPlane, y, g.OutPlane, accumulate: true);
        });
    }

    /// <summary>dx = Fold(Wᵀ·dy) + b: the gradient of the convolution with respect to its input, which is also the
    /// forward of the transposed convolution (then <paramref name="bias"/>, one value per input channel, is its bias;
    /// empty means none).</summary>
    public static void BackwardData<T>(ConvGeometry g, ArraySegment<T> gradOutput, ArraySegment<T> weight, ArraySegment<T> bias, ArraySegment<T> gradInput)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ForEachWithColumns<T>(g, g.Batch, g.MultiplyAddsPerImage, (n, columns) =>
        {
            ReadOnlySpan<T> dy = gradOutput.AsSpan(n * g.OutChannels * g.OutPlane, g.OutChannels * g.OutPlane);
            Span<T> dx = gradInput.AsSpan(n * g.InChannels * g.InPlane, g.InChannels * g.InPlane);
            FillChannels<T>(dx, bias, g.InChannels, g.InPlane);
            // A pointwise convolution's column matrix is the image itself, so Wᵀ·dy accumulates straight into dx.
            LinearKernels.GemmDispatch(true, false, g.PatchSize, g.OutPlane, g.OutChannels, weight, g.PatchSize, dy, g.OutPlane,
                columns is null ? dx : columns, g.OutPlane, accumulate: columns is null);
            if (columns is not null) Im2Col.Fold<T>(columns, dx, g.InChannels, g.Rows, g.Cols);
        });
    }

    /// <summary>dW = Σ_images dy·Xᵀ, the gradient with respect to the weight (OutChannels, InChannels, kh, kw).</summary>
    public static void BackwardWeight<T>(ConvGeometry g, ArraySegment<T> input, ArraySegment<T> gradOutput, ArraySegment<T> gradWeight)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int weightLength = g.OutChannels * g.PatchSize;
        if (g.Batch == 0) { gradWeight.AsSpan(0, weightLength).Clear(); return; }
        int groups = Math.Min(g.Batch, WeightGradientGroups);
        // Group 0 sums straight into dW; the others into partial sums that are added afterwards in group order.
        T[] partials = BufferPool<T>.Shared.Rent(Math.Max((groups - 1) * weightLength, 1));
        ForEachWithColumns<T>(g, groups, g.MultiplyAddsPerImage * g.Batch / groups, (group, columns) =>
        {
            Span<T> sum = group == 0 ? gradWeight.AsSpan(0, weightLength) : partials.AsSpan((group - 1) * weightLength, weightLength);
            int firstImage = (int)((long)g.Batch * group / groups), endImage = (int)((long)g.Batch * (group + 1) / groups);
            for (int n = firstImage; n < endImage; n++)
            {
                ReadOnlySpan<T> x = input.AsSpan(n * g.InChannels * g.InPlane, g.InChannels * g.InPlane);
                ReadOnlySpan<T> dy = gradOutput.AsSpan(n * g.OutChannels * g.OutPlane, g.OutChannels * g.OutPlane);
                if (columns is not null) Im2Col.Expand(x, columns, g.InChannels, g.Rows, g.Cols);
                LinearKernels.GemmDispatch(false, true, g.OutChannels, g.PatchSize, g.OutPlane,
                    dy, g.OutPlane, columns is null ? x : columns, g.OutPlane, sum, g.PatchSize, accumulate: n > firstImage);
            }
        });
        Span<T> dw = gradWeight.AsSpan(0, weightLength);
        for (int group = 1; group < groups; group++)
            TensorPrimitives.Add(dw, partials.AsSpan((group - 1) * weightLength, weightLength), dw);
        BufferPool<T>.Shared.Return(partials);
    }

    /// <summary>Runs <paramref name="body"/>(item, columns) for items [0, <paramref name="count"/>) split over the
    /// threads, each thread with its own column-matrix buffer from the pool (null for a pointwise convolution, whose
    /// column matrix is the image itself).</summary>
    private static void ForEachWithColumns<T>(ConvGeometry g, int count, long workPerItem, Action<int, T[]?> body)
    {
        Parallelism.For(count, (first, end) =>
        {
            T[]? columns = g.IsPointwise ? null : BufferPool<T>.Shared.Rent(g.PatchSize * g.OutPlane);
            try
            {
                for (int item = first; item < end; item++) body(item, columns);
            }
            finally
            {
                if (columns is not null) BufferPool<T>.Shared.Return(columns);
            }
        }, workPerItem);
    }

    /// <summary>sums[c] = Σ over images and positions of data[n, c, ·]: the bias gradient of a convolution (data = dy)
    /// or of a transposed convolution.</summary>
    public static void ChannelSums<T>(ReadOnlySpan<T> data, int batch, int channels, int plane, Span<T> sums)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        sums.Clear();
        for (int n = 0; n < batch; n++)
            for (int c = 0; c < channels; c++)
                sums[c] += TensorPrimitives.Sum(data.Slice((n * channels + c) * plane, plane));
    }

    /// <summary>Sets each channel plane of one image to its bias value, or to zero when there is no bias.</summary>
    private static void FillChannels<T>(Span<T> image, ArraySegment<T> bias, int channels, int plane)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (bias.Count == 0) { image.Clear(); return; }
        for (int c = 0; c < channels; c++) image.Slice(c * plane, plane).Fill(bias[c]);
    }
}
