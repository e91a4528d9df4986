namespace NormSharp;

/// <summary>
/// A region of code whose tensors are freed together when it ends, in the manner of TorchSharp's DisposeScope.
/// Tensors created on this thread while the scope is the innermost one take their buffers from a pool and return
/// them when the scope is disposed; a training loop that opens one scope per step therefore reuses the same arrays
/// step after step instead of allocating new ones. Tensors that must outlive the scope are handed out with
/// <see cref="Keep"/>; parameters, gradients and optimizer state are never created inside a scope.
/// </summary>
/// <example>
/// <code>
/// foreach (var (x, y) in batches)
/// {
///     using var scope = TensorScope.Begin();
///     var loss = Functional.CrossEntropy(model.Forward(x), y);
///     loss.Backward();
///     optimizer.Step();
/// }
/// </code>
/// </example>
public sealed class TensorScope : IDisposable
{
    [ThreadStatic] private static TensorScope? t_current;

    private readonly TensorScope? _outer;
    private readonly List<Tensor> _owned = new();
    private bool _disposed;

    private TensorScope(TensorScope? outer) => _outer = outer;

    /// <summary>Opens a scope on the current thread; dispose it to free every tensor created inside.</summary>
    public static TensorScope Begin() => t_current = new TensorScope(t_current);

    internal static TensorScope? Current => t_current;

    internal void Register(Tensor tensor) => _owned.Add(tensor);

    /// <summary>Moves <paramref name="tensor"/> to the enclosing scope (or to the garbage collector if none) so it
    /// survives this scope's end. Returns the same tensor.</summary>
    public Tensor Keep(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (_owned.Remove(tensor)) _outer?.Register(tensor);
        return tensor;
    }

    /// <summary>Frees every tensor created in this scope and not kept.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (!ReferenceEquals(t_current, this))
            throw new InvalidOperationException("TensorScope: scopes must be disposed in the reverse order they were begun, on the thread that began them.");
        t_current = _outer;
        foreach (Tensor t in _owned) t.Dispose();
        _owned.Clear();
    }
}
