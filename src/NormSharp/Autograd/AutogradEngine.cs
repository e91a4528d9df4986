using System.Runtime.CompilerServices;

namespace NormSharp.Autograd;

/// <summary>
/// Reverse-mode automatic differentiation over a define-by-run tape: each differentiable operation links its output
/// to a <see cref="Node"/>; <see cref="Backward"/> walks the nodes in reverse topological order and accumulates
/// gradients into the leaves' <see cref="Tensor.Grad"/>, as PyTorch does.
/// </summary>
internal static class AutogradEngine
{
    /// <summary>Links <paramref name="output"/> to its inputs when recording is on and any input needs a gradient.</summary>
    public static void Record(Tensor output, string name, Tensor[] inputs, BackwardFunction backward)
    {
        if (!GradMode.IsEnabled) return;
        bool any = false;
        foreach (Tensor input in inputs) any |= input.RequiresGrad;
        if (!any) return;
        output.GradFn = new Node(name, inputs, backward);
        output.RequiresGrad = true;
    }

    public static void Backward(Tensor root, Tensor? gradient, bool retainGraph)
    {
        Run(root, gradient, retainGraph);
        if (retainGraph) return;
        // The pass is over and its frame gone: this thread holds no span, and the graph's buffers that nothing else
        // reaches are garbage now, so this is the moment a collection reclaims a whole step.
        StorageGuard.SafePoint();
        StorageLease.CollectAfterBackward();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Run(Tensor root, Tensor? gradient, bool retainGraph)
    {
        if (!root.RequiresGrad)
            throw new InvalidOperationException("Backward: the tensor does not require a gradient and has no recorded operation behind it.");
        if (gradient is null)
        {
            if (root.Length != 1)
                throw new InvalidOperationException($"Backward: a gradient can only be created implicitly for a one-element output; this one has shape {ShapeUtil.Format(root.Dims)}. Pass the output's gradient.");
            gradient = Tensor.Full(root.Dims, 1.0, root.DType);
        }
        else if (!ShapeUtil.SameShape(gradient.Dims, root.Dims))
            throw new ArgumentException($"Backward: the gradient has shape {ShapeUtil.Format(gradient.Dims)} but the output has shape {ShapeUtil.Format(root.Dims)}.");

        // Entering backward, this thread runs no kernel: what it touched so far may be recycled (StorageGuard).
        StorageGuard.SafePoint();
        using NoGradScope _ = GradMode.Disable();
        if (root.GradFn is null)
        {
            AccumulateIntoLeaf(root, gradient);
            root.PostAccumulateGradHooks?.ForEach(hook => hook(root));
            return;
        }

        List<Tensor> order = TopologicalOrder(root);
        Dictionary<Tensor, int>? pendingHooks = UsesOfHookedLeaves(order);
        var grads = new Dictionary<Tensor, Tensor>(ReferenceEqualityComparer.Instance) { [root] = gradient };
        // Gradients this pass made and nothing else can hold; each is disposed, returning its buffer to the pool,
        // once it has been consumed.
        var owned = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        for (int i = order.Count - 1; i >= 0; i--)
        {
            Tensor t = order[i];
            Node node = t.GradFn!;
            if (!grads.Remove(t, out Tensor? g))
            {
                SettleLeaves(node.Inputs, pendingHooks);
                continue;
            }
            BackwardFunction fn = node.Backward
                ?? throw new InvalidOperationException($"Backward: the graph through '{node.Name}' was already freed by an earlier backward pass; pass retainGraph: true to backward through it twice.");
            Tensor[] inputs = node.Inputs;
            long firstNewSerial = Storage.NextSerial;
            Tensor?[] inputGrads = fn(g.DType == t.DType ? g : g.To(t.DType));
            if (!retainGraph) node.Free();
            for (int k = 0; k < inputs.Length; k++)
            {
                Tensor input = inputs[k];
                Tensor? gi = inputGrads[k];
                if (gi is null || !input.RequiresGrad) continue;
                if (!ShapeUtil.SameShape(gi.Dims, input.Dims))
                    throw new InvalidOperationException($"Backward of '{node.Name}' produced a gradient of shape {ShapeUtil.Format(gi.Dims)} for an input of shape {ShapeUtil.Format(input.Dims)}.");
                bool made = MadeBy(gi, inputGrads, firstNewSerial);
                if (input.GradFn is null) AccumulateIntoLeaf(input, gi);
                else if (!grads.TryGetValue(input, out Tensor? existing))
                {
                    grads[input] = gi;
                    if (made) owned.Add(gi);
                    continue;
                }
                else if (owned.Contains(existing)) existing.AddInPlace(gi);
                else
                {
                    // The first gradient may alias another tensor (an op can pass its gradient straight through),
                    // so the sum goes into a fresh buffer that this pass owns.
                    Tensor sum = existing.Contiguous().CloneData();
                    sum.AddInPlace(gi);
                    grads[input] = sum;
                    owned.Add(sum);
                }
                if (made) gi.Dispose();
            }
            // A backward function may have handed g on as the gradient of one or more inputs; then it lives on in
            // their slots, unowned (no slot may add into it in place). Otherwise this pass is done with it.
            if (owned.Remove(g) && Array.IndexOf(inputGrads, g) < 0) g.Dispose();
            SettleLeaves(inputs, pendingHooks);
        }
    }

    /// <summary>How many recorded uses each leaf with a post-accumulate hook has in this pass (null when none has
    /// a hook): its gradient is complete once that many nodes have run.</summary>
    private static Dictionary<Tensor, int>? UsesOfHookedLeaves(List<Tensor> order)
    {
        Dictionary<Tensor, int>? uses = null;
        foreach (Tensor t in order)
            foreach (Tensor input in t.GradFn!.Inputs)
                if (input.GradFn is null && input.RequiresGrad && input.PostAccumulateGradHooks is { Count: > 0 })
                {
                    uses ??= new Dictionary<Tensor, int>(ReferenceEqualityComparer.Instance);
                    uses[input] = uses.GetValueOrDefault(input) + 1;
                }
        return uses;
    }

    /// <summary>Counts one use of each hooked leaf among <paramref name="inputs"/> as done and calls the hooks of
    /// those whose gradient is now complete.</summary>
    private static void SettleLeaves(Tensor[] inputs, Dictionary<Tensor, int>? pendingHooks)
    {
        if (pendingHooks is null) return;
        foreach (Tensor input in inputs)
        {
            if (!pendingHooks.TryGetValue(input, out int left)) continue;
            if (left > 1) pendingHooks[input] = left - 1;
            else
            {
                pendingHooks.Remove(input);
                input.PostAccumulateGradHooks!.ForEach(hook => hook(input));
            }
        }
    }

    /// <summary>Whether the backward function just created <paramref name="gradient"/> (its buffer is newer than the
    /// call), no view shares its buffer, and it was returned for one input only, so that nothing but this pass can hold
    /// it: not the user, not a saved tensor, not another input's gradient. (Backward functions return gradients they
    /// do not keep.)</summary>
    private static bool MadeBy(Tensor gradient, Tensor?[] inputGrads, long firstNewSerial)
    {
        Storage storage = gradient.Storage;
        if (storage.Serial < firstNewSerial || storage.IsShared) return false;
        int uses = 0;
        foreach (Tensor? other in inputGrads) if (ReferenceEquals(other, gradient)) uses++;
        return uses == 1;
    }

    private static void AccumulateIntoLeaf(Tensor leaf, Tensor gradient)
    {
        if (leaf.Grad is null)
        {
            // Gradients outlive any TensorScope: they are read after the step and accumulate across passes.
            Tensor grad = Tensor.Allocate(leaf.DType, leaf.Dims, clear: false, scoped: false);
            grad.CopyFrom(gradient);
            leaf.Grad = grad;
        }
        else leaf.Grad.AddInPlace(gradient);
    }

    private static List<Tensor> TopologicalOrder(Tensor root)
    {
        var order = new List<Tensor>();
        var visited = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(Tensor Tensor, int Next)>();
        stack.Push((root, 0));
        visited.Add(root);
        while (stack.Count > 0)
        {
            var (t, next) = stack.Pop();
            Tensor[] inputs = t.GradFn!.Inputs;
            if (next < inputs.Length)
            {
                stack.Push((t, next + 1));
                Tensor child = inputs[next];
                if (child.GradFn is not null && visited.Add(child)) stack.Push((child, 0));
            }
            else order.Add(t);
        }
        return order;
    }
}
