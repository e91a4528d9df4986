using System.Globalization;
using System.Text;
using NormSharp.Nn;

namespace NormSharp.Training;

/// <summary>One row of a <see cref="ModelSummary"/>.</summary>
/// <param name="Name">The layer's name in the state dictionary ("0", "1", …).</param>
/// <param name="Type">The layer's class.</param>
/// <param name="OutputShape">The output shape for one sample (the batch axis shown as None).</param>
/// <param name="Parameters">Weights of the layer, trainable and not (Keras's "Param #").</param>
public sealed record SummaryRow(string Name, string Type, int[] OutputShape, long Parameters);

/// <summary>
/// Keras's <c>model.summary()</c>: each layer with its output shape (NCHW, batch axis as None) and parameter count,
/// then totals. As in Keras, batch-normalization moving means and variances count as non-trainable parameters and
/// frozen parameters as non-trainable; PyTorch's <c>num_batches_tracked</c> counter, which Keras lacks, is not counted.
/// </summary>
public sealed class ModelSummary
{
    private ModelSummary(IReadOnlyList<SummaryRow> rows, long trainable, long nonTrainable)
    {
        Rows = rows;
        TrainableParameters = trainable;
        NonTrainableParameters = nonTrainable;
    }

    /// <summary>The layers in order.</summary>
    public IReadOnlyList<SummaryRow> Rows { get; }

    /// <summary>All parameters, trainable and not.</summary>
    public long TotalParameters => TrainableParameters + NonTrainableParameters;

    /// <summary>Parameters updated by the optimizer.</summary>
    public long TrainableParameters { get; }

    /// <summary>Moving statistics and frozen parameters.</summary>
    public long NonTrainableParameters { get; }

    internal static ModelSummary Of(Module network, int[] inputShape)
    {
        var layers = network is Sequential seq
            ? seq.NamedChildren().ToList()
            : new List<(string Name, Module Module)> { ("model", network) };
        var rows = new List<SummaryRow>();
        bool wasTraining = network.IsTraining;
        network.Eval();
        try
        {
            using (Tensor.NoGrad())
            using (TensorScope.Begin())
            {
                Tensor x = Tensor.Zeros(new[] { 1 }.Concat(inputShape).ToArray());
                foreach (var (name, layer) in layers)
                {
                    x = layer.Forward(x);
                    rows.Add(new SummaryRow(name, layer.GetType().Name, x.Shape[1..], Count(layer).Trainable + Count(layer).NonTrainable));
                }
            }
        }
        finally { network.Train(wasTraining); }
        var (trainable, nonTrainable) = Count(network);
        return new ModelSummary(rows, trainable, nonTrainable);
    }

    private static (long Trainable, long NonTrainable) Count(Module module)
    {
        long trainable = 0, nonTrainable = 0;
        foreach (Tensor p in module.Parameters())
            if (p.RequiresGrad) trainable += p.Length; else nonTrainable += p.Length;
        foreach (var (name, b) in module.NamedBuffers())
            if (!name.EndsWith("num_batches_tracked", StringComparison.Ordinal)) nonTrainable += b.Length;
        return (trainable, nonTrainable);
    }

    /// <summary>The table as Keras prints it.</summary>
    public override string ToString()
    {
        string[] header = { "Layer (type)", "Output Shape", "Param #" };
        var cells = Rows.Select(r => new[] { $"{r.Name} ({r.Type})", "(None, " + string.Join(", ", r.OutputShape) + ")", N(r.Parameters) }).ToList();
        int[] widths = Enumerable.Range(0, 3).Select(c => Math.Max(header[c].Length, cells.Select(r => r[c].Length).DefaultIfEmpty(0).Max()) + 2).ToArray();
        int total = widths.Sum();
        var sb = new StringBuilder();
        sb.AppendLine(new string('─', total));
        sb.AppendLine(Row(header, widths));
        sb.AppendLine(new string('═', total));
        foreach (string[] r in cells) sb.AppendLine(Row(r, widths));
        sb.AppendLine(new string('═', total));
        sb.AppendLine($" Total params: {N(TotalParameters)}");
        sb.AppendLine($" Trainable params: {N(TrainableParameters)}");
        sb.AppendLine($" Non-trainable params: {N(NonTrainableParameters)}");
        sb.Append(new string('─', total));
        return sb.ToString();
    }

    private static string Row(string[] cells, int[] widths) =>
        " " + cells[0].PadRight(widths[0] - 1) + cells[1].PadRight(widths[1]) + cells[2].PadLeft(widths[2] - 2);

    private static string N(long n) => n.ToString("N0", CultureInfo.InvariantCulture);
}
