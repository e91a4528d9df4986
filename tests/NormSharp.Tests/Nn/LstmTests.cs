using NormSharp.Nn;
using NormSharp.Tests.Testing;

namespace NormSharp.Tests.Nn;

public class LstmTests
{
    private static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    // Layer normalization of one vector without gain or shift (Ba et al. 2016, eq. 15–16), ε = 1e-5 as nn.LayerNorm.
    private static double[] Normalize(double[] v)
    {
        double mean = v.Average(), variance = v.Select(x => (x - mean) * (x - mean)).Average();
        return v.Select(x => (x - mean) / Math.Sqrt(variance + 1e-5)).ToArray();
    }

    /// <summary>One step of the gate equations for one sample, written out element by element. Weights are row-major
    /// (4H, in) and (4H, H); returns (h, c).</summary>
    private static (double[] H, double[] C) ReferenceStep(double[] x, double[] h, double[] c, double[] wIh, double[] wHh, double[] bIh, double[] bHh, bool layerNorm)
    {
        int hidden = h.Length, inputs = x.Length;
        var fromInput = new double[4 * hidden];
        var fromHidden = new double[4 * hidden];
        for (int r = 0; r < 4 * hidden; r++)
        {
            for (int k = 0; k < inputs; k++) fromInput[r] += wIh[r * inputs + k] * x[k];
            for (int k = 0; k < hidden; k++) fromHidden[r] += wHh[r * hidden + k] * h[k];
        }
        if (layerNorm) { fromInput = Normalize(fromInput); fromHidden = Normalize(fromHidden); }
        double[] z = Enumerable.Range(0, 4 * hidden).Select(r => fromInput[r] + bIh[r] + fromHidden[r] + bHh[r]).ToArray();
        var newC = new double[hidden];
        for (int j = 0; j < hidden; j++)
            newC[j] = Sigmoid(z[hidden + j]) * c[j] + Sigmoid(z[j]) * Math.Tanh(z[2 * hidden + j]);
        double[] squashed = layerNorm ? Normalize(newC) : newC;
        double[] newH = Enumerable.Range(0, hidden).Select(j => Sigmoid(z[3 * hidden + j]) * Math.Tanh(squashed[j])).ToArray();
        return (newH, newC);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void One_step_matches_the_gate_equations(bool layerNorm)
    {
        const int batch = 2, inputs = 3, hidden = 2;
        var lstm = new Lstm(inputs, hidden, layerNorm: layerNorm, generator: new RandomGenerator(7));
        lstm.To(DType.Float64);
        double[] x = GradCheck.Random(1, batch, 1, inputs).ToDoubleArray();
        double[] h0 = GradCheck.Random(2, 1, batch, hidden).ToDoubleArray();
        double[] c0 = GradCheck.Random(3, 1, batch, hidden).ToDoubleArray();

        var (output, hN, cN) = lstm.Forward(Tensor.FromArray(x, batch, 1, inputs), Tensor.FromArray(h0, 1, batch, hidden), Tensor.FromArray(c0, 1, batch, hidden));

        Assert.Equal(new[] { batch, 1, hidden }, output.Shape);
        Assert.Equal(new[] { 1, batch, hidden }, hN.Shape);
        double[] wIh = lstm.WeightIh.ToDoubleArray(), wHh = lstm.WeightHh.ToDoubleArray();
        double[] bIh = lstm.BiasIh!.ToDoubleArray(), bHh = lstm.BiasHh!.ToDoubleArray();
        for (int n = 0; n < batch; n++)
        {
            var (h, c) = ReferenceStep(x[(n * inputs)..((n + 1) * inputs)], h0[(n * hidden)..((n + 1) * hidden)], c0[(n * hidden)..((n + 1) * hidden)], wIh, wHh, bIh, bHh, layerNorm);
            for (int j = 0; j < hidden; j++)
            {
                Assert.Equal(h[j], output.ToDoubleArray()[n * hidden + j], 12);
                Assert.Equal(h[j], hN.ToDoubleArray()[n * hidden + j], 12);
                Assert.Equal(c[j], cN.ToDoubleArray()[n * hidden + j], 12);
            }
        }
    }

    [Fact]
    public void Cell_state_gates_take_the_same_sigmoid_as_the_sigmoid_layer_bit_for_bit()
    {
        // With tanh(z_g) = 1 (z_g = 30) and c_prev = 0 the new cell state is σ(z_i) itself: c = σ(z_f)·0 + σ(z_i)·1.
        const int rows = 3, hidden = 37;
        var random = new Random(4);
        float[] gates = new float[rows * 4 * hidden];
        float[] inputGate = new float[rows * hidden];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < hidden; j++)
            {
                inputGate[r * hidden + j] = gates[r * 4 * hidden + j] = (float)(random.NextDouble() * 24 - 12);
                gates[r * 4 * hidden + hidden + j] = (float)random.NextDouble();
                gates[r * 4 * hidden + 2 * hidden + j] = 30;
            }
        Tensor cell = Functional.LstmCellState(Tensor.FromArray(gates, rows, 4 * hidden), Tensor.Zeros(new[] { rows, hidden }));
        Tensor expected = Functional.Sigmoid(Tensor.FromArray(inputGate, rows, hidden));
        Assert.Equal(expected.ToArray().Select(BitConverter.SingleToInt32Bits), cell.ToArray().Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public void Hand_computed_step_with_unit_weights()
    {
        // in = 1, H = 1, every weight 1 and every bias 0: z_i = z_f = z_g = z_o = x + h0 = 0.5 + 0.5 = 1.
        var lstm = new Lstm(1, 1);
        foreach (Tensor p in new[] { lstm.WeightIh, lstm.WeightHh }) p.CopyFrom(new float[] { 1, 1, 1, 1 });
        foreach (Tensor p in new[] { lstm.BiasIh!, lstm.BiasHh! }) p.CopyFrom(new float[] { 0, 0, 0, 0 });
        var (_, h, c) = lstm.Forward(Tensor.FromArray(new float[] { 0.5f }, 1, 1, 1), Tensor.Full(new[] { 1, 1, 1 }, 0.5), Tensor.Full(new[] { 1, 1, 1 }, 2.0));
        double s = 1 / (1 + Math.Exp(-1));             // σ(1) = 0.7310586
        double expectedC = s * 2.0 + s * Math.Tanh(1);  // f·c0 + i·g = 2.0189...
        Assert.Equal(expectedC, c.Item(), 5);
        Assert.Equal(s * Math.Tanh(expectedC), h.Item(), 5);
    }

    [Fact]
    public void Sequence_backward_matches_finite_differences() =>
        GradCheck.CheckModule(new Lstm(3, 4, generator: new RandomGenerator(11)), GradCheck.Random(4, 2, 5, 3));

    [Fact]
    public void Layer_normalized_sequence_backward_matches_finite_differences() =>
        GradCheck.CheckModule(new Lstm(3, 4, layerNorm: true, generator: new RandomGenerator(12)), GradCheck.Random(5, 2, 4, 3));

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Backward_through_initial_and_final_states_matches_finite_differences(bool layerNorm)
    {
        var lstm = new Lstm(2, 3, bias: false, batchFirst: false, layerNorm: layerNorm, generator: new RandomGenerator(13));
        lstm.To(DType.Float64);
        Tensor x = GradCheck.Random(6, 4, 2, 2), h0 = GradCheck.Random(7, 1, 2, 3), c0 = GradCheck.Random(8, 1, 2, 3);
        Tensor[] wrt = new[] { x, h0, c0 }.Concat(lstm.Parameters()).ToArray();
        GradCheck.Check(inputs =>
        {
            var (output, h, c) = lstm.Forward(inputs[0], inputs[1], inputs[2]);
            return Tensor.Concat(new[] { output.Reshape(-1), h.Reshape(-1), c.Reshape(-1) });
        }, new[] { x, h0, c0 }, wrt);
    }

    [Fact]
    public void Cell_state_op_backward_matches_finite_differences() =>
        GradCheck.Check(t => Functional.LstmCellState(t[0], t[1]), GradCheck.Random(9, 3, 8), GradCheck.Random(10, 3, 2));

    [Fact]
    public void Time_first_layout_gives_the_same_sequence_as_batch_first()
    {
        var batchFirst = new Lstm(3, 4, generator: new RandomGenerator(14));
        var timeFirst = new Lstm(3, 4, batchFirst: false, generator: new RandomGenerator(14));
        Tensor x = Tensor.Normal(new[] { 2, 5, 3 }, generator: new RandomGenerator(15));
        float[] expected = batchFirst.Forward(x).ToArray();
        float[] actual = timeFirst.Forward(x.Transpose(0, 1)).Transpose(0, 1).ToArray();
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Layer_normalized_cell_cannot_tell_an_input_from_its_double()
    {
        var plain = new Lstm(2, 4, generator: new RandomGenerator(17));
        var normalized = new Lstm(2, 4, layerNorm: true, generator: new RandomGenerator(17));
        plain.To(DType.Float64);
        normalized.To(DType.Float64);
        Tensor x = GradCheck.Random(18, 3, 5, 2);
        double MaxChange(Lstm lstm) => lstm.Forward(x).ToDoubleArray().Zip(lstm.Forward(x * 2.0).ToDoubleArray()).Max(p => Math.Abs(p.First - p.Second));
        Assert.True(MaxChange(normalized) < 1e-3, $"LN-LSTM output moved by {MaxChange(normalized)}");
        Assert.True(MaxChange(plain) > 1e-2, $"LSTM output moved by only {MaxChange(plain)}");
    }

    [Fact]
    public void Parameters_use_pytorch_names_shapes_and_initialization()
    {
        var lstm = new Lstm(10, 25, layerNorm: true, generator: new RandomGenerator(16));
        Assert.Equal(new[] { "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "layer_norm_ih.weight", "layer_norm_hh.weight", "layer_norm_cell.weight", "layer_norm_cell.bias" },
            lstm.StateDict().Keys);
        Assert.Equal(new[] { 100, 10 }, lstm.WeightIh.Shape);
        Assert.Equal(new[] { 100, 25 }, lstm.WeightHh.Shape);
        float[] w = lstm.WeightHh.ToArray();
        Assert.All(w, v => Assert.InRange(v, -0.2f, 0.2f));
        Assert.True(w.Max() > 0.19f && w.Min() < -0.19f);
    }

    [Fact]
    public void Wrong_input_size_names_the_layer_and_both_shapes()
    {
        var e = Assert.Throws<ArgumentException>(() => new Lstm(3, 4).Forward(Tensor.Zeros(new[] { 2, 5, 7 })));
        Assert.Contains("Lstm(3, 4, batch_first=True)", e.Message);
        Assert.Contains("(N, T, 3)", e.Message);
        Assert.Contains("(2, 5, 7)", e.Message);
    }

    [Fact]
    public void Two_dimensional_input_is_rejected_with_the_layer_name()
    {
        var e = Assert.Throws<ArgumentException>(() => new Lstm(3, 4, layerNorm: true).Forward(Tensor.Zeros(new[] { 5, 3 })));
        Assert.Contains("Lstm(3, 4, batch_first=True, layer_norm=True)", e.Message);
        Assert.Contains("(5, 3)", e.Message);
    }

    [Fact]
    public void Wrong_initial_state_shape_names_the_layer_and_both_shapes()
    {
        var e = Assert.Throws<ArgumentException>(() => new Lstm(3, 4).Forward(Tensor.Zeros(new[] { 2, 5, 3 }), Tensor.Zeros(new[] { 2, 4 }), null));
        Assert.Contains("Lstm(3, 4, batch_first=True)", e.Message);
        Assert.Contains("h0 of shape (1, 2, 4)", e.Message);
        Assert.Contains("(2, 4)", e.Message);
    }
}
