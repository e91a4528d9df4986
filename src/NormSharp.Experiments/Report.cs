using System.Globalization;
using System.Text;
using NormSharp.Serialization;

namespace NormSharp.Experiments;

/// <summary>Builds an experiment's Markdown report: a title, the command, paragraphs, tables and figures.</summary>
public sealed class Report
{
    private readonly StringBuilder _text = new();

    /// <summary>Starts a report with a title and the command that reproduces it.</summary>
    public Report(string title, string command)
    {
        _text.Append("# ").AppendLine(title).AppendLine();
        _text.AppendLine("```bash").AppendLine(command).AppendLine("```").AppendLine();
    }

    /// <summary>Adds a paragraph.</summary>
    public Report Paragraph(string text)
    {
        _text.AppendLine(text).AppendLine();
        return this;
    }

    /// <summary>Adds a figure written to the same folder.</summary>
    public Report Figure(string file, string caption)
    {
        _text.Append("![").Append(caption).Append("](").Append(file).AppendLine(")").AppendLine();
        return this;
    }

    /// <summary>Adds a table.</summary>
    public Report Table(IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        _text.Append("| ").AppendJoin(" | ", header).AppendLine(" |");
        _text.Append('|').Append(string.Concat(header.Select(_ => "---|"))).AppendLine();
        foreach (IReadOnlyList<string> row in rows) _text.Append("| ").AppendJoin(" | ", row).AppendLine(" |");
        _text.AppendLine();
        return this;
    }

    /// <summary>Writes the report atomically.</summary>
    public void Save(string path) => AtomicFile.WriteAllText(path, _text.ToString());

    /// <inheritdoc/>
    public override string ToString() => _text.ToString();

    /// <summary>Formats a number for tables: invariant culture, <paramref name="digits"/> significant digits.</summary>
    public static string Number(double value, int digits = 4) =>
        double.IsNaN(value) ? "—" : value.ToString("G" + digits, CultureInfo.InvariantCulture);

    /// <summary>Formats a fraction as a percentage with two decimals.</summary>
    public static string Percent(double fraction) =>
        double.IsNaN(fraction) ? "—" : (fraction * 100).ToString("F2", CultureInfo.InvariantCulture) + " %";
}

/// <summary>Writes CSV files atomically with invariant number formatting.</summary>
public static class Csv
{
    /// <summary>Writes a header and rows; numbers use round-trip formatting.</summary>
    public static void Write(string path, IReadOnlyList<string> header, IEnumerable<IReadOnlyList<object>> rows)
    {
        var sb = new StringBuilder().AppendJoin(',', header).Append('\n');
        foreach (IReadOnlyList<object> row in rows)
            sb.AppendJoin(',', row.Select(v => v switch
            {
                double d => d.ToString("R", CultureInfo.InvariantCulture),
                float f => f.ToString("R", CultureInfo.InvariantCulture),
                IFormattable x => x.ToString(null, CultureInfo.InvariantCulture),
                _ => Quote(v?.ToString() ?? ""),
            })).Append('\n');
        AtomicFile.WriteAllText(path, sb.ToString());
    }

    private static string Quote(string s) => s.IndexOfAny(new[] { ',', '"', '\n' }) < 0 ? s : "\"" + s.Replace("\"", "\"\"") + "\"";
}
