namespace NormSharp.Training;

/// <summary>Thrown by <see cref="Model.Fit"/> when a batch's loss is NaN or infinite and
/// <see cref="Model.TerminateOnNaN"/> is on: training stopped before that batch's update, so the weights are those after
/// the batch before it, and the interrupted epoch was not recorded or checkpointed.</summary>
public sealed class NonFiniteLossException : InvalidOperationException
{
    /// <summary>Creates the exception for batch <paramref name="batch"/> (from 1) of <paramref name="batches"/> in
    /// epoch <paramref name="epoch"/> (from 1), whose mean loss was <paramref name="loss"/>.</summary>
    public NonFiniteLossException(int epoch, int batch, int batches, double loss)
        : base($"Model.Fit: the loss of epoch {epoch}, batch {batch} of {batches} is {loss}; training stopped (TerminateOnNaN) without applying that batch's update, and epoch {epoch} was not recorded or checkpointed, so the last checkpoint is the last good one. A lower learning rate usually helps; check the data for NaN or infinite values.")
    {
        Epoch = epoch;
        Batch = batch;
        Loss = loss;
    }

    /// <summary>The epoch (from 1) in which the loss stopped being finite.</summary>
    public int Epoch { get; }

    /// <summary>The batch of that epoch (from 1) whose loss was not finite.</summary>
    public int Batch { get; }

    /// <summary>The batch's loss: NaN or ±infinity.</summary>
    public double Loss { get; }
}
