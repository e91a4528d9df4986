namespace NormSharp.Onnx;

/// <summary>Shapes in NormSharp's notation for error messages: (32, 1, 3, 3), (10,), ().</summary>
internal static class Shapes
{
    public static string Format(IEnumerable<long> dims)
    {
        var list = dims.ToList();
        return "(" + string.Join(", ", list) + (list.Count == 1 ? ",)" : ")");
    }

    public static string Format(IEnumerable<int> dims) => Format(dims.Select(d => (long)d));
}
