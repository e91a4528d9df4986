using System.Globalization;

namespace NormSharp.Optim;

/// <summary>
/// Sets the optimizer's learning rates from the epoch number with a closed-form schedule, stepped once per epoch with
/// <see cref="Step"/> (after the epoch's optimizer steps, as in PyTorch). Each group's rate is the schedule applied to
/// its <see cref="ParameterGroup.InitialLearningRate"/>, which the first scheduler records.
/// </summary>
public abstract class LearningRateScheduler
{
    private readonly double[] _baseLearningRates;
    private int _lastEpoch;

    /// <summary>Attaches to <paramref name="optimizer"/> and sets the epoch-0 learning rates.</summary>
    private protected LearningRateScheduler(Optimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        Optimizer = optimizer;
        foreach (ParameterGroup group in optimizer.ParameterGroups) group.InitialLearningRate ??= group.LearningRate;
        _baseLearningRates = optimizer.ParameterGroups.Select(g => g.InitialLearningRate!.Value).ToArray();
    }

    /// <summary>The optimizer whose learning rates this scheduler sets.</summary>
    public Optimizer Optimizer { get; }

    /// <summary>The rate of each group at epoch 0.</summary>
    public IReadOnlyList<double> BaseLearningRates => _baseLearningRates;

    /// <summary>The epoch whose rates are in effect; set it to resume a schedule (it applies that epoch's rates).</summary>
    public int LastEpoch
    {
        get => _lastEpoch;
        set
        {
            if (value < 0) throw new ArgumentOutOfRangeException(nameof(value), $"{this}: LastEpoch must be non-negative, got {value}.");
            _lastEpoch = value;
            Apply();
        }
    }

    /// <summary>Advances one epoch and sets the new rates.</summary>
    public void Step() => LastEpoch = _lastEpoch + 1;

    /// <summary>The schedule: the rate at <paramref name="epoch"/> of a group that started at <paramref name="baseLearningRate"/>.</summary>
    private protected abstract double LearningRateAt(double baseLearningRate, int epoch);

    /// <summary>Sets the epoch-0 rates; derived constructors call it once their settings are stored.</summary>
    private protected void Apply()
    {
        for (int g = 0; g < _baseLearningRates.Length; g++)
            Optimizer.ParameterGroups[g].LearningRate = LearningRateAt(_baseLearningRates[g], _lastEpoch);
    }
}

/// <summary>Decays the learning rate by <c>gamma</c> every <c>stepSize</c> epochs (PyTorch's <c>StepLR</c>):
/// lr = base·gamma^⌊epoch / stepSize⌋.</summary>
public sealed class StepLR : LearningRateScheduler
{
    /// <summary>Creates the schedule and applies its epoch-0 rate (the base rate).</summary>
    public StepLR(Optimizer optimizer, int stepSize, double gamma = 0.1) : base(optimizer)
    {
        if (stepSize <= 0) throw new ArgumentOutOfRangeException(nameof(stepSize), $"StepLR: stepSize must be positive, got {stepSize}.");
        if (!double.IsFinite(gamma) || gamma < 0) throw new ArgumentOutOfRangeException(nameof(gamma), $"StepLR: gamma must be finite and non-negative, got {gamma}.");
        StepSize = stepSize;
        Gamma = gamma;
        Apply();
    }

    /// <summary>The number of epochs between decays.</summary>
    public int StepSize { get; }

    /// <summary>The multiplicative decay factor.</summary>
    public double Gamma { get; }

    private protected override double LearningRateAt(double baseLearningRate, int epoch) => baseLearningRate * Math.Pow(Gamma, epoch / StepSize);

    /// <summary>The schedule and its arguments.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"StepLR(step_size={StepSize}, gamma={Gamma})");
}

/// <summary>
/// Cosine annealing without restarts (Loshchilov &amp; Hutter 2017, SGDR eq. 5; PyTorch's <c>CosineAnnealingLR</c> in
/// closed form): lr = ηmin + (base − ηmin)·(1 + cos(π·epoch/tMax))/2, reaching ηmin at epoch tMax. Past tMax the
/// formula keeps following the cosine, rising again, as PyTorch's does.
/// </summary>
public sealed class CosineAnnealingLR : LearningRateScheduler
{
    /// <summary>Creates the schedule and applies its epoch-0 rate (the base rate).</summary>
    public CosineAnnealingLR(Optimizer optimizer, int tMax, double etaMin = 0) : base(optimizer)
    {
        if (tMax <= 0) throw new ArgumentOutOfRangeException(nameof(tMax), $"CosineAnnealingLR: tMax must be positive, got {tMax}.");
        if (!double.IsFinite(etaMin) || etaMin < 0) throw new ArgumentOutOfRangeException(nameof(etaMin), $"CosineAnnealingLR: etaMin must be finite and non-negative, got {etaMin}.");
        TMax = tMax;
        EtaMin = etaMin;
        Apply();
    }

    /// <summary>The number of epochs of the half cosine.</summary>
    public int TMax { get; }

    /// <summary>The minimum learning rate.</summary>
    public double EtaMin { get; }

    private protected override double LearningRateAt(double baseLearningRate, int epoch) =>
        EtaMin + (baseLearningRate - EtaMin) * (1 + Math.Cos(Math.PI * epoch / TMax)) / 2;

    /// <summary>The schedule and its arguments.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"CosineAnnealingLR(T_max={TMax}, eta_min={EtaMin})");
}
