using System.Globalization;
using NormSharp.Onnx.Protobuf;

namespace NormSharp.Onnx;

/// <summary>
/// What the exporter writes and the importer reads besides the operators themselves: the opset and IR version, and
/// the node metadata (onnx NodeProto.metadata_props) in which NormSharp records what ONNX cannot say — the module type
/// (a Keras-convention BatchNorm, an InstanceNorm exported in BatchNormalization form), affine parameters the ONNX
/// operator requires but the module lacks, and BatchNorm bookkeeping used only when training continues.
/// </summary>
public static class OnnxFormat
{
    /// <summary>The opset of the default domain that exported models import: 21, the first with per-channel
    /// GroupNormalization (ONNX Runtime runs every exported node at this opset; the tests use 1.31).</summary>
    public const int Opset = 21;

    /// <summary>The IR version written: 10, the IR of opset 21 (and the first with node metadata).</summary>
    public const long IrVersion = 10;

    /// <summary>The oldest opset the importer reads: 6, read by the rules of opset 7 where they agree (with a warning,
    /// as ONNX Runtime does); each operator is read by the rules of the opset the model declares.</summary>
    public const int MinImportOpset = 6;

    /// <summary>The newest opset the importer reads.</summary>
    public const int MaxImportOpset = 23;

    /// <summary>Node metadata: the NormSharp module type that produced the node (e.g. <c>KerasBatchNormalization</c>).</summary>
    public const string ModuleKey = "normsharp.module";

    /// <summary>Node metadata: "false" when the module has no γ and the node's scale input is all ones.</summary>
    public const string ScaleKey = "normsharp.scale";

    /// <summary>Node metadata: "false" when the module has no β and the node's bias input is all zeros.</summary>
    public const string CenterKey = "normsharp.center";

    /// <summary>Node metadata: the BatchNorm's num_batches_tracked counter.</summary>
    public const string BatchesTrackedKey = "normsharp.num_batches_tracked";

    /// <summary>Node metadata: "None" when the running averages are cumulative (PyTorch's momentum=None).</summary>
    public const string MomentumKey = "normsharp.momentum";

    /// <summary>Node metadata on a KerasBatchNormalization: its channel axis as given, when negative (−1 for (N, C)).</summary>
    public const string AxisKey = "normsharp.axis";

    /// <summary>Node metadata on a Conv: PyTorch's padding keyword ("same" or "valid") that the explicit pads spell out.</summary>
    public const string PaddingKey = "normsharp.padding";

    /// <summary>Node metadata on a pooling node written with ceil_mode 0 for a layer in ceil mode (there ceil mode adds
    /// no window, and ONNX's ceil formula would add one that PyTorch drops): "true".</summary>
    public const string CeilModeKey = "normsharp.ceil_mode";

    /// <summary>Node metadata on a folded Conv/ConvTranspose/Gemm: the path of the BatchNorm folded into it.</summary>
    public const string FoldedKey = "normsharp.folded_batch_norm";

    /// <summary>The double a float attribute was written from, taken as the shortest decimal that rounds to it
    /// (1e-5f reads back as 1e-5, not 9.99999974737875e-6), which is what the writer of the model typed.</summary>
    public static double ShortestDecimal(float value) =>
        double.Parse(value.ToString("R", CultureInfo.InvariantCulture), NumberStyles.Float, CultureInfo.InvariantCulture);

    /// <summary>1 − <paramref name="momentum"/> (in [0, 1]) computed on the shortest decimals, so ONNX's 0.9f becomes
    /// PyTorch's 0.1 exactly (ONNX weighs the running statistic by momentum, PyTorch the batch statistic).</summary>
    public static double Complement(float momentum)
    {
        if (!(momentum is >= 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(momentum), $"A momentum must lie in [0, 1], got {momentum}.");
        return (double)(1m - decimal.Parse(momentum.ToString("R", CultureInfo.InvariantCulture), NumberStyles.Float, CultureInfo.InvariantCulture));
    }

    /// <summary>The value of metadata <paramref name="key"/> on <paramref name="node"/>, or null.</summary>
    public static string? Metadata(NodeProto node, string key)
    {
        ArgumentNullException.ThrowIfNull(node);
        return node.MetadataProps.LastOrDefault(p => p.Key == key)?.Value;
    }
}
