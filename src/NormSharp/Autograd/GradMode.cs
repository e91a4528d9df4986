namespace NormSharp.Autograd;

/// <summary>Whether operations on the current thread are recorded for differentiation.</summary>
internal static class GradMode
{
    [ThreadStatic] private static int t_disabledDepth;

    public static bool IsEnabled => t_disabledDepth == 0;

    public static NoGradScope Disable()
    {
        t_disabledDepth++;
        return new NoGradScope();
    }

    internal static void Restore() => t_disabledDepth--;
}

/// <summary>Turns gradient recording off on this thread until disposed; see <see cref="Tensor.NoGrad"/>.</summary>
public readonly struct NoGradScope : IDisposable
{
    /// <summary>Turns recording back on (unless an outer scope still disables it).</summary>
    public void Dispose() => GradMode.Restore();
}
