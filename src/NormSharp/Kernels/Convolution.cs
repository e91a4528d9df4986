using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
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
/// Convolution by im2col + GEMM, in the three passes that the layers need; float32 convolutions whose output plane is
/// the input plane shifted (unit stride and dilation, "same" padding) run all three passes without a column matrix
/// instead, as implicit GEMMs (Convolution.Implicit.cs), and 3×3 ones on enough channels run the forward and the
/// input gradient as Winograd F(2×2, 3×3) where that is faster (Convolution.Winograd.cs). With X the column matrix of x
/// (<see cref="Im2Col"/>) and W the weight read as (OutChannels, PatchSize):
/// <list type="bullet">
/// <item>forward: y = W·X + b;</item>
/// <item>input gradient (data pass): dx = Fold(Wᵀ·dy), which is also the forward of a transposed convolution;</item>
/// <item>weight gradient: dW = Σ_images dy·Xᵀ, and db = Σ dy over images and positions.</item>
/// </list>
/// Several images share one GEMM (<see cref="ImagesPerGemm"/>): their column matrices sit side by side, so the product
/// is wide enough to fill the GEMM's register tiles (one image of the seed CNN's last convolution has only 49 output
/// positions, which a 32-column tile covers at 77 %) and the packing cost is paid once per group. The groups run in
/// parallel over the threads, each thread with its own buffers, and the GEMM inside runs on that thread. The forward
/// and data passes give the same bits for any grouping (each output is one dot product over the patch, or over the
/// output channels, blocked by that length alone), so the result does not depend on the thread count; the weight
/// pass sums over images in fixed groups.
/// <para>Why im2col rather than a direct loop: on the seed CNN's convolutions (3×3, batch 128, one thread) building the
/// column matrices took 0.4 / 3.9 / 3.8 ms and even a plain row-vectorized GEMM on them 3.6 / 46 / 144 ms, against
/// 9 / 172 / 357 ms for a direct convolution made of vectorized shifted-row multiply-adds (conv1 / conv2 / conv3).</para>
/// </summary>
internal static partial class Convolution
{
    /// <summary>The weight gradient sums over images in this many fixed groups (one partial sum each, added in group
    /// order), so its rounding does not depend on the thread count.</summary>
    private const int WeightGradientGroups = 16;

    /// <summary>Images join one GEMM until its column matrix holds about this many elements (1 MiB of float32, so the
    /// matrix and its packed copy stay in the 1 MiB L2 and the L3).</summary>
    private const int ColumnBudget = 1 << 18;

    /// <summary>Images per GEMM: as many as fit <see cref="ColumnBudget"/>, at least one; a pointwise convolution
    /// multiplies each image in place and takes one. It depends on the geometry only, never on the thread count.</summary>
    internal static int ImagesPerGemm(ConvGeometry g) =>
        g.IsPointwise ? 1 : Math.Max(1, Math.Min(g.Batch, (int)Math.Min(int.MaxValue, ColumnBudget / Math.Max(1L, (long)g.PatchSize * g.OutPlane))));

