using System.Globalization;

namespace NormSharp.Cli;

/// <summary>Thrown for a command line that cannot be run; the message says what to change.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>
/// A parsed command line: <c>--name value</c> options, <c>--flag</c> switches and positional words. Every option a
/// command reads must be one it declared, so a misspelt option is an error rather than silently ignored.
/// </summary>
internal sealed class Arguments
{
    private readonly Dictionary<string, string?> _options = new(StringComparer.Ordinal);
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    public Arguments(IEnumerable<string> args)
    {
        var positional = new List<string>();
        var list = args.ToList();
        for (int i = 0; i < list.Count; i++)
        {
            string a = list[i];
            if (a.StartsWith("--", StringComparison.Ordinal) && a.Length > 2)
            {
                string name = a[2..];
                string? value = null;
                int eq = name.IndexOf('=');
                if (eq >= 0) { value = name[(eq + 1)..]; name = name[..eq]; }
                else if (i + 1 < list.Count && !list[i + 1].StartsWith("--", StringComparison.Ordinal)) value = list[++i];
                if (!_options.TryAdd(name, value)) throw new UsageException($"option --{name} is given twice");
            }
            else positional.Add(a);
        }
        Positional = positional;
    }

    public IReadOnlyList<string> Positional { get; }

    /// <summary>Every option given on the command line, for the run's record.</summary>
    public IReadOnlyDictionary<string, string?> Given => _options;

    public string? String(string name)
    {
        _read.Add(name);
        if (!_options.TryGetValue(name, out string? v)) return null;
        return v ?? throw new UsageException($"option --{name} needs a value");
    }

    public string String(string name, string fallback) => String(name) ?? fallback;

    public string Choice(string name, string fallback, params string[] allowed)
    {
        string v = String(name, fallback);
        if (!allowed.Contains(v)) throw new UsageException($"--{name} must be one of {string.Join(", ", allowed)}; got '{v}'");
        return v;
    }

    public int Int(string name, int fallback, int min = int.MinValue, int max = int.MaxValue)
    {
        string? v = String(name);
        if (v is null) return fallback;
        if (!int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int result) || result < min || result > max)
            throw new UsageException($"--{name} must be an integer in [{min}, {max}]; got '{v}'");
        return result;
    }

    public double Double(string name, double fallback, double min = double.MinValue, double max = double.MaxValue)
    {
        string? v = String(name);
        if (v is null) return fallback;
        if (!double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double result) || !double.IsFinite(result) || result < min || result > max)
            throw new UsageException($"--{name} must be a number in [{min}, {max}]; got '{v}'");
        return result;
    }

    public bool Flag(string name)
    {
        _read.Add(name);
        if (!_options.TryGetValue(name, out string? v)) return false;
        return v is null || v is "true" or "1" or "yes" ? true
            : v is "false" or "0" or "no" ? false
            : throw new UsageException($"--{name} is a switch; got the value '{v}'");
    }

    /// <summary>Throws if an option was given that the command never read (a typo or an option of another command).</summary>
    public void RejectUnknown(string command)
    {
        var unknown = _options.Keys.Where(k => !_read.Contains(k)).ToList();
        if (unknown.Count > 0)
            throw new UsageException($"'{command}' does not take {string.Join(", ", unknown.Select(u => "--" + u))}; see 'normsharp help {command}'");
    }
}
