namespace NormSharp.Tests.Autograd;

public class PostAccumulateGradHookTests
{
    [Fact]
    public void Hook_runs_once_after_every_contribution_to_the_gradient()
    {
        Tensor w = Tensor.FromArray(new[] { 2f, 3f }, 2);
        w.RequiresGrad = true;
        var seen = new List<float[]>();
        w.RegisterPostAccumulateGradHook(t => seen.Add(t.Grad!.ToArray()));
        Tensor x = Tensor.FromArray(new[] { 1f, 10f }, 2), y = Tensor.FromArray(new[] { 100f, 1000f }, 2);
        ((w * x).Sum() + (w * y).Sum()).Backward();
        Assert.Single(seen);
        Assert.Equal(new[] { 101f, 1010f }, seen[0]);
    }

    [Fact]
    public void Hooks_run_in_the_order_the_backward_pass_completes_the_leaves()
    {
        Tensor first = Tensor.Full(new[] { 3 }, 0.5), second = Tensor.Full(new[] { 3 }, 2.0);
        first.RequiresGrad = second.RequiresGrad = true;
        var order = new List<string>();
        first.RegisterPostAccumulateGradHook(_ => order.Add("first"));
        second.RegisterPostAccumulateGradHook(_ => order.Add("second"));
        ((Tensor.Full(new[] { 3 }, 1.0) * first).Exp() * second).Sum().Backward();
        Assert.Equal(new[] { "second", "first" }, order);
    }

    [Fact]
    public void Disposing_the_handle_removes_the_hook()
    {
        Tensor w = Tensor.Full(new[] { 2 }, 1.0);
        w.RequiresGrad = true;
        int calls = 0;
        IDisposable handle = w.RegisterPostAccumulateGradHook(_ => calls++);
        (w * 2.0).Sum().Backward();
        handle.Dispose();
        (w * 2.0).Sum().Backward();
        Assert.Equal(1, calls);
    }
}
