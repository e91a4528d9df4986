using NormSharp.Data;
using NormSharp.Onnx;
using NormSharp.Serialization;

namespace NormSharp.Fuzz;

/// <summary>
/// The parsers that read files users download — IDX data sets, safetensors checkpoints, ONNX models — as fuzz
/// targets, each with the rule its outcome must obey: it returns a result, or it throws the documented
/// <see cref="InvalidDataException"/> or <see cref="NotSupportedException"/> whose message names the file. Anything
/// else (another exception, an out-of-memory, an allocation far larger than the input can justify) is a bug and is
/// raised as a <see cref="FuzzFailure"/> or left to escape, which afl++ records as a crash. The regression tests run
/// every saved crash input through the same rule.
/// </summary>
public static class FuzzTargets
{
    /// <summary>The name every input is given; an error message must contain it so the user knows which file is bad.</summary>
    public const string SourceName = "fuzz-input";

    /// <summary>The targets by name: the parser, and the most it may allocate for an input of a given length.</summary>
    public static IReadOnlyDictionary<string, Target> All { get; } = new Dictionary<string, Target>
    {
        // A gzip member can expand by at most ~1032:1 (IdxReader.MaxDeflateRatio), plus the reader's own buffers.
        ["idx"] = new(bytes => IdxReader.Read(new MemoryStream(bytes), SourceName), length => 1100 * length + (4L << 20)),
        // Decoding widens F16/BF16 to float32 (2×), plus the JSON header's copy and the dictionaries.
        ["safetensors"] = new(bytes => SafeTensors.Read(bytes, SourceName), length => 16 * length + (4L << 20)),
        // The importer checks each layer by running it on a zero batch of one sample (at most 2^26 elements, 256 MiB,
        // in and out, and a convolution workspace of at most 2^28, 1 GiB), so a small file may honestly cost that much;
        // beyond it an allocation was sized by the file.
        ["onnx"] = new(bytes => OnnxImporter.Import(bytes, SourceName), length => 16 * length + (3L << 29)),
    };

    /// <summary>Runs <paramref name="input"/> through target <paramref name="name"/>, enforces the outcome rule and
    /// says which acceptable outcome it was ("result", or the exception's type and message).</summary>
    /// <exception cref="FuzzFailure">The target broke the rule in a way that raised no exception of its own.</exception>
    public static string Run(string name, byte[] input)
    {
        if (!All.TryGetValue(name, out Target? target))
            throw new ArgumentException($"no fuzz target '{name}' (targets: {string.Join(", ", All.Keys)})", nameof(name));
        long before = GC.GetTotalAllocatedBytes(precise: false);
        try
        {
            target.Parse(input);
            return "result";
        }
        catch (Exception e) when (e is InvalidDataException or NotSupportedException)
        {
            if (!e.Message.Contains(SourceName, StringComparison.Ordinal))
                throw new FuzzFailure($"{name}: the {e.GetType().Name} does not name the file: {e.Message}", e);
            return $"{e.GetType().Name}: {e.Message}";
        }
        finally
        {
            long allocated = GC.GetTotalAllocatedBytes(precise: false) - before;
            if (allocated > target.AllocationBudget(input.Length))
                throw new FuzzFailure($"{name}: allocated {allocated} bytes for a {input.Length}-byte input (budget {target.AllocationBudget(input.Length)}): a size taken from the file was not checked");
        }
    }

    /// <summary>A parser and the allocation its input length justifies.</summary>
    public sealed record Target(Action<byte[]> Parse, Func<long, long> AllocationBudget);
}

/// <summary>A fuzz target broke its outcome rule without an exception of its own (an unnamed file, an outsized allocation).</summary>
public sealed class FuzzFailure(string message, Exception? inner = null) : Exception(message, inner);
