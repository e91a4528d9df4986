namespace NormSharp.Nn;

/// <summary>
/// One long short-term memory layer with PyTorch's <c>nn.LSTM</c> semantics (num_layers = 1, unidirectional):
/// for every time step t,
/// <code>
/// z   = W_ih x_t + b_ih + W_hh h_{t−1} + b_hh          gates in the order i, f, g, o (each H wide)
/// c_t = σ(z_f) ⊙ c_{t−1} + σ(z_i) ⊙ tanh(z_g)
/// h_t = σ(z_o) ⊙ tanh(c_t)
/// </code>
/// with the weights laid out as PyTorch's (weight_ih_l0 (4H, in), weight_hh_l0 (4H, H), bias_ih_l0 and bias_hh_l0
/// (4H)) and all four initialized U(−1/√H, 1/√H), so a PyTorch state dict loads unchanged. Backpropagation through
/// time comes from the autograd tape: each step is recorded as Linear, layer-norm, element-wise and one fused
/// cell-state operation (<see cref="Functional.LstmCellState"/>).
/// </summary>
/// <remarks>
/// <para>Unlike PyTorch, <c>batchFirst</c> defaults to true: inputs are (N, T, in) and outputs (N, T, H), the layout
/// NormSharp's other layers and data use. Pass <c>batchFirst: false</c> for PyTorch's default (T, N, in).</para>
/// <para>With <c>layerNorm: true</c> the cell is the layer-normalized LSTM of Ba, Kiros &amp; Hinton 2016 (supplementary
/// material, "Application of layer normalization to each experiment"):
/// z = LN(W_hh h_{t−1}; α_hh, b_hh) + LN(W_ih x_t; α_ih, b_ih) and h_t = σ(z_o) ⊙ tanh(LN(c_t; α_c, β_c)), each LN
/// normalizing over the features of one sample (all 4H gate pre-activations together, as in the paper, or the H cell
/// units). The two projections' shifts are the LSTM's own biases, so the parameter names of the plain LSTM are kept;
/// the gains α_ih, α_hh (ones) and the cell's LayerNorm (γ ones, β zeros) are the children layer_norm_ih,
/// layer_norm_hh and layer_norm_cell.</para>
/// <para>Because no bias enters before the normalization, LN(W_ih x_t) is invariant to the scale of x_t: the
/// layer-normalized cell cannot tell x_t from 2·x_t (up to ε), and with one input feature it sees only the sign. Add a
/// constant input feature when magnitudes matter (the lstm-layernorm experiment shows the effect on the adding
/// problem).</para>
/// </remarks>
public sealed class Lstm : Module
{
    private readonly LayerNorm? _inputNorm, _hiddenNorm, _cellNorm;

    /// <summary>Creates the layer. <paramref name="bias"/> false drops b_ih and b_hh; <paramref name="batchFirst"/>
    /// chooses (N, T, in) over (T, N, in); <paramref name="layerNorm"/> makes it a layer-normalized LSTM.</summary>
    public Lstm(int inputSize, int hiddenSize, bool bias = true, bool batchFirst = true, bool layerNorm = false, RandomGenerator? generator = null)
    {
        if (inputSize <= 0 || hiddenSize <= 0)
            throw new ArgumentOutOfRangeException(nameof(inputSize), $"Lstm: inputSize and hiddenSize must be positive, got {inputSize} and {hiddenSize}.");
        InputSize = inputSize;
        HiddenSize = hiddenSize;
        BatchFirst = batchFirst;
        IsLayerNormalized = layerNorm;
        double bound = 1.0 / Math.Sqrt(hiddenSize);
        Tensor Uniform(params int[] shape)
        {
            Tensor t = Tensor.Allocate(DType.Float32, shape, clear: false, scoped: false);
            Init.Uniform(t, -bound, bound, generator);
            return t;
        }
        RegisterParameter("weight_ih_l0", Uniform(4 * hiddenSize, inputSize));
        RegisterParameter("weight_hh_l0", Uniform(4 * hiddenSize, hiddenSize));
        if (bias)
        {
            RegisterParameter("bias_ih_l0", Uniform(4 * hiddenSize));
            RegisterParameter("bias_hh_l0", Uniform(4 * hiddenSize));
        }
        else
        {
            RegisterAbsentParameter("bias_ih_l0");
            RegisterAbsentParameter("bias_hh_l0");
        }
        if (layerNorm)
        {
            _inputNorm = RegisterModule("layer_norm_ih", new LayerNorm(4 * hiddenSize, bias: false));
            _hiddenNorm = RegisterModule("layer_norm_hh", new LayerNorm(4 * hiddenSize, bias: false));
            _cellNorm = RegisterModule("layer_norm_cell", new LayerNorm(hiddenSize));
        }
    }

