using System.Globalization;

namespace NormSharp.Experiments;

/// <summary>Thrown for options that cannot be run; the message says what to change.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// Parsed command-line options: <c>--name value</c> options, <c>--flag</c> switches and positional words. Every option
/// given must be read by the command (or experiment), so a misspelt option is an error rather than silently ignored.
/// </summary>
public sealed class Options
{
    private readonly Dictionary<string, string?> _options = new(StringComparer.Ordinal);
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    /// <summary>Parses <paramref name="args"/>.</summary>
    public Options(IEnumerable<string> args)
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

    /// <summary>The words that are not options, in order.</summary>
    public IReadOnlyList<string> Positional { get; }

    /// <summary>Every option given on the command line, for the run's record.</summary>
    public IReadOnlyDictionary<string, string?> Given => _options;

    /// <summary>A comma-separated list of numbers, e.g. <c>--lrs 0.001,0.01,0.1</c>.</summary>
    public double[] Doubles(string name, double[] fallback)
    {
        string? v = String(name);
        if (v is null) return fallback;
        try { return v.Split(',').Select(p => double.Parse(p, NumberStyles.Float, CultureInfo.InvariantCulture)).ToArray(); }
        catch (FormatException) { throw new UsageException($"--{name} must be comma-separated numbers; got '{v}'"); }
    }

    /// <summary>A comma-separated list of integers, e.g. <c>--batch-sizes 2,4,8</c>.</summary>
    public int[] Ints(string name, int[] fallback) => Doubles(name, fallback.Select(i => (double)i).ToArray()).Select(d => d == Math.Round(d) && d >= 1 ? (int)d : throw new UsageException($"--{name} must list positive integers")).ToArray();

    /// <summary>The value of --<paramref name="name"/>, or null if absent.</summary>
    public string? String(string name)
    {
        _read.Add(name);
        if (!_options.TryGetValue(name, out string? v)) return null;
        return v ?? throw new UsageException($"option --{name} needs a value");
    }

    /// <summary>The value of --<paramref name="name"/>, or <paramref name="fallback"/>.</summary>
    public string String(string name, string fallback) => String(name) ?? fallback;

    /// <summary>The value of --<paramref name="name"/>, which must be one of <paramref name="allowed"/>.</summary>
    public string Choice(string name, string fallback, params string[] allowed)
    {
        string v = String(name, fallback);
        if (!allowed.Contains(v)) throw new UsageException($"--{name} must be one of {string.Join(", ", allowed)}; got '{v}'");
        return v;
    }

    /// <summary>An integer option within [min, max].</summary>
    public int Int(string name, int fallback, int min = int.MinValue, int max = int.MaxValue)
    {
        string? v = String(name);
        if (v is null) return fallback;
        if (!int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int result) || result < min || result > max)
            throw new UsageException($"--{name} must be an integer in [{min}, {max}]; got '{v}'");
        return result;
    }

    /// <summary>A finite number option within [min, max].</summary>
    public double Double(string name, double fallback, double min = double.MinValue, double max = double.MaxValue)
    {
        string? v = String(name);
        if (v is null) return fallback;
        if (!double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double result) || !double.IsFinite(result) || result < min || result > max)
            throw new UsageException($"--{name} must be a number in [{min}, {max}]; got '{v}'");
        return result;
    }

    /// <summary>A switch: present (or true/1/yes) means true.</summary>
    public bool Flag(string name)
    {
        _read.Add(name);
        if (!_options.TryGetValue(name, out string? v)) return false;
        return v is null || v is "true" or "1" or "yes" ? true
            : v is "false" or "0" or "no" ? false
            : throw new UsageException($"--{name} is a switch; got the value '{v}'");
    }

    /// <summary>Throws if an option was given that was never read (a typo or an option of another command).</summary>
    public void RejectUnknown(string command)
    {
        var unknown = _options.Keys.Where(k => !_read.Contains(k)).ToList();
        if (unknown.Count > 0)
            throw new UsageException($"'{command}' does not take {string.Join(", ", unknown.Select(u => "--" + u))}; see 'normsharp help {command}'");
    }
}
