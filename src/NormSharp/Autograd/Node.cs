namespace NormSharp.Autograd;

/// <summary>
/// Computes the gradients of an operation's inputs from the gradient of its output. Entries may be null for inputs
/// that need no gradient; each non-null entry has its input's shape.
/// </summary>
internal delegate Tensor?[] BackwardFunction(Tensor gradOutput);

/// <summary>One recorded operation on the tape: its inputs and the closure that runs its backward pass.</summary>
internal sealed class Node
{
    public Node(string name, Tensor[] inputs, BackwardFunction backward)
    {
        Name = name;
        Inputs = inputs;
        Backward = backward;
    }

    /// <summary>The operation's name, for error messages.</summary>
    public string Name { get; }

    /// <summary>The tensors the operation read; empty once the node is freed.</summary>
    public Tensor[] Inputs { get; private set; }

    /// <summary>Null once a backward pass has run without retaining the graph, which frees what it saved.</summary>
    public BackwardFunction? Backward { get; private set; }

    /// <summary>Drops the backward closure (and the tensors it saved) and the links to the inputs, as a backward pass
    /// that does not retain the graph does: an output the user keeps, such as the loss, then no longer keeps the
    /// activations of the whole step reachable.</summary>
    public void Free()
    {
        Backward = null;
        Inputs = Array.Empty<Tensor>();
    }
}
