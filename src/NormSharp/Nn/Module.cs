using System.Text;

namespace NormSharp.Nn;

/// <summary>
/// The base of every layer and model: owns named parameters (trainable tensors), buffers (state such as running
/// statistics) and child modules, and switches between training and evaluation behaviour. Names follow PyTorch's
/// dotted convention (<c>features.0.weight</c>), so state dictionaries match PyTorch's.
/// </summary>
public abstract class Module
{
    private readonly List<string> _parameterNames = new();
    private readonly Dictionary<string, Tensor?> _parameters = new();
    private readonly List<string> _bufferNames = new();
    private readonly Dictionary<string, Tensor?> _buffers = new();
    private readonly List<string> _childNames = new();
    private readonly Dictionary<string, Module> _children = new();

    /// <summary>True in training mode (the default), false after <see cref="Eval"/>. Dropout and batch
    /// normalization behave differently in the two modes.</summary>
    public bool IsTraining { get; private set; } = true;

    /// <summary>Computes the module's output.</summary>
    public abstract Tensor Forward(Tensor input);

    /// <summary>Registers (or replaces) a trainable parameter; it is marked as requiring a gradient.</summary>
    protected Tensor RegisterParameter(string name, Tensor parameter)
    {
        parameter.RequiresGrad = true;
        if (!_parameters.ContainsKey(name)) _parameterNames.Add(name);
        _parameters[name] = parameter;
        return parameter;
    }

    /// <summary>Records that an optional parameter (such as a disabled bias) is absent.</summary>
    protected void RegisterAbsentParameter(string name)
    {
        if (!_parameters.ContainsKey(name)) _parameterNames.Add(name);
        _parameters[name] = null;
    }

    /// <summary>Registers (or replaces) a buffer: state saved with the model but not trained.</summary>
    protected Tensor RegisterBuffer(string name, Tensor buffer)
    {
        if (!_buffers.ContainsKey(name)) _bufferNames.Add(name);
        _buffers[name] = buffer;
        return buffer;
    }

    /// <summary>Registers a child module under <paramref name="name"/>.</summary>
    protected TModule RegisterModule<TModule>(string name, TModule module) where TModule : Module
    {
        ArgumentNullException.ThrowIfNull(module);
        if (!_children.ContainsKey(name)) _childNames.Add(name);
        _children[name] = module;
        return module;
    }

    /// <summary>Puts <paramref name="module"/> in place of the child registered under <paramref name="name"/>
    /// (PyTorch's <c>setattr</c> on a submodule), keeping its position; what the old child's tensors were shared
    /// with (an optimizer) sees the new child only if it holds the same tensors.</summary>
    internal virtual void ReplaceChild(string name, Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        if (!_children.ContainsKey(name))
            throw new ArgumentException($"{GetType().Name}: no child module named '{name}' to replace.");
        _children[name] = module;
    }

    /// <summary>Sets training mode on this module and all its descendants. Returns this module.</summary>
    public virtual Module Train(bool mode = true)
    {
        IsTraining = mode;
        foreach (string name in _childNames) _children[name].Train(mode);
        return this;
    }

    /// <summary>Sets evaluation mode (PyTorch's <c>model.eval()</c>). Returns this module.</summary>
    public Module Eval() => Train(false);

    /// <summary>The direct children, in registration order.</summary>
    public IEnumerable<(string Name, Module Module)> NamedChildren()
    {
        foreach (string name in _childNames) yield return (name, _children[name]);
    }

    /// <summary>This module and all descendants with their dotted paths ("" for this one).</summary>
    public IEnumerable<(string Name, Module Module)> NamedModules(string prefix = "")
    {
        yield return (prefix, this);
        foreach (var (name, child) in NamedChildren())
            foreach (var item in child.NamedModules(Join(prefix, name))) yield return item;
    }

    /// <summary>All trainable parameters with their dotted names, depth first in registration order.</summary>
    public IEnumerable<(string Name, Tensor Parameter)> NamedParameters()
    {
        foreach (var (path, module) in NamedModules())
            foreach (string name in module._parameterNames)
                if (module._parameters[name] is Tensor p) yield return (Join(path, name), p);
    }

    /// <summary>All trainable parameters.</summary>
    public IEnumerable<Tensor> Parameters() => NamedParameters().Select(p => p.Parameter);

    /// <summary>All buffers with their dotted names.</summary>
    public IEnumerable<(string Name, Tensor Buffer)> NamedBuffers()
    {
        foreach (var (path, module) in NamedModules())
            foreach (string name in module._bufferNames)
                if (module._buffers[name] is Tensor b) yield return (Join(path, name), b);
    }

    /// <summary>Parameters and buffers by dotted name, in PyTorch's order (each module's parameters, then its
    /// buffers, depth first).</summary>
    public IReadOnlyDictionary<string, Tensor> StateDict()
    {
        var state = new Dictionary<string, Tensor>();
        foreach (var (path, module) in NamedModules())
        {
            foreach (string name in module._parameterNames)
                if (module._parameters[name] is Tensor p) state[Join(path, name)] = p;
            foreach (string name in module._bufferNames)
                if (module._buffers[name] is Tensor b) state[Join(path, name)] = b;
        }
        return state;
    }

