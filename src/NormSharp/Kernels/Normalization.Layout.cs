namespace NormSharp.Kernels;

/// <summary>
/// Which elements share a mean and a variance. The whole normalization family is one computation,
/// y = (x − μ_g)/√(σ²_g + ε)·γ + β, and its members differ only in where the groups g lie (and in whether running
/// averages exist, which is the layers' business). Every member views its row-major input as
/// (<see cref="Outer"/>, <see cref="Groups"/>, <see cref="Segments"/>, <see cref="SegmentLength"/>): group g's
/// statistics cover its Outer·Segments·SegmentLength elements, and each run of SegmentLength contiguous elements
/// (one segment of one group at one outer index) has a single affine channel.
/// <list type="bullet">
/// <item>BatchNorm, input (N, C, S) with S the spatial product: (N, C, 1, S): over batch and space, per channel.</item>
/// <item>InstanceNorm: (1, N·C, 1, S): over space, per sample and channel.</item>
/// <item>GroupNorm with G groups: (1, N·G, C/G, S): over C/G channels and space, per sample.</item>
/// <item>LayerNorm and RMSNorm over the trailing D elements of R rows: (1, R, 1, D); their affine is per element.</item>
/// </list>
/// </summary>
/// <param name="Outer">The axis the statistics also sum over without it being contiguous (BatchNorm's batch axis).</param>
/// <param name="Groups">The number of independent statistics.</param>
/// <param name="Segments">Affine channels inside one group (GroupNorm's C/G), each a contiguous run.</param>
/// <param name="SegmentLength">Contiguous elements sharing one affine channel.</param>
/// <param name="GroupsPerSample">Groups per sample; the affine channel of (g, s) is (g mod GroupsPerSample)·Segments + s.</param>
internal readonly record struct NormalizationLayout(int Outer, int Groups, int Segments, int SegmentLength, int GroupsPerSample)
{
    /// <summary>Per-channel statistics for the channel axis <paramref name="axis"/> of <paramref name="dims"/>: the
    /// statistics sum over every other axis (BatchNorm; axis 1 for NCHW, the last axis for channels-last data).</summary>
    public static NormalizationLayout ChannelAxis(int[] dims, int axis)
    {
        int before = ShapeUtil.Product(dims.AsSpan(0, axis)), after = ShapeUtil.Product(dims.AsSpan(axis + 1));
        return new(before, dims[axis], 1, after, dims[axis]);
    }

    /// <summary>Per-sample statistics over each group of <paramref name="channels"/>/<paramref name="groups"/>
    /// channels (GroupNorm; InstanceNorm is groups = channels).</summary>
    public static NormalizationLayout ChannelGroups(int batch, int channels, int groups, int spatial) =>
        new(1, batch * groups, channels / groups, spatial, groups);

    /// <summary>Per-row statistics over the last <paramref name="rowLength"/> elements (LayerNorm, RMSNorm).</summary>
    public static NormalizationLayout Rows(int rows, int rowLength) => new(1, rows, 1, rowLength, rows);

    /// <summary>The contiguous elements of one group at one outer index.</summary>
    public int Run => Segments * SegmentLength;

    /// <summary>How many elements each group's statistics cover.</summary>
    public int GroupSize => Outer * Run;

    /// <summary>Distinct affine channels.</summary>
    public int Channels => GroupsPerSample * Segments;

    /// <summary>(group, segment) pairs: the finest level at which the backward pass keeps sums.</summary>
    public int Units => Groups * Segments;

    /// <summary>The affine channel of segment <paramref name="segment"/> of group <paramref name="group"/>.</summary>
    public int Channel(int group, int segment) => group % GroupsPerSample * Segments + segment;

    /// <summary>Where group <paramref name="group"/>'s run at outer index <paramref name="outer"/> starts.</summary>
    public int RunStart(int outer, int group) => (outer * Groups + group) * Run;

    /// <summary>The runs of group <paramref name="group"/>: one per outer index, Groups·Run elements apart.</summary>
    public Runs GroupRuns(int group) => new(RunStart(0, group), Outer, Run, Groups * Run);

    /// <summary>The runs of segment <paramref name="segment"/> of group <paramref name="group"/> (one affine
    /// channel): one per outer index.</summary>
    public Runs SegmentRuns(int group, int segment) => new(RunStart(0, group) + segment * SegmentLength, Outer, SegmentLength, Groups * Run);

    /// <summary>True when each group is a single strided column (BatchNorm on (N, C) or channels-last data): the
    /// kernels then vectorize across channels instead of along a group.</summary>
    public bool ChannelsAreContiguous => Outer > 1 && Run == 1;
}

/// <summary>One normalization: its layout, whether it subtracts the mean (RMSNorm does not: its "variance" is the
/// mean square), and whether γ and β are per element of a row (LayerNorm, RMSNorm) instead of per channel.</summary>
internal readonly record struct NormalizationPlan(NormalizationLayout Layout, bool Centered, bool ElementwiseAffine);

/// <summary>Per-group float64 statistics: mean (0 when not centred), biased variance (mean square when not
/// centred) and 1/√(variance + ε). The forward pass fills them; the backward pass reads mean and InvStd.</summary>
internal readonly record struct GroupStatistics(Memory<double> Mean, Memory<double> Variance, Memory<double> InvStd);
