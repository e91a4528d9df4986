using System.Globalization;
using System.Numerics;
using NormSharp.Kernels;

namespace NormSharp.Optim;

/// <summary>
/// Parameters that share a learning rate and weight decay (PyTorch's parameter groups), e.g. to exempt normalization
/// scales and biases from weight decay. Settings left null take the optimizer's values.
/// </summary>
public sealed class ParameterGroup
{
    private double _learningRate, _weightDecay;

    /// <summary>Creates a group; <paramref name="learningRate"/> and <paramref name="weightDecay"/> override the
    /// optimizer's defaults for these parameters.</summary>
    public ParameterGroup(IEnumerable<Tensor> parameters, double? learningRate = null, double? weightDecay = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Items = parameters.ToArray();
        RequestedLearningRate = learningRate;
        RequestedWeightDecay = weightDecay;
    }

    /// <summary>The parameters, in the order their state is numbered.</summary>
    public IReadOnlyList<Tensor> Parameters => Items;

    /// <summary>The step size used by the next <see cref="Optimizer.Step"/>; schedulers set it every epoch.</summary>
    public double LearningRate
    {
        get => _learningRate;
        set => _learningRate = Optimizer.CheckNonNegative(OwnerName, "learning rate", value);
    }

    /// <summary>The weight-decay coefficient (L2 penalty for SGD and Adam, decoupled decay for AdamW).</summary>
    public double WeightDecay
    {
        get => _weightDecay;
        set => _weightDecay = Optimizer.CheckNonNegative(OwnerName, "weight decay", value);
    }

    /// <summary>The learning rate the first scheduler attached to the optimizer found, which every scheduler scales
    /// (PyTorch's <c>initial_lr</c>); null until a scheduler is created. Saved with the optimizer's state so a resumed
    /// schedule continues from the original rate.</summary>
    public double? InitialLearningRate { get; internal set; }

    internal Tensor[] Items { get; }

    internal double? RequestedLearningRate { get; }

    internal double? RequestedWeightDecay { get; }

    internal string OwnerName { get; set; } = "ParameterGroup";
}

/// <summary>
/// The base of the optimizers: holds parameter groups and per-parameter state (momentum, moment estimates, step
/// counts), updates every parameter that has a gradient on <see cref="Step"/>, and exports and restores that state
/// for exact resumption. Create the optimizer after converting the model (<see cref="Nn.Module.To"/> replaces the
/// parameter tensors), as in PyTorch.
/// </summary>
public abstract class Optimizer
{
    private readonly ParameterGroup[] _groups;
    private readonly Tensor[] _parameters;
    private readonly int[] _groupOf;
    private readonly string[] _stateNames;
    private readonly bool _countsSteps;
    private readonly Tensor?[][] _state;
    private readonly long[] _steps;

