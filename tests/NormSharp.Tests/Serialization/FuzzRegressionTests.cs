using NormSharp.Fuzz;

namespace NormSharp.Tests.Serialization;

/// <summary>
/// Every input under fuzz/regressions/&lt;target&gt;/ once crashed a parser under afl++ (fuzz/run.sh); each is replayed
/// here through the fuzz target's own outcome rule (<see cref="FuzzTargets.Run"/>): a result, or an
/// <see cref="InvalidDataException"/>/<see cref="NotSupportedException"/> naming the file, within the allocation
/// the input's length justifies.
/// </summary>
public class FuzzRegressionTests
{
    private static readonly string s_root = Path.Combine(AppContext.BaseDirectory, "fuzz-regressions");

    /// <summary>(target, file name) of every saved input.</summary>
    public static TheoryData<string, string> SavedInputs()
    {
        var data = new TheoryData<string, string>();
        foreach (string target in FuzzTargets.All.Keys)
        {
            string directory = Path.Combine(s_root, target);
            if (!Directory.Exists(directory)) continue;
            foreach (string file in Directory.GetFiles(directory).Order(StringComparer.Ordinal)) data.Add(target, Path.GetFileName(file));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(SavedInputs))]
    public void Saved_crash_input_gives_a_result_or_the_documented_exception(string target, string file) =>
        Assert.NotEmpty(FuzzTargets.Run(target, File.ReadAllBytes(Path.Combine(s_root, target, file))));

    [Fact]
    public void Saved_inputs_are_copied_next_to_the_tests() => Assert.NotEmpty(SavedInputs());

    [Fact]
    public void An_onnx_reshape_whose_sizes_wrap_around_is_refused_not_imported()
    {
        // This one imported before the fix, as a view of 4 elements with sizes (2147418113, 1718039348, 5); the rule
        // above accepts any result, so the refusal itself is checked here.
        string outcome = FuzzTargets.Run("onnx", File.ReadAllBytes(Path.Combine(s_root, "onnx", "reshape-sizes-wrapping-to-4-elements.onnx")));
        Assert.StartsWith("InvalidDataException: ONNX model 'fuzz-input': node '0' (Reshape)", outcome);
    }
}
