using Google.Protobuf;
using StableDiffusion.Core.Tests.Onnx.Support;
using StableDiffusion.Core.Tests.Weights;
using StableDiffusion.Models;
using StableDiffusion.Onnx;
using StableDiffusion.Onnx.Builders;
using StableDiffusion.Testing;
using StableDiffusion.Weights;
using Xunit;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace StableDiffusion.Core.Tests.Onnx;

/// <summary>Graphs built over weights in safetensors files, run by ONNX Runtime against the same math computed here.</summary>
[Trait("Area", "WeightsLoading")]
public sealed class GraphBuilderTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("sd-graph-builder-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Theory]
    [InlineData("F32")]
    [InlineData("F16")]
    public void Linear_OverAThreeDimensionalInput_ComputesXTimesWeightTransposedPlusBias(string dtype)
    {
        const int inFeatures = 5, outFeatures = 3;
        float[] weight = Rounded(GraphRunner.Random(outFeatures * inFeatures, seed: 1), dtype);
        float[] bias = Rounded(GraphRunner.Random(outFeatures, seed: 2), dtype);
        using SafetensorsFile file = Weights(dtype, ("proj.weight", [outFeatures, inFeatures], weight), ("proj.bias", [outFeatures], bias));
        (GraphBuilder graph, SafetensorsParameters parameters) = Graph(file);
        Value x = graph.Input("x", TensorElementType.Float, "batch", "tokens", inFeatures);
        graph.Output(graph.Linear("proj", x), "y", "batch", "tokens", outFeatures);
        float[] input = GraphRunner.Random(2 * 4 * inFeatures, seed: 3);

        (float[] actual, long[] shape) = GraphRunner.Run(graph.ToBytes(), parameters.Folder, ("x", input, [2, 4, inFeatures]));

        float[] expected = new float[2 * 4 * outFeatures];
        for (int row = 0; row < 8; row++)
        {
            for (int o = 0; o < outFeatures; o++)
            {
                double sum = bias[o];
                for (int i = 0; i < inFeatures; i++)
                {
                    sum += input[(row * inFeatures) + i] * weight[(o * inFeatures) + i];
                }

                expected[(row * outFeatures) + o] = (float)sum;
            }
        }

        Assert.Equal([2L, 4, outFeatures], shape);
        ArrayAssert.Close(expected, actual, 1e-5, "linear");
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    [InlineData(1, 0)]
    public void Conv2d_MatchesADirectConvolution(int stride, int padding)
    {
        const int batch = 2, inChannels = 3, outChannels = 4, size = 7, kernel = 3;
        float[] weight = GraphRunner.Random(outChannels * inChannels * kernel * kernel, seed: 4);
        float[] bias = GraphRunner.Random(outChannels, seed: 5);
        using SafetensorsFile file = Weights("F32", ("conv.weight", [outChannels, inChannels, kernel, kernel], weight), ("conv.bias", [outChannels], bias));
        (GraphBuilder graph, SafetensorsParameters parameters) = Graph(file);
        Value x = graph.Input("x", TensorElementType.Float, "batch", inChannels, "height", "width");
        graph.Output(graph.Conv2d("conv", x, stride, padding), "y", "batch", outChannels, "out_height", "out_width");
        float[] input = GraphRunner.Random(batch * inChannels * size * size, seed: 6);

        (float[] actual, long[] shape) = GraphRunner.Run(graph.ToBytes(), parameters.Folder, ("x", input, [batch, inChannels, size, size]));

        int outSize = ((size + (2 * padding) - kernel) / stride) + 1;
        float[] expected = new float[batch * outChannels * outSize * outSize];
        for (int n = 0; n < batch; n++)
        {
            for (int o = 0; o < outChannels; o++)
            {
                for (int y = 0; y < outSize; y++)
                {
                    for (int x0 = 0; x0 < outSize; x0++)
                    {
                        double sum = bias[o];
                        for (int c = 0; c < inChannels; c++)
                        {
                            for (int ky = 0; ky < kernel; ky++)
                            {
                                for (int kx = 0; kx < kernel; kx++)
                                {
                                    int iy = (y * stride) + ky - padding, ix = (x0 * stride) + kx - padding;
                                    if (iy is >= 0 and < size && ix is >= 0 and < size)
                                    {
                                        sum += input[(((n * inChannels) + c) * size * size) + (iy * size) + ix] * weight[(((o * inChannels) + c) * kernel * kernel) + (ky * kernel) + kx];
                                    }
                                }
                            }
                        }

                        expected[(((n * outChannels) + o) * outSize * outSize) + (y * outSize) + x0] = (float)sum;
                    }
                }
            }
        }

        Assert.Equal([batch, outChannels, outSize, outSize], shape);
        ArrayAssert.Close(expected, actual, 1e-5, "conv");
    }

    [Fact]
    public void GroupNorm_NormalizesEachGroupThenScalesEachChannel()
    {
        const int batch = 2, channels = 6, groups = 3, pixels = 5 * 4;
        float[] scale = GraphRunner.Random(channels, seed: 7);
        float[] shift = GraphRunner.Random(channels, seed: 8);
        using SafetensorsFile file = Weights("F32", ("norm.weight", [channels], scale), ("norm.bias", [channels], shift));
        (GraphBuilder graph, SafetensorsParameters parameters) = Graph(file);
        Value x = graph.Input("x", TensorElementType.Float, "batch", channels, "height", "width");
        graph.Output(graph.GroupNorm("norm", x, groups, channels, epsilon: 1e-6f), "y", "batch", channels, "height", "width");
        float[] input = [.. GraphRunner.Random(batch * channels * pixels, seed: 9).Select((v, i) => (v * 3) + (i % 7))];

        (float[] actual, _) = GraphRunner.Run(graph.ToBytes(), parameters.Folder, ("x", input, [batch, channels, 5, 4]));

        float[] expected = new float[input.Length];
        int groupSize = channels / groups * pixels;
        for (int g = 0; g < batch * groups; g++)
        {
            ReadOnlySpan<float> values = input.AsSpan(g * groupSize, groupSize);
            double mean = 0, variance = 0;
            foreach (float v in values)
            {
                mean += v;
            }

            mean /= groupSize;
            foreach (float v in values)
            {
                variance += (v - mean) * (v - mean);
            }

            variance /= groupSize;
            for (int i = 0; i < groupSize; i++)
            {
                int channel = ((g % groups) * (channels / groups)) + (i / pixels);
                expected[(g * groupSize) + i] = (float)(((values[i] - mean) / Math.Sqrt(variance + 1e-6) * scale[channel]) + shift[channel]);
            }
        }

        ArrayAssert.Close(expected, actual, 1e-5, "group norm");
    }

    [Fact]
    public void ScaledDotProduct_WithTwoHeads_MatchesSoftmaxAttention()
    {
        const int batch = 2, queries = 3, keys = 4, heads = 2, headDim = 3, width = heads * headDim;
        var graph = new GraphBuilder();
        Value q = graph.Input("q", TensorElementType.Float, "batch", "queries", width);
        Value k = graph.Input("k", TensorElementType.Float, "batch", "keys", width);
        Value v = graph.Input("v", TensorElementType.Float, "batch", "keys", width);
        graph.Output(Attention.ScaledDotProduct(q, k, v, heads, headDim), "y", "batch", "queries", width);
        float[] query = GraphRunner.Random(batch * queries * width, seed: 10), key = GraphRunner.Random(batch * keys * width, seed: 11), value = GraphRunner.Random(batch * keys * width, seed: 12);

        using var session = GraphRunner.Session(graph.ToBytes());
        (float[] actual, _) = GraphRunner.Run(session, ("q", query, [batch, queries, width]), ("k", key, [batch, keys, width]), ("v", value, [batch, keys, width]));

        float[] expected = new float[batch * queries * width];
        for (int n = 0; n < batch; n++)
        {
            for (int h = 0; h < heads; h++)
            {
                for (int i = 0; i < queries; i++)
                {
                    double[] scores = new double[keys];
                    for (int j = 0; j < keys; j++)
                    {
                        for (int d = 0; d < headDim; d++)
                        {
                            scores[j] += query[(((n * queries) + i) * width) + (h * headDim) + d] * key[(((n * keys) + j) * width) + (h * headDim) + d];
                        }

                        scores[j] /= Math.Sqrt(headDim);
                    }

                    double max = scores.Max();
                    double[] weights = [.. scores.Select(s => Math.Exp(s - max))];
                    double total = weights.Sum();
                    for (int d = 0; d < headDim; d++)
                    {
                        double sum = 0;
                        for (int j = 0; j < keys; j++)
                        {
                            sum += weights[j] / total * value[(((n * keys) + j) * width) + (h * headDim) + d];
                        }

                        expected[(((n * queries) + i) * width) + (h * headDim) + d] = (float)sum;
                    }
                }
            }
        }

        ArrayAssert.Close(expected, actual, 1e-6, "attention");
    }

    [Fact]
    public void Scopes_NameNodesAfterTheModulePathAndFindWeightsByIt()
    {
        using SafetensorsFile file = Weights("F32", ("down_blocks.0.resnets.1.conv1.weight", [2, 2, 1, 1], [1, 0, 0, 1]), ("down_blocks.0.resnets.1.conv1.bias", [2], [0, 0]));
        (GraphBuilder graph, _) = Graph(file);
        Value x = graph.Input("x", TensorElementType.Float, 1, 2, 1, 1);
        using (graph.Scope("down_blocks.0"))
        using (graph.Scope("resnets.1"))
        {
            Assert.Equal("down_blocks.0.resnets.1", graph.ScopePath);
            x = graph.Conv2d("conv1", x).Silu();
            x = x.Silu();
        }

        Assert.Equal(string.Empty, graph.ScopePath);
        graph.Output(x, "y", 1, 2, 1, 1);
        ModelProto model = graph.ToModel();

        Assert.Equal(
            ["/down_blocks.0/resnets.1/conv1/Conv", "/down_blocks.0/resnets.1/Sigmoid", "/down_blocks.0/resnets.1/Mul", "/down_blocks.0/resnets.1/Sigmoid_1", "/down_blocks.0/resnets.1/Mul_1", "/Identity"],
            model.Graph.Node.Select(n => n.Name));
        Assert.Equal("/down_blocks.0/resnets.1/conv1/Conv_output_0", model.Graph.Node[0].Output[0]);
        Assert.Equal(["down_blocks.0.resnets.1.conv1.weight", "down_blocks.0.resnets.1.conv1.bias"], model.Graph.Node[0].Input.Skip(1));
    }

    [Fact]
    public void ToModel_DeclaresOpsetTypesAndNamedDimensions_AndKeepsWeightsInTheirFile()
    {
        using SafetensorsFile file = Weights("F32", ("proj.weight", [3, 2], [1, 2, 3, 4, 5, 6]), ("proj.bias", [3], [0, 0, 0]));
        (GraphBuilder graph, _) = Graph(file);
        Value x = graph.Input("x", TensorElementType.Float, "batch", 2);
        Value y = graph.Linear("proj", x);
        graph.Output(graph.Node("FusedMatMul", [y, y], domain: GraphBuilder.MicrosoftDomain, attributes: ("transB", 1L)), "gram", "batch", "batch");

        ModelProto model = ModelProto.Parser.ParseFrom(graph.ToBytes());

        Assert.Equal([("", 17L), ("com.microsoft", 1L)], model.OpsetImport.Select(o => (o.Domain, o.Version)));
        ValueInfoProto input = Assert.Single(model.Graph.Input);
        Assert.Equal((int)TensorElementType.Float, input.Type.TensorType.ElemType);
        Assert.Equal(["batch", "2"], input.Type.TensorType.Shape.Dim.Select(d => d.DimParam.Length > 0 ? d.DimParam : d.DimValue.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        TensorProto weight = model.Graph.Initializer.Single(t => t.Name == "proj.weight");
        Assert.Equal(TensorProto.Types.DataLocation.External, weight.DataLocation);
        Assert.Empty(weight.RawData);
        SafetensorsTensor stored = file.Find("proj.weight")!;
        Assert.Equal(
            [("location", Path.GetFileName(file.Path)), ("offset", $"{stored.Offset}"), ("length", "24")],
            weight.ExternalData.Select(e => (e.Key, e.Value)));
    }

    [Fact]
    public void Parameter_MissingFromTheFile_ThrowsNamingTheTensorAndTheFile()
    {
        using SafetensorsFile file = Weights("F32", ("proj.weight", [3, 2], [1, 2, 3, 4, 5, 6]));
        (GraphBuilder graph, _) = Graph(file);
        Value x = graph.Input("x", TensorElementType.Float, "batch", 2);

        var ex = Assert.Throws<ModelLoadException>(() => graph.Linear("proj", x));

        Assert.Equal($"The weights ('{file.Path}') have no tensor 'proj.bias', which the model's configuration needs. The files may belong to another model, or the configuration to other weights.", ex.Message);
    }

    [Fact]
    public void Parameter_WithAnotherElementCount_ThrowsNamingBothShapes()
    {
        using SafetensorsFile file = Weights("F32", ("norm.weight", [4], [1, 2, 3, 4]), ("norm.bias", [4], [0, 0, 0, 0]));
        (GraphBuilder graph, _) = Graph(file);
        Value x = graph.Input("x", TensorElementType.Float, 1, 6, 2, 2);

        var ex = Assert.Throws<ModelLoadException>(() => graph.GroupNorm("norm", x, groups: 2, channels: 6, epsilon: 1e-5f));

        Assert.Equal($"Tensor 'norm.weight' of '{file.Path}' is F32[4]; the model needs [6, 1, 1] (6 elements). The weights do not belong to this model's configuration.", ex.Message);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void Residual_ThatItsNormReadsFirst_IsFusedIntoTheNorm_WhichStillGivesTheSumToLaterReaders(bool cudaFused, bool readBeforeTheNorm)
    {
        // SkipLayerNormalization has a CPU kernel, so the CUDA flavor's fusion runs here: the layer norm of x·Wᵀ + b + skip,
        // next to twice the sum read after the norm (or before it, which leaves the additions as they are).
        const int batch = 2, tokens = 5, inFeatures = 3, width = 4;
        float[] weight = GraphRunner.Random(width * inFeatures, seed: 21), bias = GraphRunner.Random(width, seed: 22);
        float[] scale = GraphRunner.Random(width, seed: 23), shift = GraphRunner.Random(width, seed: 24);
        using SafetensorsFile file = Weights("F32", ("proj.weight", [width, inFeatures], weight), ("proj.bias", [width], bias), ("norm.weight", [width], scale), ("norm.bias", [width], shift));
        var parameters = new SafetensorsParameters([file], TensorElementType.Float);
        var graph = new GraphBuilder(parameters: parameters, flavor: cudaFused ? GraphFlavor.CudaFused : GraphFlavor.Plain);
        Value x = graph.Input("x", TensorElementType.Float, batch, tokens, inFeatures);
        Value skip = graph.Input("skip", TensorElementType.Float, batch, tokens, width);
        Value sum = graph.Linear("proj", x, residual: skip);
        Value doubled = readBeforeTheNorm ? sum * 2f : null!;
        Value normalized = graph.LayerNorm("norm", sum, epsilon: 1e-5f);
        graph.Output(Value.Concat(-1, normalized, readBeforeTheNorm ? doubled : sum * 2f), "y", batch, tokens, 2 * width);
        float[] input = GraphRunner.Random(batch * tokens * inFeatures, seed: 25), residual = GraphRunner.Random(batch * tokens * width, seed: 26);

        ModelProto model = graph.ToModel();
        (float[] actual, _) = GraphRunner.Run(model.ToByteArray(), parameters.Folder, ("x", input, [batch, tokens, inFeatures]), ("skip", residual, [batch, tokens, width]));

        float[] expected = new float[batch * tokens * 2 * width];
        for (int row = 0; row < batch * tokens; row++)
        {
            double[] s = new double[width];
            for (int o = 0; o < width; o++)
            {
                s[o] = bias[o] + residual[(row * width) + o];
                for (int i = 0; i < inFeatures; i++)
                {
                    s[o] += input[(row * inFeatures) + i] * weight[(o * inFeatures) + i];
                }
            }

            double mean = s.Average(), variance = s.Select(v => (v - mean) * (v - mean)).Average();
            for (int o = 0; o < width; o++)
            {
                expected[(row * 2 * width) + o] = (float)(((s[o] - mean) / Math.Sqrt(variance + 1e-5) * scale[o]) + shift[o]);
                expected[(row * 2 * width) + width + o] = (float)(2 * s[o]);
            }
        }

        ArrayAssert.Close(expected, actual, 1e-5, "layer norm of the residual sum, and the sum");
        string[] operators = [.. model.Graph.Node.Select(n => n.OpType)];
        if (cudaFused && !readBeforeTheNorm)
        {
            NodeProto fused = Assert.Single(model.Graph.Node, n => n.OpType == "SkipLayerNormalization");
            Assert.Equal(["/proj/FusedMatMul_output_0", "skip", "norm.weight", "norm.bias", "proj.bias"], fused.Input);
            Assert.Equal(4, fused.Output.Count); // the result, two statistics left out, the sum
            Assert.Equal(["", ""], fused.Output.Skip(1).Take(2));
            Assert.DoesNotContain("LayerNormalization", operators);
            Assert.DoesNotContain("Add", operators);
        }
        else
        {
            Assert.Contains("LayerNormalization", operators);
            Assert.Equal(2, operators.Count(op => op == "Add"));
            Assert.DoesNotContain("SkipLayerNormalization", operators);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Residual_TakenByAFusedNorm_TakesTheBiasOfTheNodeThatComputedItsInput(bool cudaFused)
    {
        // A node that offers its bias (a convolution in the CUDA flavor; a Gemm here, which the CPU runs) loses it to the
        // fused norm that takes the residual sum of its output: the same numbers, one pass over the activation less.
        const int rows = 6, inFeatures = 3, width = 4;
        float[] weight = GraphRunner.Random(width * inFeatures, seed: 31), bias = GraphRunner.Random(width, seed: 32);
        float[] scale = GraphRunner.Random(width, seed: 33), shift = GraphRunner.Random(width, seed: 34);
        using SafetensorsFile file = Weights("F32", ("norm.weight", [width], scale), ("norm.bias", [width], shift));
        var parameters = new SafetensorsParameters([file], TensorElementType.Float);
        var graph = new GraphBuilder(parameters: parameters, flavor: cudaFused ? GraphFlavor.CudaFused : GraphFlavor.Plain);
        Value x = graph.Input("x", TensorElementType.Float, rows, inFeatures);
        Value skip = graph.Input("skip", TensorElementType.Float, rows, width);
        Value projected = graph.NodeWithBias("Gemm", [x, graph.Initializer("w", [width, inFeatures], weight), graph.Initializer("b", [width], bias)], domain: "", ("transB", 1L));
        Value sum = graph.Residual(projected, skip, width);
        graph.Output(Value.Concat(-1, graph.LayerNorm("norm", sum, epsilon: 1e-5f), sum * 2f), "y", rows, 2 * width);
        float[] input = GraphRunner.Random(rows * inFeatures, seed: 35), residual = GraphRunner.Random(rows * width, seed: 36);

        ModelProto model = graph.ToModel();
        (float[] actual, _) = GraphRunner.Run(model.ToByteArray(), parameters.Folder, ("x", input, [rows, inFeatures]), ("skip", residual, [rows, width]));

        float[] expected = new float[rows * 2 * width];
        for (int row = 0; row < rows; row++)
        {
            double[] s = [.. Enumerable.Range(0, width).Select(o => bias[o] + residual[(row * width) + o] + Enumerable.Range(0, inFeatures).Sum(i => (double)input[(row * inFeatures) + i] * weight[(o * inFeatures) + i]))];
            double mean = s.Average(), variance = s.Select(v => (v - mean) * (v - mean)).Average();
            for (int o = 0; o < width; o++)
            {
                expected[(row * 2 * width) + o] = (float)(((s[o] - mean) / Math.Sqrt(variance + 1e-5) * scale[o]) + shift[o]);
                expected[(row * 2 * width) + width + o] = (float)(2 * s[o]);
            }
        }

        ArrayAssert.Close(expected, actual, 1e-5, "layer norm of the residual sum, and the sum");
        NodeProto gemm = Assert.Single(model.Graph.Node, n => n.OpType == "Gemm");
        Assert.Equal(cudaFused ? ["x", "w"] : ["x", "w", "b"], gemm.Input);
        if (cudaFused)
        {
            Assert.Equal("b", Assert.Single(model.Graph.Node, n => n.OpType == "SkipLayerNormalization").Input[4]);
            var ex = Assert.Throws<InvalidOperationException>(() => projected * 2f);
            Assert.Contains("lost its bias", ex.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Residual_ThatNothingReadsAfterItsFusedNorm_IsNotOutput()
    {
        // conv_norm_out after the UNet's last residual: the kernel need not write a sum nobody reads.
        using SafetensorsFile file = Weights("F32", ("norm.weight", [4], GraphRunner.Random(4, seed: 27)), ("norm.bias", [4], GraphRunner.Random(4, seed: 28)));
        var graph = new GraphBuilder(parameters: new SafetensorsParameters([file], TensorElementType.Float), flavor: GraphFlavor.CudaFused);
        Value x = graph.Input("x", TensorElementType.Float, 2, 5, 4);
        graph.Output(graph.LayerNorm("norm", graph.Residual(x, graph.Input("skip", TensorElementType.Float, 2, 5, 4), channels: 4), epsilon: 1e-5f), "y", 2, 5, 4);

        NodeProto fused = Assert.Single(graph.ToModel().Graph.Node, n => n.OpType == "SkipLayerNormalization");

        Assert.Equal(["x", "skip", "norm.weight", "norm.bias", ""], fused.Input);
        Assert.Single(fused.Output);
    }

    [Fact]
    public void Constants_OfTheSameTypeAndValue_AreShared()
    {
        var graph = new GraphBuilder();
        Value x = graph.Input("x", TensorElementType.Float16, 2);
        graph.Output((x * 2f) + (x * 2f) + x.Reshape(2) + x.Reshape(-1), "y", 2);

        ModelProto model = graph.ToModel();

        Assert.Equal(3, model.Graph.Initializer.Count); // 2 (as float16), [2] and [-1]
        Assert.Equal((int)TensorElementType.Float16, model.Graph.Initializer[0].DataType);
    }

    private SafetensorsFile Weights(string dtype, params (string Name, long[] Shape, float[] Values)[] tensors)
    {
        string path = Path.Combine(_folder, $"weights-{Guid.NewGuid():N}.safetensors");
        SafetensorsWriter.Write(path, tensors.Select(t => dtype == "F16" ? SafetensorsWriter.Tensor.Float16(t.Name, t.Shape, t.Values) : SafetensorsWriter.Tensor.Float32(t.Name, t.Shape, t.Values)));
        return SafetensorsFile.Open(path);
    }

    private static (GraphBuilder Graph, SafetensorsParameters Parameters) Graph(SafetensorsFile file)
    {
        var parameters = new SafetensorsParameters([file], TensorElementType.Float);
        return (new GraphBuilder(parameters: parameters), parameters);
    }

    private static float[] Rounded(float[] values, string dtype) => dtype == "F16" ? [.. values.Select(v => (float)(Half)v)] : values;
}
