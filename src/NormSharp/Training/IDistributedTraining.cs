namespace NormSharp.Training;

/// <summary>
/// What <see cref="Model.Fit"/> needs from a group of processes that train one model data-parallel (Keras's
/// distribution strategy); NormSharp.Distributed implements it over MPI. Every process calls the members in the same
/// order.
/// </summary>
public interface IDistributedTraining
{
    /// <summary>This process's index, 0 to <see cref="WorldSize"/> − 1.</summary>
    int Rank { get; }

    /// <summary>The number of processes.</summary>
    int WorldSize { get; }

    /// <summary>Called after the backward pass and before the optimizer step: on return every process's parameter
    /// gradients hold the sum of all processes' gradients, and <paramref name="stepSums"/> (the step's loss,
    /// accuracy count, ...) the element-wise sum of all processes' values. Both travel in one exchange: each exchange
    /// of its own would make the processes wait for the slowest once more per step.</summary>
    void FinishGradients(double[] stepSums);
}
