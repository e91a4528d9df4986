using NormSharp.Onnx.Protobuf;

namespace NormSharp.Onnx.Tests;

/// <summary>
/// The residual and concatenating blocks of the CNNs people deploy, written as ONNX graphs the way exporters write
/// them (Conv → BatchNormalization → Relu units with random weights and running statistics): ResNet's basic and
/// bottleneck blocks (He et al. 2016), a DenseNet block (Huang et al. 2017), an Inception block (Szegedy et al. 2015)
/// and ShuffleNet's channel shuffle with a depthwise convolution (Zhang et al. 2018).
/// </summary>
public sealed class CnnBlocks
{
    private readonly GraphBuilder _g = new();
    private int _count;

    private CnnBlocks(int channels, int size) => _g.Input("x", null, channels, size, size);

    /// <summary>The block names <see cref="Build"/> knows.</summary>
    public static readonly string[] Names = { "resnet-basic", "resnet-bottleneck", "densenet", "inception", "channel-shuffle", "resnet-small" };

    /// <summary>The block's model, its input shape per sample, and the number of BatchNorm layers that follow a Conv.</summary>
    public static (ModelProto Model, int[] Sample, int Foldable) Build(string name, int opset = 13) => name switch
    {
        "resnet-basic" => new CnnBlocks(8, 8).ResNetBasic(opset),
        "resnet-bottleneck" => new CnnBlocks(16, 8).Bottleneck(opset),
        "densenet" => new CnnBlocks(8, 8).DenseNet(opset),
        "inception" => new CnnBlocks(8, 8).Inception(opset),
        "channel-shuffle" => new CnnBlocks(8, 8).ChannelShuffle(opset),
        "resnet-small" => new CnnBlocks(3, 16).ResNetSmall(opset),
        _ => throw new ArgumentException(name),
    };

    /// <summary>Conv (random weights) → BatchNormalization (random running statistics) [→ Relu]; returns the output.</summary>
    private string ConvBn(string x, int cin, int cout, int kernel, int stride = 1, int pad = -1, int group = 1, bool relu = true)
    {
        string n = $"u{++_count}";
        pad = pad < 0 ? kernel / 2 : pad;
        string w = _g.Random($"{n}.w", 0, Math.Sqrt(2.0 / (cin / group * kernel * kernel)), cout, cin / group, kernel, kernel); // He et al. 2015
        _g.Node("Conv", new[] { x, w }, $"{n}.conv", AttributeProto.OfInts("kernel_shape", kernel, kernel), AttributeProto.OfInts("strides", stride, stride),
            AttributeProto.OfInts("pads", pad, pad, pad, pad), AttributeProto.OfInt("group", group));
        string y = BatchNorm($"{n}.conv", cout, n);
        if (!relu) return y;
        _g.Node("Relu", new[] { y }, $"{n}.relu");
        return $"{n}.relu";
    }

    private string BatchNorm(string x, int channels, string n)
    {
        var random = new RandomGenerator((ulong)_count);
        float[] Values(double low, double high) => Tensor.Uniform(new[] { channels }, low, high, generator: random).ToArray();
        _g.Node("BatchNormalization", new[] { x, _g.Floats($"{n}.gamma", Values(0.5, 1.5), channels), _g.Floats($"{n}.beta", Values(-0.5, 0.5), channels),
            _g.Floats($"{n}.mean", Values(-0.5, 0.5), channels), _g.Floats($"{n}.var", Values(0.5, 2), channels) }, $"{n}.bn", AttributeProto.OfFloat("epsilon", 1e-5f));
        return $"{n}.bn";
    }

    private string Add(string a, string b, bool relu = true)
    {
        string n = $"add{++_count}";
        _g.Node("Add", new[] { a, b }, n);
        if (!relu) return n;
        _g.Node("Relu", new[] { n }, n + ".relu");
        return n + ".relu";
    }

    private string Concat(params string[] parts)
    {
        string n = $"cat{++_count}";
        _g.Node("Concat", parts, n, AttributeProto.OfInt("axis", 1));
        return n;
    }

    private (ModelProto, int[], int) Finish(string y, int[] sample, int foldable, int opset)
    {
        _g.Node("Identity", new[] { y }, "y");
        _g.UnshapedOutput("y");
        return (_g.Model(opset), sample, foldable);
    }

    // x → 3×3 conv-bn-relu → 3×3 conv-bn → + x → relu.
    private (ModelProto, int[], int) ResNetBasic(int opset)
    {
        string h = ConvBn("x", 8, 8, 3);
        h = ConvBn(h, 8, 8, 3, relu: false);
        return Finish(Add(h, "x"), new[] { 8, 8, 8 }, 2, opset);
    }

