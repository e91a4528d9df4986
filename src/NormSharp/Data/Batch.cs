namespace NormSharp.Data;

/// <summary>
/// One mini-batch produced by a <see cref="DataLoader"/>: images (B, C, H, W), their class indices, optionally their
/// one-hot rows (B, classes), and the data set indices of the samples.
/// </summary>
/// <remarks>
/// The tensors' buffers are rented from a pool and are not tracked by a <see cref="TensorScope"/>; disposing the
/// batch returns them (use <c>using (batch)</c> in a training loop), and a batch that is never disposed is simply
/// collected by the garbage collector.
/// </remarks>
public sealed class Batch : IDisposable
{
    internal Batch(Tensor images, int[] labels, Tensor? oneHotLabels, int[] indices)
    {
        Images = images;
        Labels = labels;
        OneHotLabels = oneHotLabels;
        Indices = indices;
    }

    /// <summary>The images, float32 of shape (B, C, H, W).</summary>
    public Tensor Images { get; }

    /// <summary>The class index of each image.</summary>
    public int[] Labels { get; }

    /// <summary>The labels as one-hot rows, float32 of shape (B, classes), when the loader was asked for them;
    /// otherwise null.</summary>
    public Tensor? OneHotLabels { get; }

    /// <summary>The position of each sample in the loader's data set.</summary>
    public int[] Indices { get; }

    /// <summary>The number of samples, B.</summary>
    public int Count => Labels.Length;

    /// <summary>Deconstructs into images and labels: <c>foreach (var (x, y) in loader.Batches(epoch))</c>.</summary>
    public void Deconstruct(out Tensor images, out int[] labels)
    {
        images = Images;
        labels = Labels;
    }

    /// <summary>Returns the tensors' buffers to the pool; the batch must not be used afterwards.</summary>
    public void Dispose()
    {
        Images.Dispose();
        OneHotLabels?.Dispose();
    }
}