    /// <summary>Copies values into this module's parameters and buffers by name. With <paramref name="strict"/>, a
    /// missing or unexpected name is an error; a shape mismatch always is.</summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(state);
        IReadOnlyDictionary<string, Tensor> own = StateDict();
        if (strict)
        {
            var missing = own.Keys.Where(k => !state.ContainsKey(k)).ToList();
            var unexpected = state.Keys.Where(k => !own.ContainsKey(k)).ToList();
            if (missing.Count > 0 || unexpected.Count > 0)
                throw new ArgumentException($"LoadStateDict into {GetType().Name}: missing keys [{string.Join(", ", missing)}], unexpected keys [{string.Join(", ", unexpected)}].");
        }
        foreach (var (name, target) in own)
        {
            if (!state.TryGetValue(name, out Tensor? source)) continue;
            if (!ShapeUtil.SameShape(source.Dims, target.Dims))
                throw new ArgumentException($"LoadStateDict into {GetType().Name}: '{name}' expects shape {ShapeUtil.Format(target.Dims)}, the state has {ShapeUtil.Format(source.Dims)}.");
            target.CopyFrom(source);
        }
    }

    /// <summary>Zeroes the gradients of all parameters in place (the buffers are kept, so a steady training loop
    /// does not allocate).</summary>
    public void ZeroGrad()
    {
        foreach (Tensor p in Parameters()) p.Grad?.ZeroInPlace();
    }

    /// <summary>The number of elements in all parameters (trainable) and buffers.</summary>
    public long ParameterCount() => Parameters().Sum(p => (long)p.Length);

    /// <summary>Converts every parameter and buffer to <paramref name="dtype"/> in place (float64 for gradient checks).</summary>
    public Module To(DType dtype)
    {
        foreach (var (_, module) in NamedModules())
        {
            foreach (string name in module._parameterNames.ToList())
                if (module._parameters[name] is Tensor p && p.DType != dtype)
                {
                    Tensor converted = Tensor.Allocate(dtype, p.Dims, clear: false, scoped: false);
                    converted.CopyFrom(p);
                    converted.RequiresGrad = p.RequiresGrad; // a frozen parameter stays frozen
                    module._parameters[name] = converted;
                }
            foreach (string name in module._bufferNames.ToList())
                if (module._buffers[name] is Tensor b && b.DType != dtype)
                {
                    module._buffers[name] = Tensor.Allocate(dtype, b.Dims, clear: false, scoped: false);
                    module._buffers[name]!.CopyFrom(b);
                }
        }
        return this;
    }

    /// <summary>The registered parameter <paramref name="name"/> (null if registered as absent). Layers expose their
    /// parameters through properties that read here, so replacing a tensor (e.g. by <see cref="To"/>) is seen
    /// everywhere.</summary>
    protected Tensor? GetParameter(string name) => _parameters.TryGetValue(name, out Tensor? p) ? p
        : throw new KeyNotFoundException($"{GetType().Name} has no parameter '{name}'.");

    /// <summary>The registered buffer <paramref name="name"/>.</summary>
    protected Tensor? GetBuffer(string name) => _buffers.TryGetValue(name, out Tensor? b) ? b
        : throw new KeyNotFoundException($"{GetType().Name} has no buffer '{name}'.");

    /// <summary>The arguments shown in <see cref="ToString"/>, PyTorch style (e.g. <c>in_features=784, ...</c>).</summary>
    protected virtual string ExtraRepresentation => "";

    /// <summary>A tree of the module and its children, as PyTorch prints it.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        Append(sb, 0);
        return sb.ToString();
    }

    private void Append(StringBuilder sb, int indent)
    {
        sb.Append(GetType().Name).Append('(').Append(ExtraRepresentation);
        if (_childNames.Count > 0)
        {
            sb.AppendLine();
            foreach (var (name, child) in NamedChildren())
            {
                sb.Append(' ', indent + 2).Append('(').Append(name).Append("): ");
                child.Append(sb, indent + 2);
                sb.AppendLine();
            }
            sb.Append(' ', indent);
        }
        sb.Append(')');
    }

    private static string Join(string prefix, string name) => prefix.Length == 0 ? name : prefix + "." + name;

    /// <summary>Throws an <see cref="ArgumentException"/> naming this module unless <paramref name="input"/> has one of
    /// the expected ranks.</summary>
    protected void CheckRank(Tensor input, params int[] ranks)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (Array.IndexOf(ranks, input.Rank) < 0)
            throw new ArgumentException($"{Describe()}: expected a {string.Join(" or ", ranks.Select(r => r + "-D"))} input, got shape {ShapeUtil.Format(input.Dims)}.");
    }

    /// <summary>The module's name and arguments, for error messages.</summary>
    protected string Describe() => $"{GetType().Name}({ExtraRepresentation})";
}
