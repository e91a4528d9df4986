namespace NormSharp.Nn;

/// <summary>Fine-tuning and re-estimation tools for the BatchNorm layers of a model.</summary>
public static class BatchNormTraining
{
    /// <summary>Freezes every <see cref="BatchNorm"/> with running statistics in <paramref name="model"/> (see
    /// <see cref="BatchNorm.Freeze"/>): they normalize with, and keep, their running statistics while the rest of the
    /// model trains. Returns how many layers were frozen.</summary>
    public static int FreezeBatchNorm(this Module model, bool freezeParameters = true)
    {
        List<BatchNorm> layers = BatchNorms(model).Where(b => b.TrackRunningStats).ToList();
        foreach (BatchNorm b in layers) b.Freeze(freezeParameters);
        return layers.Count;
    }

    /// <summary>Unfreezes every <see cref="BatchNorm"/> in <paramref name="model"/>. Returns how many there are.</summary>
    public static int UnfreezeBatchNorm(this Module model)
    {
        List<BatchNorm> layers = BatchNorms(model).ToList();
        foreach (BatchNorm b in layers) b.Unfreeze();
        return layers.Count;
    }

    /// <summary>
    /// Precise BatchNorm (Wu &amp; Johnson, "Rethinking 'Batch' in BatchNorm", 2021): replaces the exponential moving
    /// averages of every unfrozen BatchNorm with running statistics by the equal-weight average of the batch mean and
    /// unbiased batch variance over <paramref name="batches"/> (at most <paramref name="maxBatches"/>), computed with
    /// the model's weights as they are now. The BatchNorm layers run in training mode and every other module in
    /// evaluation mode (no dropout) without gradients; modes and momenta are restored afterwards. Returns the
    /// number of batches used; with none, the statistics are left unchanged and an exception is thrown.
    /// </summary>
    public static int RecomputeBatchNormStatistics(this Module model, IEnumerable<Tensor> batches, int? maxBatches = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batches);
        List<BatchNorm> layers = BatchNorms(model).Where(b => b.TrackRunningStats && !b.IsFrozen).ToList();
        var modes = model.NamedModules().Select(m => (m.Module, m.Module.IsTraining)).ToList();
        var saved = layers.Select(b => (b.Momentum, State: b.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value.CloneData()))).ToList();
        int used = 0;
        try
        {
            model.Eval();
            foreach (BatchNorm b in layers)
            {
                b.ResetRunningStats();
                b.Momentum = null; // cumulative average: the n-th batch gets weight 1/n
                b.EstimatingPopulationStatistics = true;
                b.Train();
            }
            using (Tensor.NoGrad())
                foreach (Tensor batch in batches)
                {
                    if (used >= maxBatches) break;
                    using (TensorScope.Begin()) model.Forward(batch);
                    used++;
                }
        }
        finally
        {
            for (int i = 0; i < layers.Count; i++)
            {
                layers[i].Momentum = saved[i].Momentum;
                layers[i].EstimatingPopulationStatistics = false;
                if (used == 0) layers[i].LoadStateDict(saved[i].State);
            }
            foreach (var (module, training) in modes) module.Train(training); // parents first, so children end as they were
        }
        if (used == 0) throw new ArgumentException("RecomputeBatchNormStatistics: the data set gave no batches; the running statistics were left unchanged.");
        return used;
    }

    /// <summary>
    /// The result of <paramref name="evaluate"/> run with precise BatchNorm statistics
    /// (<see cref="RecomputeBatchNormStatistics"/> over <paramref name="batches"/>), after which every BatchNorm gets
    /// back the running statistics it had: a look at what precise BN would give, e.g. each epoch's validation, that
    /// leaves training undisturbed.
    /// </summary>
    public static T WithPreciseBatchNorm<T>(this Module model, IEnumerable<Tensor> batches, int? maxBatches, Func<T> evaluate)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(evaluate);
        var saved = BatchNorms(model).Where(b => b.TrackRunningStats)
            .Select(b => (Layer: b, State: b.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value.CloneData()))).ToList();
        try
        {
            model.RecomputeBatchNormStatistics(batches, maxBatches);
            return evaluate();
        }
        finally
        {
            foreach (var (layer, state) in saved) layer.LoadStateDict(state);
        }
    }

    private static IEnumerable<BatchNorm> BatchNorms(Module model) => model.NamedModules().Select(m => m.Module).OfType<BatchNorm>();
}
