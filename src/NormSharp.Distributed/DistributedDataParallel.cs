using System.Text;
using NormSharp.Nn;
using NormSharp.Training;

namespace NormSharp.Distributed;

/// <summary>
/// Data-parallel training of one module by the processes of a <see cref="ProcessGroup"/> (PyTorch's
/// <c>DistributedDataParallel</c>). On creation it checks that every process holds the same model (module types,
/// parameter and buffer names, shapes and dtypes) and the same settings, naming the first difference, and copies
/// rank 0's parameters and buffers to every process. Then each backward pass sums the gradients over the processes
/// in buckets of about <see cref="BucketBytes"/>, one all-reduce per bucket: a bucket's non-blocking all-reduce starts
/// as soon as the last of its parameters has its gradient (a post-accumulate-grad hook), and every later hook lets the
/// started ones progress while the backward pass goes on with the layers below; <see cref="FinishGradients"/> waits
/// for the rest, and for the step's loss and accuracy sums, before the optimizer step.
/// Parameters are bucketed in reverse registration order, the order in which the backward pass completes them.
/// The gradients are summed, not averaged: <see cref="Model.Fit"/> scales each process's loss by its share of the
/// batch. One backward pass per step (no gradient accumulation across passes).
/// </summary>
public sealed class DistributedDataParallel : IDistributedTraining, IDisposable
{
    private readonly List<Bucket> _buckets = new();
    private readonly List<IDisposable> _hooks = new();