    /// <summary>Adopts the groups; <paramref name="stateNames"/> names the per-parameter state tensors (PyTorch's keys,
    /// e.g. <c>exp_avg</c>), and <paramref name="countsSteps"/> whether a per-parameter step count is kept.</summary>
    private protected Optimizer(IEnumerable<ParameterGroup> groups, double learningRate, double weightDecay, string[] stateNames, bool countsSteps)
    {
        ArgumentNullException.ThrowIfNull(groups);
        CheckNonNegative(Name, "learning rate", learningRate);
        CheckNonNegative(Name, "weight decay", weightDecay);
        _groups = groups.ToArray();
        if (_groups.Length == 0) throw new ArgumentException($"{Name}: got no parameters to optimize.", nameof(groups));
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var parameters = new List<Tensor>();
        var groupOf = new List<int>();
        for (int g = 0; g < _groups.Length; g++)
        {
            ParameterGroup group = _groups[g] ?? throw new ArgumentNullException(nameof(groups), $"{Name}: parameter group {g} is null.");
            if (group.OwnerName != "ParameterGroup")
                throw new ArgumentException($"{Name}: parameter group {g} already belongs to {group.OwnerName}; create a new group.", nameof(groups));
            group.OwnerName = Name;
            group.LearningRate = group.RequestedLearningRate ?? learningRate;
            group.WeightDecay = group.RequestedWeightDecay ?? weightDecay;
            foreach (Tensor p in group.Items)
            {
                if (p is null) throw new ArgumentNullException(nameof(groups), $"{Name}: parameter group {g} holds a null tensor.");
                if (!p.IsLeaf) throw new ArgumentException($"{Name}: parameter {parameters.Count} of shape {ShapeUtil.Format(p.Dims)} was computed by an operation; only leaf tensors can be optimized.", nameof(groups));
                if (!seen.Add(p)) throw new ArgumentException($"{Name}: the parameter of shape {ShapeUtil.Format(p.Dims)} appears more than once.", nameof(groups));
                parameters.Add(p);
                groupOf.Add(g);
            }
        }
        _parameters = parameters.ToArray();
        _groupOf = groupOf.ToArray();
        _stateNames = stateNames;
        _countsSteps = countsSteps;
        _state = new Tensor?[_parameters.Length][];
        for (int i = 0; i < _state.Length; i++) _state[i] = new Tensor?[stateNames.Length];
        _steps = new long[_parameters.Length];
    }

    /// <summary>The parameter groups.</summary>
    public IReadOnlyList<ParameterGroup> ParameterGroups => _groups;

    /// <summary>The learning rate of the first group; setting it sets every group's.</summary>
    public double LearningRate
    {
        get => _groups[0].LearningRate;
        set
        {
            CheckNonNegative(Name, "learning rate", value);
            foreach (ParameterGroup group in _groups) group.LearningRate = value;
        }
    }

    /// <summary>Applies one update to every parameter that has a gradient (parameters without one are skipped, as in
    /// PyTorch). Records nothing for autograd and, after the first call has created the state, allocates nothing.</summary>
    public void Step()
    {
        StorageGuard.SafePoint();
        using var noGrad = Tensor.NoGrad();
        for (int i = 0; i < _parameters.Length; i++)
        {
            Tensor p = _parameters[i];
            if (p.Grad is not Tensor grad) continue;
            if (!ShapeUtil.SameShape(grad.Dims, p.Dims) || grad.DType != p.DType)
                throw new InvalidOperationException($"{Name}: parameter {i} has shape {ShapeUtil.Format(p.Dims)} ({p.DType}) but its gradient has {ShapeUtil.Format(grad.Dims)} ({grad.DType}).");
            p.RequireContiguous(Name);
            _steps[i]++;
            if (p.DType == DType.Float32) Update<float>(i, _groups[_groupOf[i]], p, grad.Contiguous());
            else Update<double>(i, _groups[_groupOf[i]], p, grad.Contiguous());
        }
    }

    /// <summary>Zeroes every parameter's gradient in place (keeping the buffers, so training does not allocate).</summary>
    public void ZeroGrad()
    {
        StorageGuard.SafePoint();
        foreach (Tensor p in _parameters) p.Grad?.ZeroInPlace();
    }

    /// <summary>Updates parameter <paramref name="index"/> from its (contiguous) gradient; the step count already
    /// includes this step.</summary>
    private protected abstract void Update<T>(int index, ParameterGroup group, Tensor parameter, Tensor gradient) where T : unmanaged, IFloatingPointIeee754<T>;

    /// <summary>The state tensor <paramref name="slot"/> (an index into the state names) of a parameter, or null
    /// before it is created.</summary>
    private protected Tensor? State(int index, int slot) => _state[index][slot];

    /// <summary>Creates a zero state tensor shaped like the parameter; state outlives every TensorScope.</summary>
    private protected Tensor CreateState(int index, int slot)
    {
        Tensor p = _parameters[index];
        return _state[index][slot] = Tensor.Allocate(p.DType, p.Dims, clear: true, scoped: false);
    }

