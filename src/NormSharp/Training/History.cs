using System.Globalization;
using System.Text;
using System.Text.Json;
using NormSharp.Serialization;

namespace NormSharp.Training;

/// <summary>What one epoch of training produced: Keras-named metrics (<c>loss</c>, <c>accuracy</c>,
/// <c>val_loss</c>, <c>val_accuracy</c>), the learning rate used and the time taken.</summary>
/// <param name="Epoch">The epoch number, from 1.</param>
/// <param name="Metrics">Metric values by Keras name.</param>
/// <param name="LearningRate">The optimizer's learning rate during the epoch.</param>
/// <param name="Seconds">Wall-clock seconds for the epoch's training batches.</param>
/// <param name="ValidationSeconds">Wall-clock seconds for the validation pass (0 without one).</param>
public sealed record EpochRecord(int Epoch, IReadOnlyDictionary<string, double> Metrics, double LearningRate, double Seconds, double ValidationSeconds);

/// <summary>The per-epoch record of a training run, Keras's <c>History</c>; saved as CSV and JSON.</summary>
public sealed class History
{
    private readonly List<EpochRecord> _epochs = new();

    /// <summary>The epochs completed, in order.</summary>
    public IReadOnlyList<EpochRecord> Epochs => _epochs;

    /// <summary>Appends an epoch.</summary>
    public void Add(EpochRecord record) => _epochs.Add(record);

    /// <summary>The values of one metric over the epochs (NaN where an epoch lacks it).</summary>
    public double[] Values(string metric) => _epochs.Select(e => e.Metrics.TryGetValue(metric, out double v) ? v : double.NaN).ToArray();

    /// <summary>The metric names present, in first-seen order.</summary>
    public IReadOnlyList<string> MetricNames => _epochs.SelectMany(e => e.Metrics.Keys).Distinct().ToList();

    /// <summary>Writes the history as CSV (one row per epoch) atomically.</summary>
    public void SaveCsv(string path) => AtomicFile.WriteAllText(path, ToCsv());

    /// <summary>Writes the history as JSON atomically.</summary>
    public void SaveJson(string path) => AtomicFile.WriteAllText(path, ToJson());

    /// <summary>The CSV text: epoch, each metric, learning rate, seconds.</summary>
    public string ToCsv()
    {
        IReadOnlyList<string> names = MetricNames;
        var sb = new StringBuilder("epoch," + string.Join(",", names) + ",learning_rate,seconds,validation_seconds\n");
        foreach (EpochRecord e in _epochs)
        {
            sb.Append(e.Epoch.ToString(CultureInfo.InvariantCulture));
            foreach (string n in names) sb.Append(',').Append(e.Metrics.TryGetValue(n, out double v) ? F(v) : "");
            sb.Append(',').Append(F(e.LearningRate)).Append(',').Append(F(e.Seconds)).Append(',').Append(F(e.ValidationSeconds)).Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>The JSON text: an object with an "epochs" array.</summary>
    public string ToJson() => JsonSerializer.Serialize(new
    {
        epochs = _epochs.Select(e => new { epoch = e.Epoch, metrics = e.Metrics, learning_rate = e.LearningRate, seconds = e.Seconds, validation_seconds = e.ValidationSeconds }),
    }, new JsonSerializerOptions { WriteIndented = true });

    /// <summary>Parses JSON written by <see cref="ToJson"/> (used when a run is resumed).</summary>
    public static History FromJson(string json)
    {
        var history = new History();
        using JsonDocument doc = JsonDocument.Parse(json);
        foreach (JsonElement e in doc.RootElement.GetProperty("epochs").EnumerateArray())
        {
            var metrics = e.GetProperty("metrics").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetDouble());
            history.Add(new EpochRecord(e.GetProperty("epoch").GetInt32(), metrics, e.GetProperty("learning_rate").GetDouble(),
                e.GetProperty("seconds").GetDouble(), e.GetProperty("validation_seconds").GetDouble()));
        }
        return history;
    }

    private static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