    /// <summary>Prepares <paramref name="module"/> for data-parallel training; <paramref name="settings"/> are
    /// lines (such as "batch_size=128") that must also agree on every process.</summary>
    public DistributedDataParallel(Module module, ProcessGroup? processGroup = null, IEnumerable<string>? settings = null, int bucketBytes = 256 << 10)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bucketBytes);
        Module = module;
        ProcessGroup = processGroup ?? ProcessGroup.World;
        BucketBytes = bucketBytes;
        CheckSameOnEveryProcess(ProcessGroup, Describe(module, settings));
        BroadcastState(module, ProcessGroup);
        if (ProcessGroup.Size == 1) return;
        foreach (var group in module.Parameters().Where(p => p.RequiresGrad).Reverse().GroupBy(p => p.DType))
        {
            var parameters = new List<Tensor>();
            long bytes = 0;
            foreach (Tensor p in group)
            {
                parameters.Add(p);
                bytes += (long)p.Length * (p.DType == DType.Float64 ? 8 : 4);
                if (bytes >= bucketBytes) { AddBucket(parameters); parameters = new List<Tensor>(); bytes = 0; }
            }
            if (parameters.Count > 0) AddBucket(parameters);
        }
    }

    /// <summary>Trains <paramref name="model"/> data-parallel: Keras layers created with
    /// <c>synchronized: true</c> become <see cref="SyncBatchNorm"/>, the model is checked and broadcast as in the
    /// constructor, and <see cref="Model.Distribution"/> is set so that <see cref="Model.Fit"/> shards its batches.</summary>
    public static DistributedDataParallel Attach(Model model, ProcessGroup? processGroup = null, IEnumerable<string>? settings = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        SyncBatchNorm.ConvertSynchronizedKerasLayers(model.Network, processGroup);
        var parallel = new DistributedDataParallel(model.Network, processGroup, settings);
        model.Distribution = parallel;
        return parallel;
    }

    /// <summary>The module trained.</summary>
    public Module Module { get; }

    /// <summary>The processes that train it.</summary>
    public ProcessGroup ProcessGroup { get; }

    /// <summary>The approximate size of a gradient bucket (256 KiB by default: the seed CNN's 0.97 MB of float32
    /// gradients make 3 buckets, the first of which starts while the convolutions' gradients are computed).</summary>
    public int BucketBytes { get; }

    /// <summary>The number of gradient buckets, each summed by one all-reduce per step.</summary>
    public int BucketCount => _buckets.Count;

    /// <inheritdoc/>
    public int Rank => ProcessGroup.Rank;

    /// <inheritdoc/>
    public int WorldSize => ProcessGroup.Size;

    /// <summary>Waits for every bucket's all-reduce (starting those whose parameters got no gradient this pass) and
    /// writes the summed gradients back into the parameters' <see cref="Tensor.Grad"/>; sums
    /// <paramref name="stepSums"/> over the processes in an all-reduce started after the last bucket's, so that the
    /// processes meet once at the end of the step rather than once more for them.</summary>
    public void FinishGradients(double[] stepSums)
    {
        ArgumentNullException.ThrowIfNull(stepSums);
        foreach (Bucket bucket in _buckets) if (bucket.Pending is null) Start(bucket);
        PendingCollective sums = ProcessGroup.StartAllReduceSum(stepSums);
        for (int i = 0; i < _buckets.Count; i++)
        {
            Bucket bucket = _buckets[i];
            ProcessGroup.Wait(bucket.Pending!, $"gradient all-reduce (bucket {i + 1} of {_buckets.Count})");
            bucket.CopyBack();
            bucket.Pending = null;
            bucket.Ready = 0;
        }
        ProcessGroup.Wait(sums, "all-reduce of the step's loss and accuracy");
    }

    /// <summary>Removes the gradient hooks.</summary>
    public void Dispose()
    {
        foreach (IDisposable hook in _hooks) hook.Dispose();
        _hooks.Clear();
    }

    private void AddBucket(List<Tensor> parameters)
    {
        var bucket = new Bucket(parameters.ToArray());
        _buckets.Add(bucket);
        foreach (Tensor p in parameters)
            _hooks.Add(p.RegisterPostAccumulateGradHook(_ =>
            {
                if (bucket.Pending is null && ++bucket.Ready == bucket.Parameters.Length) Start(bucket);
                ProcessGroup.Progress();
            }));
    }

    private void Start(Bucket bucket)
    {
        bucket.CopyIn();
        bucket.Pending = bucket.Doubles is null ? ProcessGroup.StartAllReduceSum(bucket.Floats!) : ProcessGroup.StartAllReduceSum(bucket.Doubles);
    }

    /// <summary>The model and settings as lines of text: module types, then "name shape dtype" per parameter and
    /// buffer, then the settings.</summary>
    private static string Describe(Module module, IEnumerable<string>? settings)
    {
        var text = new StringBuilder();
        foreach (var (path, m) in module.NamedModules()) text.Append("module ").Append(path.Length == 0 ? "(root)" : path).Append(": ").AppendLine(m.GetType().Name);
        foreach (var (name, t) in module.StateDict()) text.AppendLine($"tensor {name}: shape {ShapeUtil.Format(t.Dims)}, {t.DType}");
        foreach (string line in settings ?? Array.Empty<string>()) text.Append("setting ").AppendLine(line);
        return text.ToString();
    }

    /// <summary>Throws on every process, naming the first line where some process's description differs from rank
    /// 0's.</summary>
    internal static void CheckSameOnEveryProcess(ProcessGroup group, string description)
    {
        if (group.Size == 1) return;
        string[] all = group.AllGather(description);
        string[] reference = all[0].Split('\n');
        for (int rank = 1; rank < all.Length; rank++)
        {
            string[] lines = all[rank].Split('\n');
            for (int i = 0; i < Math.Max(lines.Length, reference.Length); i++)
            {
                string mine = i < lines.Length ? lines[i].TrimEnd() : "(nothing)", theirs = i < reference.Length ? reference[i].TrimEnd() : "(nothing)";
                if (mine != theirs)
                    throw new DistributedException($"the processes disagree: rank 0 has '{theirs}' where rank {rank} has '{mine}'; every process must build the same model with the same settings.");
            }
        }
    }

    /// <summary>Copies rank 0's parameters and buffers to every process, as raw bytes in one broadcast.</summary>
    private static void BroadcastState(Module module, ProcessGroup group)
    {
        if (group.Size == 1) return;
        Tensor[] tensors = module.StateDict().Values.ToArray();
        var bytes = new byte[tensors.Sum(t => (long)t.Length * ElementBytes(t))];
        int offset = 0;
        foreach (Tensor t in tensors)
        {
            Bytes(t).CopyTo(bytes.AsSpan(offset));
            offset += t.Length * ElementBytes(t);
        }
        group.Broadcast(bytes);
        offset = 0;
        foreach (Tensor t in tensors)
        {
            bytes.AsSpan(offset, t.Length * ElementBytes(t)).CopyTo(Bytes(t));
            offset += t.Length * ElementBytes(t);
        }
    }

    private static int ElementBytes(Tensor t) => t.DType == DType.Float64 ? 8 : 4;

    private static Span<byte> Bytes(Tensor t)
    {
        t.RequireContiguous("DistributedDataParallel");
        return t.DType == DType.Float64 ? System.Runtime.InteropServices.MemoryMarshal.AsBytes(t.SpanD) : System.Runtime.InteropServices.MemoryMarshal.AsBytes(t.SpanF);
    }

    /// <summary>Parameters of one dtype whose gradients are summed by one all-reduce of a flat buffer.</summary>
    private sealed class Bucket
    {
        public Bucket(Tensor[] parameters)
        {
            Parameters = parameters;
            int length = parameters.Sum(p => p.Length);
            if (parameters[0].DType == DType.Float64) Doubles = new double[length];
            else Floats = new float[length];
        }

        public Tensor[] Parameters { get; }
        public float[]? Floats { get; }
        public double[]? Doubles { get; }
        public int Ready { get; set; }
        public PendingCollective? Pending { get; set; }

        public void CopyIn()
        {
            int offset = 0;
            foreach (Tensor p in Parameters)
            {
                if (Doubles is not null)
                {
                    if (p.Grad is null) Doubles.AsSpan(offset, p.Length).Clear(); else p.Grad.SpanD.CopyTo(Doubles.AsSpan(offset));
                }
                else if (p.Grad is null) Floats.AsSpan(offset, p.Length).Clear();
                else p.Grad.SpanF.CopyTo(Floats.AsSpan(offset));
                offset += p.Length;
            }
        }

        public void CopyBack()
        {
            int offset = 0;
            foreach (Tensor p in Parameters)
            {
                p.Grad ??= Tensor.Allocate(p.DType, p.Dims, clear: false, scoped: false);
                if (Doubles is not null) Doubles.AsSpan(offset, p.Length).CopyTo(p.Grad.SpanD);
                else Floats.AsSpan(offset, p.Length).CopyTo(p.Grad.SpanF);
                offset += p.Length;
            }
        }
    }
}