    /// <summary>y = W ⋆ x + b. x is (Batch, InChannels, H, W), y is (Batch, OutChannels, Hout, Wout); an empty bias
    /// means none.</summary>
    public static void Forward<T>(ConvGeometry g, ArraySegment<T> input, ArraySegment<T> weight, ArraySegment<T> bias, ArraySegment<T> output)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (RunsWinograd<T>(g))
        {
            ForwardWinograd(g, AsFloat(input), AsFloat(weight), AsFloat(bias), AsFloat(output));
            return;
        }
        if (RunsImplicitly<T>(g))
        {
            ForwardImplicit(g, AsFloat(input), AsFloat(weight).AsSpan(0, g.OutChannels * g.PatchSize),
                AsFloat(bias), AsFloat(output));
            return;
        }
        ForEachImageGroup<T>(g, (first, count, columns, products) =>
        {
            int width = count * g.OutPlane;
            ReadOnlySpan<T> x = input.AsSpan(first * g.InChannels * g.InPlane, count * g.InChannels * g.InPlane);
            Span<T> y = output.AsSpan(first * g.OutChannels * g.OutPlane, count * g.OutChannels * g.OutPlane);
            if (products is null)
            {
                // One image: the product lands in y directly, on top of the bias.
                if (columns is not null) Im2Col.Expand(x, columns, g.InChannels, g.Rows, g.Cols, width);
                FillChannels<T>(y, bias, g.OutChannels, g.OutPlane);
                LinearKernels.GemmDispatch(false, false, g.OutChannels, width, g.PatchSize,
                    weight, g.PatchSize, columns is null ? x : columns, width, y, width, accumulate: true);
                return;
            }
            for (int i = 0; i < count; i++)
                Im2Col.Expand(x.Slice(i * g.InChannels * g.InPlane, g.InChannels * g.InPlane), columns.AsSpan(i * g.OutPlane),
                    g.InChannels, g.Rows, g.Cols, width);
            LinearKernels.GemmDispatch(false, false, g.OutChannels, width, g.PatchSize,
                weight, g.PatchSize, columns, width, products, width, accumulate: false);
            // products is (OutChannels, images · positions); y wants each image's channels together.
            for (int i = 0; i < count; i++)
                for (int c = 0; c < g.OutChannels; c++)
                {
                    ReadOnlySpan<T> source = products.AsSpan(c * width + i * g.OutPlane, g.OutPlane);
                    Span<T> target = y.Slice((i * g.OutChannels + c) * g.OutPlane, g.OutPlane);
                    if (bias.Count == 0) VectorCopy.Copy(source, target);
                    else TensorPrimitives.Add(source, bias[c], target);
                }
        });
    }

    /// <summary>The float32 view of a segment of T that is float32 (the caller checked).</summary>
    private static ArraySegment<float> AsFloat<T>(ArraySegment<T> segment) => Unsafe.As<ArraySegment<T>, ArraySegment<float>>(ref segment);

    /// <summary>dx = Fold(Wᵀ·dy) + b: the gradient of the convolution with respect to its input, which is also the
    /// forward of the transposed convolution (then <paramref name="bias"/>, one value per input channel, is its bias;
    /// empty means none).</summary>
    public static void BackwardData<T>(ConvGeometry g, ArraySegment<T> gradOutput, ArraySegment<T> weight, ArraySegment<T> bias, ArraySegment<T> gradInput)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (InputGradientRunsWinograd<T>(g))
        {
            BackwardDataWinograd(g, AsFloat(gradOutput), AsFloat(weight), AsFloat(bias), AsFloat(gradInput));
            return;
        }
        if (RunsImplicitly<T>(g))
        {
            BackwardDataImplicit(g, AsFloat(gradOutput), AsFloat(weight),
                AsFloat(bias), AsFloat(gradInput));
            return;
        }
        ForEachImageGroup<T>(g, (first, count, columns, gathered) =>
        {
            int width = count * g.OutPlane;
            ReadOnlySpan<T> dy = gradOutput.AsSpan(first * g.OutChannels * g.OutPlane, count * g.OutChannels * g.OutPlane);
            Span<T> dx = gradInput.AsSpan(first * g.InChannels * g.InPlane, count * g.InChannels * g.InPlane);
            for (int i = 0; i < count; i++) FillChannels<T>(dx.Slice(i * g.InChannels * g.InPlane, g.InChannels * g.InPlane), bias, g.InChannels, g.InPlane);
            if (gathered is not null) GatherChannels(dy, gathered, count, g.OutChannels, g.OutPlane);
            // A pointwise convolution's column matrix is the image itself, so Wᵀ·dy accumulates straight into dx.
            LinearKernels.GemmDispatch(true, false, g.PatchSize, width, g.OutChannels, weight, g.PatchSize,
                gathered is null ? dy : gathered, width, columns is null ? dx : columns, width, accumulate: columns is null);
            if (columns is null) return;
            for (int i = 0; i < count; i++)
                Im2Col.Fold<T>(columns.AsSpan(i * g.OutPlane), dx.Slice(i * g.InChannels * g.InPlane, g.InChannels * g.InPlane),
                    g.InChannels, g.Rows, g.Cols, width);
        });
    }

    /// <summary>dW = Σ_images dy·Xᵀ, the gradient with respect to the weight (OutChannels, InChannels, kh, kw), and,
    /// unless <paramref name="gradBias"/> is empty, db = Σ dy over images and positions (one value per output
    /// channel), taken while dy is at hand where the pass stages it.</summary>
    public static void BackwardWeight<T>(ConvGeometry g, ArraySegment<T> input, ArraySegment<T> gradOutput, ArraySegment<T> gradWeight,
        ArraySegment<T> gradBias = default)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int weightLength = g.OutChannels * g.PatchSize;
        if (g.Batch == 0)
        {
            gradWeight.AsSpan(0, weightLength).Clear();
            if (gradBias.Count > 0) gradBias.AsSpan(0, g.OutChannels).Clear();
            return;
        }
        if (WeightGradientRunsImplicitly<T>(g))
        {
            BackwardWeightImplicit(g, AsFloat(input), AsFloat(gradOutput), AsFloat(gradWeight), AsFloat(gradBias));
            return;
        }
        if (gradBias.Count > 0) ChannelSums<T>(gradOutput.AsSpan(0, g.Batch * g.OutChannels * g.OutPlane), g.Batch, g.OutChannels, g.OutPlane, gradBias.AsSpan(0, g.OutChannels));
        int groups = Math.Min(g.Batch, WeightGradientGroups), imagesPerGemm = ImagesPerGemm(g);
        // Group 0 sums straight into dW; the others into partial sums that are added afterwards in group order.
        T[] partials = BufferPool<T>.Shared.Rent(Math.Max((groups - 1) * weightLength, 1));
        WithBuffers<T>(g, groups, g.MultiplyAddsPerImage * g.Batch / groups, (group, columns, gathered) =>
        {
            Span<T> sum = group == 0 ? gradWeight.AsSpan(0, weightLength) : partials.AsSpan((group - 1) * weightLength, weightLength);
            int firstImage = (int)((long)g.Batch * group / groups), endImage = (int)((long)g.Batch * (group + 1) / groups);
            if (g.PatchSize <= DotProductPatch && columns is not null)
            {
                WeightGradientByDots(g, input, gradOutput, firstImage, endImage, columns, sum);
                return;
            }
            for (int n = firstImage; n < endImage; n += imagesPerGemm)
            {
                int count = Math.Min(imagesPerGemm, endImage - n), width = count * g.OutPlane;
                ReadOnlySpan<T> x = input.AsSpan(n * g.InChannels * g.InPlane, count * g.InChannels * g.InPlane);
                ReadOnlySpan<T> dy = gradOutput.AsSpan(n * g.OutChannels * g.OutPlane, count * g.OutChannels * g.OutPlane);
                if (columns is not null)
                    for (int i = 0; i < count; i++)
                        Im2Col.Expand(x.Slice(i * g.InChannels * g.InPlane, g.InChannels * g.InPlane), columns.AsSpan(i * g.OutPlane),
                            g.InChannels, g.Rows, g.Cols, width);
                if (count > 1) GatherChannels(dy, gathered!, count, g.OutChannels, g.OutPlane);
                LinearKernels.GemmDispatch(false, true, g.OutChannels, g.PatchSize, width,
                    count > 1 ? gathered! : dy, width, columns is null ? x : columns, width, sum, g.PatchSize, accumulate: n > firstImage);
            }
        });
        Span<T> dw = gradWeight.AsSpan(0, weightLength);
        for (int group = 1; group < groups; group++)
            TensorPrimitives.Add(dw, partials.AsSpan((group - 1) * weightLength, weightLength), dw);
        BufferPool<T>.Shared.Return(partials);
    }

    /// <summary>Patches up to this size (a first layer on one or a few input channels: the seed CNN's 1×3×3) take
    /// <see cref="WeightGradientByDots"/>: as a GEMM, dW = dy·Xᵀ is a few tiles deep across every position, and
    /// packing both operands for them cost more than the multiply-adds (measured 13.8 GFLOP/s).</summary>
    private const int DotProductPatch = 16;

    /// <summary>dW[o, t] = Σ_images Σ_positions dy[n, o, q] · X_n[t, q] as dot products per image, three output
    /// channels by three taps at a time so that each vector of dy and X loaded feeds three multiply-adds; an image's
    /// column matrix (at most 16 rows) stays in L1.</summary>
    private static void WeightGradientByDots<T>(ConvGeometry g, ArraySegment<T> input, ArraySegment<T> gradOutput,
        int firstImage, int endImage, T[] columns, Span<T> sum)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int positions = g.OutPlane, patch = g.PatchSize;
        Span<T> dots = stackalloc T[9];
        for (int n = firstImage; n < endImage; n++)
        {
            Im2Col.Expand(input.AsSpan(n * g.InChannels * g.InPlane, g.InChannels * g.InPlane), columns, g.InChannels, g.Rows, g.Cols, positions);
            ReadOnlySpan<T> dy = gradOutput.AsSpan(n * g.OutChannels * positions, g.OutChannels * positions);
            for (int o = 0; o < g.OutChannels; o += 3)
                for (int t = 0; t < patch; t += 3)
                {
                    // Rows past the end repeat the last one; their dots are computed and dropped.
                    ref T a = ref MemoryMarshal.GetReference(dy), b = ref MemoryMarshal.GetArrayDataReference(columns);
                    Dots3x3(positions,
                        ref Unsafe.Add(ref a, o * positions), ref Unsafe.Add(ref a, Math.Min(o + 1, g.OutChannels - 1) * positions),
                        ref Unsafe.Add(ref a, Math.Min(o + 2, g.OutChannels - 1) * positions),
                        ref Unsafe.Add(ref b, t * positions), ref Unsafe.Add(ref b, Math.Min(t + 1, patch - 1) * positions),
                        ref Unsafe.Add(ref b, Math.Min(t + 2, patch - 1) * positions), dots);
                    for (int i = 0; i < 3 && o + i < g.OutChannels; i++)
                        for (int j = 0; j < 3 && t + j < patch; j++)
                        {
                            ref T target = ref sum[(o + i) * patch + t + j];
                            target = n == firstImage ? dots[i * 3 + j] : target + dots[i * 3 + j];
                        }
                }
        }
    }

    /// <summary>dots[3i + j] = ⟨a_i, b_j⟩ for three rows a and three rows b of <paramref name="length"/> elements.</summary>
    private static void Dots3x3<T>(int length, ref T a0, ref T a1, ref T a2, ref T b0, ref T b1, ref T b2, Span<T> dots)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Vector<T> s00 = default, s01 = default, s02 = default, s10 = default, s11 = default, s12 = default;
        Vector<T> s20 = default, s21 = default, s22 = default;
        int q = 0, width = Vector<T>.Count;
        for (; q <= length - width; q += width)
        {
            nuint at = (nuint)q;
            Vector<T> x0 = Vector.LoadUnsafe(ref a0, at), x1 = Vector.LoadUnsafe(ref a1, at), x2 = Vector.LoadUnsafe(ref a2, at);
            Vector<T> y0 = Vector.LoadUnsafe(ref b0, at), y1 = Vector.LoadUnsafe(ref b1, at), y2 = Vector.LoadUnsafe(ref b2, at);
            s00 += x0 * y0; s01 += x0 * y1; s02 += x0 * y2;
            s10 += x1 * y0; s11 += x1 * y1; s12 += x1 * y2;
            s20 += x2 * y0; s21 += x2 * y1; s22 += x2 * y2;
        }
        dots[0] = Vector.Sum(s00); dots[1] = Vector.Sum(s01); dots[2] = Vector.Sum(s02);
        dots[3] = Vector.Sum(s10); dots[4] = Vector.Sum(s11); dots[5] = Vector.Sum(s12);
        dots[6] = Vector.Sum(s20); dots[7] = Vector.Sum(s21); dots[8] = Vector.Sum(s22);
        for (; q < length; q++)
        {
            T x0 = Unsafe.Add(ref a0, q), x1 = Unsafe.Add(ref a1, q), x2 = Unsafe.Add(ref a2, q);
            T y0 = Unsafe.Add(ref b0, q), y1 = Unsafe.Add(ref b1, q), y2 = Unsafe.Add(ref b2, q);
            dots[0] += x0 * y0; dots[1] += x0 * y1; dots[2] += x0 * y2;
            dots[3] += x1 * y0; dots[4] += x1 * y1; dots[5] += x1 * y2;
            dots[6] += x2 * y0; dots[7] += x2 * y1; dots[8] += x2 * y2;
        }
    }

    /// <summary>Runs <paramref name="body"/>(first image, image count, columns, channel buffer) for the batch cut into
    /// groups of <see cref="ImagesPerGemm"/> images, split over the threads. columns is the thread's column-matrix
    /// buffer (null for a pointwise convolution, whose column matrix is the image itself); the channel buffer, for
    /// (OutChannels, images · positions) data, is null when groups hold a single image.</summary>
    private static void ForEachImageGroup<T>(ConvGeometry g, Action<int, int, T[]?, T[]?> body)
    {
        int images = ImagesPerGemm(g), groups = (g.Batch + images - 1) / images;
        WithBuffers<T>(g, groups, g.MultiplyAddsPerImage * images, (group, columns, channels) =>
        {
            int first = group * images;
            int count = Math.Min(images, g.Batch - first);
            body(first, count, columns, count > 1 ? channels : null);
        });
    }

    /// <summary>Runs <paramref name="body"/>(item, columns, channel buffer) for items [0, <paramref name="count"/>)
    /// split over the threads, each thread with its own buffers from the pool, sized for <see cref="ImagesPerGemm"/>
    /// images: the column matrix (none for a pointwise convolution) and an (OutChannels, images · positions) buffer
    /// (none for one image per GEMM).</summary>
    private static void WithBuffers<T>(ConvGeometry g, int count, long workPerItem, Action<int, T[]?, T[]?> body)
    {
        int images = ImagesPerGemm(g);
        int columnLength = WorkspaceLength(g, (long)g.PatchSize * g.OutPlane * images, "column matrix");
        int channelLength = WorkspaceLength(g, (long)g.OutChannels * g.OutPlane * images, "channel buffer");
        Parallelism.For(count, (first, end) =>
        {
            T[]? columns = g.IsPointwise ? null : BufferPool<T>.Shared.Rent(columnLength);
            T[]? channels = images > 1 ? BufferPool<T>.Shared.Rent(channelLength) : null;
            try
            {
                for (int item = first; item < end; item++) body(item, columns, channels);
            }
            finally
            {
                if (columns is not null) BufferPool<T>.Shared.Return(columns);
                if (channels is not null) BufferPool<T>.Shared.Return(channels);
            }
        }, workPerItem);
    }

    /// <summary><paramref name="length"/> as an array length, or a clear error when one array cannot hold it: a column
    /// matrix has InChannels·kh·kw·Hout·Wout elements per image, past int's range on large images.</summary>
    private static int WorkspaceLength(ConvGeometry g, long length, string what) =>
        length <= Array.MaxLength ? (int)length
        : throw new NotSupportedException($"Convolution with {g.InChannels} input and {g.OutChannels} output channels, a {g.Rows.Kernel}×{g.Cols.Kernel} kernel " +
            $"and a {g.Rows.Output}×{g.Cols.Output} output: its {what} needs {length} elements, more than one array holds ({Array.MaxLength}).");

    /// <summary>Copies <paramref name="count"/> images of (channels, plane) data into one (channels, count · plane)
    /// matrix: row c holds channel c of every image in turn.</summary>
    private static void GatherChannels<T>(ReadOnlySpan<T> images, Span<T> matrix, int count, int channels, int plane)
        where T : unmanaged
    {
        for (int i = 0; i < count; i++)
            for (int c = 0; c < channels; c++)
                VectorCopy.Copy(images.Slice((i * channels + c) * plane, plane), matrix.Slice((c * count + i) * plane, plane));
    }

    /// <summary>sums[c] = Σ over images and positions of data[n, c, ·]: the bias gradient of a convolution (data = dy)
    /// or of a transposed convolution. Channels are split over the threads; each channel's sum runs over the images in
    /// order whatever the split, so the result does not depend on the thread count.</summary>
    public static unsafe void ChannelSums<T>(ReadOnlySpan<T> data, int batch, int channels, int plane, Span<T> sums)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if ((long)batch * channels * plane > data.Length || channels > sums.Length)
            throw new ArgumentException($"Convolution.ChannelSums: {batch}×{channels}×{plane} values into {channels} sums, but the spans hold {data.Length} and {sums.Length}.");
        fixed (T* values = data, totals = sums)
            Parallelism.For(channels, new ChannelSumChunks<T>(values, batch, channels, plane, totals), workPerItem: (long)batch * plane);
    }

    /// <summary>The sums of channels [start, end) for <see cref="ChannelSums"/>.</summary>
    private readonly unsafe struct ChannelSumChunks<T>(T* data, int batch, int channels, int plane, T* sums) : IChunkBody
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            // Image by image, so that the reads run through memory in order.
            new Span<T>(sums + start, end - start).Clear();
            for (int n = 0; n < batch; n++)
                for (int c = start; c < end; c++)
                    sums[c] += TensorPrimitives.Sum(new ReadOnlySpan<T>(data + ((nint)n * channels + c) * plane, plane));
        }
    }

    /// <summary>Sets each channel plane of one image to its bias value, or to zero when there is no bias.</summary>
    private static void FillChannels<T>(Span<T> image, ArraySegment<T> bias, int channels, int plane)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (bias.Count == 0) { image.Clear(); return; }
        for (int c = 0; c < channels; c++) image.Slice(c * plane, plane).Fill(bias[c]);
    }
}