    /// <summary>Features of each input step.</summary>
    public int InputSize { get; }

    /// <summary>H, the size of the hidden and cell states.</summary>
    public int HiddenSize { get; }

    /// <summary>Whether inputs and outputs are (N, T, ·) rather than (T, N, ·).</summary>
    public bool BatchFirst { get; }

    /// <summary>Whether the cell is layer-normalized (Ba, Kiros &amp; Hinton 2016).</summary>
    public bool IsLayerNormalized { get; }

    /// <summary>W_ih, shape (4H, in), rows in gate order i, f, g, o.</summary>
    public Tensor WeightIh => GetParameter("weight_ih_l0")!;

    /// <summary>W_hh, shape (4H, H), rows in gate order i, f, g, o.</summary>
    public Tensor WeightHh => GetParameter("weight_hh_l0")!;

    /// <summary>b_ih, shape (4H), or null.</summary>
    public Tensor? BiasIh => GetParameter("bias_ih_l0");

    /// <summary>b_hh, shape (4H), or null.</summary>
    public Tensor? BiasHh => GetParameter("bias_hh_l0");

    /// <summary>The output sequence h_1 … h_T, (N, T, H) (or (T, N, H) when not batch-first), from zero initial
    /// states.</summary>
    public override Tensor Forward(Tensor input) => Forward(input, null, null).Output;

    /// <summary>Runs the sequence from the initial states <paramref name="h0"/> and <paramref name="c0"/> (each
    /// (1, N, H) as in PyTorch; null means zeros). Returns the output sequence and the final states h_T and c_T, each
    /// (1, N, H); gradients flow through all three.</summary>
    public (Tensor Output, Tensor H, Tensor C) Forward(Tensor input, Tensor? h0, Tensor? c0)
    {
        CheckRank(input, 3);
        int timeAxis = BatchFirst ? 1 : 0;
        int batch = input.Dims[1 - timeAxis], steps = input.Dims[timeAxis];
        if (input.Dims[2] != InputSize || steps == 0)
            throw new ArgumentException($"{Describe()}: expected an input of shape {(BatchFirst ? $"(N, T, {InputSize})" : $"(T, N, {InputSize})")} with T ≥ 1, got {ShapeUtil.Format(input.Dims)}.");
        int hidden = HiddenSize;
        Tensor h = InitialState(h0, "h0", batch, input.DType);
        Tensor c = InitialState(c0, "c0", batch, input.DType);

        var outputs = new Tensor[steps];
        for (int t = 0; t < steps; t++)
        {
            Tensor x = input.Narrow(timeAxis, t, 1).Reshape(batch, InputSize);
            Tensor gates = _inputNorm is null
                ? Functional.Linear(x, WeightIh, BiasIh) + Functional.Linear(h, WeightHh, BiasHh)
                : Functional.LayerNorm(Functional.Linear(x, WeightIh), _inputNorm.NormalizedShape, _inputNorm.Weight, BiasIh, _inputNorm.Eps)
                  + Functional.LayerNorm(Functional.Linear(h, WeightHh), _hiddenNorm!.NormalizedShape, _hiddenNorm.Weight, BiasHh, _hiddenNorm.Eps);
            c = Functional.LstmCellState(gates, c);
            Tensor outputGate = Functional.Sigmoid(gates.Narrow(1, 3 * hidden, hidden));
            h = outputGate * Functional.Tanh(_cellNorm is null ? c : _cellNorm.Forward(c));
            outputs[t] = h.Unsqueeze(timeAxis);
        }
        return (Tensor.Concat(outputs, timeAxis), h.Unsqueeze(0), c.Unsqueeze(0));
    }

    private Tensor InitialState(Tensor? state, string name, int batch, DType dtype)
    {
        if (state is null) return Tensor.Zeros(new[] { batch, HiddenSize }, dtype);
        if (state.Rank != 3 || state.Dims[0] != 1 || state.Dims[1] != batch || state.Dims[2] != HiddenSize)
            throw new ArgumentException($"{Describe()}: expected {name} of shape (1, {batch}, {HiddenSize}), got {ShapeUtil.Format(state.Dims)}.");
        return state.Reshape(batch, HiddenSize);
    }

    /// <inheritdoc/>
    protected override string ExtraRepresentation =>
        $"{InputSize}, {HiddenSize}{(BiasIh is null ? ", bias=False" : "")}{(BatchFirst ? ", batch_first=True" : "")}{(IsLayerNormalized ? ", layer_norm=True" : "")}";
}
