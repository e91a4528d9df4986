using NormSharp.Autograd;

namespace NormSharp.Nn;

/// <summary>Runs its children in order, each on the previous one's output. Children are named "0", "1", … as in
/// PyTorch, so state names read <c>0.weight</c>, <c>1.running_mean</c>.</summary>
public class Sequential : Module
{
    private readonly List<Module> _layers = new();

    /// <summary>A sequence of the given layers.</summary>
    public Sequential(params Module[] layers)
    {
        foreach (Module layer in layers) Add(layer);
    }

    /// <summary>Appends a layer.</summary>
    public Sequential Add(Module layer)
    {
        RegisterModule(_layers.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), layer);
        _layers.Add(layer);
        return this;
    }

    /// <summary>The number of layers.</summary>
    public int Count => _layers.Count;

    /// <summary>The layer at <paramref name="index"/>.</summary>
    public Module this[int index] => _layers[index];

    /// <summary>The layers in order.</summary>
    public IReadOnlyList<Module> Layers => _layers;

    internal override void ReplaceChild(string name, Module module)
    {
        base.ReplaceChild(name, module);
        _layers[int.Parse(name, System.Globalization.CultureInfo.InvariantCulture)] = module;
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        // A module's forward runs no kernel when it starts, so the buffers this thread touched before may be recycled.
        StorageGuard.SafePoint();
        Tensor x = input;
        for (int i = 0; i < _layers.Count; i++)
        {
            // A ReLU then a max pooling, when no gradient is recorded (evaluation, inference): one pass that floors the
            // pooled values at zero, the same values bit for bit, instead of a ReLU pass over the 4× larger input.
            if (_layers[i] is ReLU && i + 1 < _layers.Count && _layers[i + 1] is MaxPool2d pool && !(GradMode.IsEnabled && x.RequiresGrad))
            {
                x = pool.ForwardAfterRelu(x);
                i++;
            }
            else x = _layers[i].Forward(x);
        }
        return x;
    }
}