    // 1×1 reduce → 3×3 stride 2 → 1×1 expand, plus a strided 1×1 projection of the shortcut.
    private (ModelProto, int[], int) Bottleneck(int opset)
    {
        string h = ConvBn("x", 16, 4, 1);
        h = ConvBn(h, 4, 4, 3, stride: 2);
        h = ConvBn(h, 4, 32, 1, relu: false);
        string shortcut = ConvBn("x", 16, 32, 1, stride: 2, relu: false);
        return Finish(Add(h, shortcut), new[] { 16, 8, 8 }, 4, opset);
    }

    // Each layer reads the concatenation of all before it (growth rate 4); BN-ReLU-Conv order, as DenseNet writes it.
    private (ModelProto, int[], int) DenseNet(int opset)
    {
        string features = "x";
        int channels = 8;
        for (int layer = 0; layer < 3; layer++)
        {
            string n = $"dense{layer}";
            string bn = BatchNorm(features, channels, n);
            _g.Node("Relu", new[] { bn }, n + ".relu");
            string w = _g.Random(n + ".w", 0, Math.Sqrt(2.0 / (channels * 9)), 4, channels, 3, 3);
            _g.Node("Conv", new[] { n + ".relu", w }, n + ".conv", AttributeProto.OfInts("kernel_shape", 3, 3), AttributeProto.OfInts("pads", 1, 1, 1, 1));
            features = Concat(features, n + ".conv");
            channels += 4;
        }
        return Finish(features, new[] { 8, 8, 8 }, 0, opset);
    }

    // Four branches concatenated: 1×1; 1×1 → 3×3; 1×1 → 5×5; 3×3 max pooling → 1×1.
    private (ModelProto, int[], int) Inception(int opset)
    {
        string a = ConvBn("x", 8, 4, 1);
        string b = ConvBn(ConvBn("x", 8, 4, 1), 4, 6, 3);
        string c = ConvBn(ConvBn("x", 8, 2, 1), 2, 4, 5);
        _g.Node("MaxPool", new[] { "x" }, "pool", AttributeProto.OfInts("kernel_shape", 3, 3), AttributeProto.OfInts("strides", 1, 1), AttributeProto.OfInts("pads", 1, 1, 1, 1));
        string d = ConvBn("pool", 8, 2, 1);
        return Finish(Concat(a, b, c, d), new[] { 8, 8, 8 }, 6, opset);
    }

    // ShuffleNet unit: 1×1 grouped conv → channel shuffle (reshape to groups, transpose, reshape back) → 3×3 depthwise
    // conv → 1×1 grouped conv, added to the input.
    private (ModelProto, int[], int) ChannelShuffle(int opset)
    {
        string h = ConvBn("x", 8, 8, 1, group: 2);
        _g.Node("Reshape", new[] { h, Shape("split", 0, 2, 4, 8, 8) }, "grouped");
        _g.Node("Transpose", new[] { "grouped" }, "shuffled", AttributeProto.OfInts("perm", 0, 2, 1, 3, 4));
        _g.Node("Reshape", new[] { "shuffled", Shape("merge", 0, 8, 8, 8) }, "shuffle");
        h = ConvBn("shuffle", 8, 8, 3, group: 8, relu: false);
        h = ConvBn(h, 8, 8, 1, group: 2, relu: false);
        return Finish(Add(h, "x"), new[] { 8, 8, 8 }, 3, opset);
    }

    // A small ResNet: stem conv-bn-relu, max pooling, two basic blocks, global average pooling, flatten, Gemm to 10.
    private (ModelProto, int[], int) ResNetSmall(int opset)
    {
        string h = ConvBn("x", 3, 16, 3);
        _g.Node("MaxPool", new[] { h }, "stem.pool", AttributeProto.OfInts("kernel_shape", 2, 2), AttributeProto.OfInts("strides", 2, 2));
        h = "stem.pool";
        for (int block = 0; block < 2; block++)
        {
            string r = ConvBn(h, 16, 16, 3);
            r = ConvBn(r, 16, 16, 3, relu: false);
            h = Add(r, h);
        }
        _g.Node("GlobalAveragePool", new[] { h }, "gap");
        _g.Node("Flatten", new[] { "gap" }, "flat", AttributeProto.OfInt("axis", 1));
        _g.Node("Gemm", new[] { "flat", _g.Random("fc.w", 0, 0.25, 10, 16), _g.Random("fc.b", 0, 0.1, 10) }, "logits", AttributeProto.OfInt("transB", 1));
        return Finish("logits", new[] { 3, 16, 16 }, 5, opset);
    }

    private string Shape(string name, params long[] dims) => _g.Int64s(name, dims);
}