    /// <summary>Applies <paramref name="rule"/> in place to a parameter and the states it uses (null: unused), split over
    /// <see cref="Parallelism.ThreadCount"/> threads at whole vectors of 512 bits, so that every thread's part but the
    /// last is whole vectors at every width. Allocates nothing.</summary>
    private protected static void Apply<T, TRule>(TRule rule, Tensor parameter, Tensor gradient, Tensor? state0 = null, Tensor? state1 = null, Tensor? state2 = null)
        where T : unmanaged, IFloatingPointIeee754<T> where TRule : struct, IUpdateRule<T>
    {
        int blockLength = 64 / System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        var body = new UpdateBody<T, TRule>(rule, parameter, gradient, state0, state1, state2, blockLength);
        Parallelism.For((parameter.Length + blockLength - 1) / blockLength, body, workPerItem: blockLength);
    }

    /// <summary>The elements of blocks [start, end) of <see cref="Apply"/>, updated by one thread.</summary>
    private readonly struct UpdateBody<T, TRule>(TRule rule, Tensor parameter, Tensor gradient, Tensor? state0, Tensor? state1, Tensor? state2, int blockLength)
        : IChunkBody where T : unmanaged, IFloatingPointIeee754<T> where TRule : struct, IUpdateRule<T>
    {
        public void Run(int start, int end)
        {
            Range elements = (start * blockLength)..Math.Min(end * blockLength, parameter.Length);
            OptimizerKernels.Update(rule, parameter.Span<T>()[elements], gradient.Span<T>()[elements],
                Part(state0, elements), Part(state1, elements), Part(state2, elements));
        }

        private static Span<T> Part(Tensor? state, Range elements) => state is null ? default : state.Span<T>()[elements];
    }

    /// <summary>How many updates parameter <paramref name="index"/> has received.</summary>
    private protected long StepCount(int index) => _steps[index];

    private protected string Name => GetType().Name;

    // ---- state dictionary ------------------------------------------------------------------------------------------

    /// <summary>
    /// A snapshot (copies) of the optimizer's state by name, enough to resume training exactly: per parameter i (numbered
    /// across groups in order) <c>state.i.NAME</c> for each state tensor (PyTorch's names: <c>momentum_buffer</c>,
    /// <c>exp_avg</c>, <c>exp_avg_sq</c>, <c>max_exp_avg_sq</c>) and <c>state.i.step</c> where steps are counted; per
    /// group g <c>param_groups.g.lr</c>, <c>param_groups.g.param_count</c> and, once a scheduler is attached,
    /// <c>param_groups.g.initial_lr</c>. Counts and rates are float64 scalars. Parameters that have not been updated
    /// yet have no entries.
    /// </summary>
    public IReadOnlyDictionary<string, Tensor> StateDict()
    {
        var state = new Dictionary<string, Tensor>();
        for (int i = 0; i < _parameters.Length; i++)
        {
            for (int s = 0; s < _stateNames.Length; s++)
                if (_state[i][s] is Tensor t)
                {
                    Tensor copy = Tensor.Allocate(t.DType, t.Dims, clear: false, scoped: false);
                    copy.CopyFrom(t);
                    state[Key(i, _stateNames[s])] = copy;
                }
            if (_countsSteps && _steps[i] > 0) state[Key(i, "step")] = Scalar(_steps[i]);
        }
        for (int g = 0; g < _groups.Length; g++)
        {
            state[GroupKey(g, "lr")] = Scalar(_groups[g].LearningRate);
            state[GroupKey(g, "param_count")] = Scalar(_groups[g].Items.Length);
            if (_groups[g].InitialLearningRate is double initial) state[GroupKey(g, "initial_lr")] = Scalar(initial);
        }
        return state;
    }

