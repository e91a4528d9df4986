using NormSharp.Nn;

namespace NormSharp.Serialization;

/// <summary>Saves and loads a module's state dictionary as safetensors with PyTorch's names (<c>0.weight</c>,
/// <c>1.running_mean</c>, <c>1.num_batches_tracked</c>), so <c>safetensors.torch.load_file</c> reads it directly.</summary>
public static class ModuleSerialization
{
    /// <summary>Writes the module's parameters and buffers to <paramref name="path"/> atomically. Batch counters are
    /// stored as I64, as PyTorch stores them.</summary>
    public static void SaveSafeTensors(this Module module, string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        SafeTensors.Save(path, module.StateDict(), metadata, StoredType);
    }

    /// <summary>Loads parameters and buffers saved by <see cref="SaveSafeTensors"/> (or by PyTorch) into the module,
    /// after checking every name and shape; a mismatch is reported by name and nothing is changed.</summary>
    public static IReadOnlyDictionary<string, string> LoadSafeTensors(this Module module, string path, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(module);
        SafeTensorsContent content = SafeTensors.Load(path);
        LoadState(module, content.Tensors, path, strict);
        return content.Metadata;
    }

    /// <summary>Copies a loaded state into <paramref name="module"/> after validating all of it first.</summary>
    internal static void LoadState(Module module, IReadOnlyDictionary<string, Tensor> state, string source, bool strict)
    {
        IReadOnlyDictionary<string, Tensor> own = module.StateDict();
        var problems = new List<string>();
        foreach (var (name, target) in own)
        {
            if (!state.TryGetValue(name, out Tensor? stored))
            {
                if (strict) problems.Add($"'{name}' is missing (the model expects shape {ShapeUtil.Format(target.Dims)})");
            }
            else if (!ShapeUtil.SameShape(stored.Dims, target.Dims))
                problems.Add($"'{name}' has shape {ShapeUtil.Format(stored.Dims)} in the file, the model expects {ShapeUtil.Format(target.Dims)}");
        }
        if (strict)
            foreach (string name in state.Keys)
                if (!own.ContainsKey(name) && !name.StartsWith("optimizer.", StringComparison.Ordinal))
                    problems.Add($"'{name}' is in the file but not in the model");
        if (problems.Count > 0)
            throw new InvalidDataException($"Cannot load '{source}' into {module.GetType().Name}: {string.Join("; ", problems)}.");
        foreach (var (name, target) in own)
            if (state.TryGetValue(name, out Tensor? stored)) target.CopyFrom(stored);
    }

    internal static SafeTensorsType? StoredType(string name) =>
        name.EndsWith("num_batches_tracked", StringComparison.Ordinal) ? SafeTensorsType.I64 : null;
}
