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

    public Tensor[] Inputs { get; }

    /// <summary>Null once a backward pass has run without retaining the graph, which frees what it saved.</summary>
    public BackwardFunction? Backward { get; set; }
}
