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
}
