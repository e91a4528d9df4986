namespace NormSharp.Benchmarks.SideBySide;

/// <summary>What a workload's rate counts: floating-point operations, bytes moved, or nothing (time only).</summary>
public enum RateUnit
{
    /// <summary>GFLOP/s.</summary>
    Flops,

    /// <summary>GB/s.</summary>
    Bytes,

    /// <summary>Only milliseconds are reported.</summary>
    None,
}

/// <summary>
/// One piece of work done the same way by NormSharp and by libtorch: the same shapes, the same passes, each engine's
/// usual API. <see cref="Prepare"/> builds the operands and returns the two timed actions (libtorch's is null when
/// libtorch is unavailable).
/// </summary>
public sealed class Workload(string suite, string name, RateUnit unit, double workPerCall,
    Func<Action> prepareNormSharp, Func<Action> prepareLibTorch)
{
    /// <summary>The group the quick mode's filter words and the tables use: gemm, normalization, conv, seed-cnn, layers.</summary>
    public string Suite { get; } = suite;

    /// <summary>The case, e.g. "BatchNorm2d 128x32x28x28 train fwd".</summary>
    public string Name { get; } = name;

    /// <summary>What <see cref="WorkPerCall"/> counts.</summary>
    public RateUnit Unit { get; } = unit;

    /// <summary>FLOPs or bytes of one call (ignored for <see cref="RateUnit.None"/>).</summary>
    public double WorkPerCall { get; } = workPerCall;

    /// <summary>Whether the case's tensors are larger than the last-level cache, so that its GB/s is compared with
    /// the copy bandwidth timed in alternation with it (<see cref="CopyYardstick"/>).</summary>
    public bool ComparedWithCopy { get; init; }

    /// <summary>Builds operands for both engines and returns their timed calls.</summary>
    public (Action NormSharp, Action? LibTorch) Prepare() =>
        (prepareNormSharp(), LibTorch.Available ? prepareLibTorch() : null);

    /// <summary>The rate of one call that took <paramref name="seconds"/>, in the unit's G-units per second.</summary>
    public double Rate(double seconds) => Unit == RateUnit.None ? double.NaN : WorkPerCall / seconds / 1e9;

    public override string ToString() => $"{Suite}: {Name}";

    /// <summary>Every workload of every suite, in table order.</summary>
    public static IReadOnlyList<Workload> All { get; } =
        GemmWorkloads.Create()
            .Concat(NormalizationWorkloads.Create())
            .Concat(ConvWorkloads.Create())
            .Concat(SeedCnnWorkloads.Create())
            .Concat(LayerWorkloads.Create())
            .ToList();
}
