using System.Globalization;

namespace NormSharp.Nn;

/// <summary>Formats layer arguments as PyTorch prints them (<c>eps=1e-05</c>, <c>affine=True</c>, <c>momentum=None</c>),
/// so a NormSharp model prints like the PyTorch model it mirrors.</summary>
internal static class PythonRepr
{
    /// <summary>Python's repr of a float: shortest round-trip digits, "e-05" exponents, "1.0" for integers.</summary>
    public static string Float(double value)
    {
        string s = value.ToString("R", CultureInfo.InvariantCulture).Replace("E", "e", StringComparison.Ordinal);
        return s.Contains('.', StringComparison.Ordinal) || s.Contains('e', StringComparison.Ordinal) || !double.IsFinite(value) ? s : s + ".0";
    }

    public static string Float(double? value) => value is null ? "None" : Float(value.Value);

    public static string Bool(bool value) => value ? "True" : "False";
}
