using NormSharp.Kernels;
using TorchSharp;

namespace NormSharp.Benchmarks.SideBySide;

/// <summary>float32 C (m×n) = op(A) (m×k) · op(B) (k×n): the 2048³ square in the three transpose layouts and the
/// seed CNN's Dense layers at batch 128 (forward y = x·Wᵀ, backward dx = dy·W and dW = dyᵀ·x). libtorch multiplies
/// the same operands with <c>torch.mm</c>, transposes as views.</summary>
public static class GemmWorkloads
{
    private static readonly (string Name, int M, int N, int K, bool TransA, bool TransB)[] Shapes =
    {
        ("2048³ NN", 2048, 2048, 2048, false, false),
        ("2048³ NT", 2048, 2048, 2048, false, true),
        ("2048³ TN", 2048, 2048, 2048, true, false),
        ("dense 1152→128 fwd (128×128×1152 NT)", 128, 128, 1152, false, true),
        ("dense 1152→128 dx (128×1152×128)", 128, 1152, 128, false, false),
        ("dense 1152→128 dW (128×1152×128 TN)", 128, 1152, 128, true, false),
        ("dense 128→10 fwd (128×10×128 NT)", 128, 10, 128, false, true),
    };

    public static IEnumerable<Workload> Create() => Shapes.Select(s => new Workload("gemm", s.Name, RateUnit.Flops, 2.0 * s.M * s.N * s.K,
        () =>
        {
            var random = new Random(42);
            float[] a = RandomArray(random, s.M * s.K), b = RandomArray(random, s.K * s.N), c = new float[s.M * s.N];
            return () => Gemm.Multiply(s.TransA, s.TransB, s.M, s.N, s.K, a, s.TransA ? s.M : s.K, b, s.TransB ? s.K : s.N, c, s.N, accumulate: false);
        },
        () =>
        {
            torch.manual_seed(42);
            // Stored as NormSharp stores them; op(·) is a transposed view, which torch.mm reads without copying.
            torch.Tensor a = s.TransA ? torch.rand(s.K, s.M).t() : torch.rand(s.M, s.K);
            torch.Tensor b = s.TransB ? torch.rand(s.N, s.K).t() : torch.rand(s.K, s.N);
            return () => { using torch.Tensor c = torch.mm(a, b); };
        }));

    private static float[] RandomArray(Random random, int length)
    {
        var values = new float[length];
        for (int i = 0; i < length; i++) values[i] = random.NextSingle() * 2 - 1;
        return values;
    }
}
