using NormSharp.Autograd;

namespace NormSharp;

public sealed partial class Tensor
{
    /// <summary>
    /// Back-propagates from this tensor: adds d(this)/d(leaf) · <paramref name="gradient"/> into the
    /// <see cref="Grad"/> of every leaf that requires a gradient. The gradient may be omitted for one-element outputs
    /// (a loss), where it is 1. Unless <paramref name="retainGraph"/> is true the recorded graph is freed, and a second
    /// backward pass through it throws.
    /// </summary>
    public void Backward(Tensor? gradient = null, bool retainGraph = false) => AutogradEngine.Backward(this, gradient, retainGraph);

    /// <summary>Stops recording operations for differentiation on this thread until the returned scope is disposed
    /// (inference, weight updates).</summary>
    /// <example><code>using (Tensor.NoGrad()) { var y = model.Forward(x); }</code></example>
    public static NoGradScope NoGrad() => GradMode.Disable();

    /// <summary>Whether operations on this thread are being recorded for differentiation.</summary>
    public static bool IsGradEnabled => GradMode.IsEnabled;

    /// <summary>
    /// Calls <paramref name="hook"/> with this leaf during every backward pass that reaches it, as soon as its
    /// <see cref="Grad"/> holds all of that pass's contributions (PyTorch's
    /// <c>register_post_accumulate_grad_hook</c>); data-parallel training starts the gradient exchange there while
    /// the rest of the backward pass runs. A pass that reaches the leaf without giving it a gradient still calls the
    /// hook (with <see cref="Grad"/> unchanged). Disposing the returned handle removes the hook.
    /// </summary>
    public IDisposable RegisterPostAccumulateGradHook(Action<Tensor> hook)
    {
        ArgumentNullException.ThrowIfNull(hook);
        if (!IsLeaf) throw new InvalidOperationException("RegisterPostAccumulateGradHook: only a leaf tensor (a parameter) accumulates a gradient.");
        (PostAccumulateGradHooks ??= new List<Action<Tensor>>()).Add(hook);
        return new HookHandle(this, hook);
    }

    internal List<Action<Tensor>>? PostAccumulateGradHooks { get; private set; }

    private sealed class HookHandle(Tensor tensor, Action<Tensor> hook) : IDisposable
    {
        public void Dispose() => tensor.PostAccumulateGradHooks?.Remove(hook);
    }
}