    /// <summary>Restores a state saved by <see cref="StateDict"/> of an optimizer of the same kind over parameters of
    /// the same shapes; parameters without entries start fresh. Throws, changing nothing, on unknown or missing keys,
    /// on incomplete per-parameter state, or on shape mismatches.</summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state)
    {
        ArgumentNullException.ThrowIfNull(state);
        string[] perParameter = _countsSteps ? _stateNames.Append("step").ToArray() : _stateNames;
        var expected = new HashSet<string>();
        var missing = new List<string>();
        for (int g = 0; g < _groups.Length; g++)
        {
            foreach (string field in new[] { "lr", "param_count" })
                if (!state.ContainsKey(GroupKey(g, field))) missing.Add(GroupKey(g, field));
            expected.Add(GroupKey(g, "lr"));
            expected.Add(GroupKey(g, "param_count"));
            expected.Add(GroupKey(g, "initial_lr"));
        }
        for (int i = 0; i < _parameters.Length; i++)
        {
            int present = 0;
            foreach (string name in perParameter)
            {
                expected.Add(Key(i, name));
                if (state.TryGetValue(Key(i, name), out Tensor? t))
                {
                    present++;
                    int[] shape = name == "step" ? Array.Empty<int>() : _parameters[i].Dims;
                    if (!ShapeUtil.SameShape(t.Dims, shape))
                        throw new ArgumentException($"LoadStateDict into {Name}: '{Key(i, name)}' has shape {ShapeUtil.Format(t.Dims)}, expected {ShapeUtil.Format(shape)}.");
                }
            }
            if (present != 0 && present != perParameter.Length)
                missing.AddRange(perParameter.Where(name => !state.ContainsKey(Key(i, name))).Select(name => Key(i, name)));
        }
        var unexpected = state.Keys.Where(k => !expected.Contains(k)).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
            throw new ArgumentException($"LoadStateDict into {Name}: missing keys [{string.Join(", ", missing)}], unexpected keys [{string.Join(", ", unexpected)}].");
        for (int g = 0; g < _groups.Length; g++)
        {
            double count = state[GroupKey(g, "param_count")].Item();
            if (count != _groups[g].Items.Length)
                throw new ArgumentException($"LoadStateDict into {Name}: parameter group {g} holds {_groups[g].Items.Length} parameters, the state was saved with {count}.");
            CheckNonNegative(Name, "learning rate", state[GroupKey(g, "lr")].Item());
        }

        for (int g = 0; g < _groups.Length; g++)
        {
            _groups[g].LearningRate = state[GroupKey(g, "lr")].Item();
            _groups[g].InitialLearningRate = state.TryGetValue(GroupKey(g, "initial_lr"), out Tensor? initial) ? initial.Item() : null;
        }
        for (int i = 0; i < _parameters.Length; i++)
        {
            for (int s = 0; s < _stateNames.Length; s++)
                if (state.TryGetValue(Key(i, _stateNames[s]), out Tensor? source)) CreateState(i, s).CopyFrom(source);
                else _state[i][s] = null;
            _steps[i] = _countsSteps && state.TryGetValue(Key(i, "step"), out Tensor? step) ? (long)step.Item() : 0;
        }
    }

    private static string Key(int index, string name) => string.Create(CultureInfo.InvariantCulture, $"state.{index}.{name}");

    private static string GroupKey(int group, string name) => string.Create(CultureInfo.InvariantCulture, $"param_groups.{group}.{name}");

    private static Tensor Scalar(double value)
    {
        Tensor t = Tensor.Allocate(DType.Float64, Array.Empty<int>(), clear: false, scoped: false);
        t.SpanD[0] = value;
        return t;
    }

    // ---- hyper-parameter checks ------------------------------------------------------------------------------------

    internal static double CheckNonNegative(string optimizer, string what, double value)
    {
        if (!double.IsFinite(value) || value < 0)
            throw new ArgumentException($"{optimizer}: the {what} must be finite and non-negative, got {value.ToString(CultureInfo.InvariantCulture)}.");
        return value;
    }

    internal static double CheckBelowOne(string optimizer, string what, double value)
    {
        if (!(value >= 0 && value < 1))
            throw new ArgumentException($"{optimizer}: {what} must be in [0, 1), got {value.ToString(CultureInfo.InvariantCulture)}.");
        return value;
    }
}
