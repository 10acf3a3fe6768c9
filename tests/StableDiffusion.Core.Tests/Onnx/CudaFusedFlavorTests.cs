using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.Core.Tests.Onnx.Support;
using StableDiffusion.Core.Tests.Weights;
using StableDiffusion.Onnx;
using StableDiffusion.Onnx.Builders;
using StableDiffusion.Testing;
using StableDiffusion.Weights;
using Xunit;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace StableDiffusion.Core.Tests.Onnx;

/// <summary>
/// The CUDA-fused flavor checked where no GPU is: its operators and layout, and ONNX Runtime's own checks of every node
/// against the registered schemas (inputs, attributes, types, shape inference), which a session runs before it looks for
/// kernels, so on the CPU the only error left is the missing CUDA kernel. Numbers on CUDA: Gpu/FusedGraphTests.
/// </summary>
[Trait("Area", "WeightsLoading")]
public sealed class CudaFusedFlavorTests
{
    private static readonly string[] CudaOnlyOperators = ["NhwcConv", "GroupNorm", "SkipGroupNorm", "BiasSplitGelu", "BiasAdd"];

    [Fact]
    public void UNet_IsNhwcThroughoutWithOnnxRuntimesFusedOperators()
    {
        Fixtures.Require();
        (ModelProto model, _) = UNetUnderTest.BuildGraph("tiny-sd/unet", GraphFlavor.CudaFused, TensorElementType.Float16);
        var operators = model.Graph.Node.GroupBy(n => n.OpType).ToDictionary(g => g.Key, g => g.Count());

        Assert.True(operators["NhwcConv"] >= 20, $"{operators["NhwcConv"]} NhwcConv nodes");
        Assert.Equal(8, operators["MultiHeadAttention"]); // attn1 and attn2 of four transformer blocks
        // tiny-sd's UNet: 8 resnets, 4 transformers. Each resnet's norm2 takes the time embedding as a per-channel skip (8);
        // a norm whose input is a residual sum takes that sum: the 4 transformers' norms, the mid block's two resnets'
        // norm1 and conv_norm_out (7). The norm1 of the up blocks' resnets reads a concatenation and of the first down
        // resnets a convolution: plain GroupNorm (6).
        Assert.Equal(15, operators["SkipGroupNorm"]);
        Assert.Equal(6, operators["GroupNorm"]);
        // norm2 and norm3 of each transformer block take the attention's sum with its output bias; norm1 reads proj_in.
        Assert.Equal(8, operators["SkipLayerNormalization"]);
        Assert.Equal(4, operators["LayerNormalization"]);
        // The feed-forward's output bias and residual: BiasAdd's kernel takes Stable Diffusion's widths, not tiny-sd's 32.
        Assert.False(operators.ContainsKey("BiasAdd"));
        // Convolutions whose output goes only into a sum that a norm takes leave their bias to it: conv1 of every resnet
        // (8), conv2 and conv_shortcut of the resnets whose output a norm takes (5 and 2), proj_out of the transformers
        // whose output a norm takes (2). The other 15 add their own.
        Assert.Equal(17, model.Graph.Node.Count(n => n.OpType == "NhwcConv" && n.Input.Count == 2));
        Assert.Equal(32, operators["NhwcConv"]);
        // Sums that nothing reads after their norm are not output: the time embeddings' (norm2 alone reads them) and conv_norm_out's.
        Assert.Equal(9, model.Graph.Node.Count(n => n.OpType == "SkipGroupNorm" && n.Output.Count == 1));
        Assert.All(new[] { "Conv", "InstanceNormalization", "Softmax" }, op => Assert.False(operators.ContainsKey(op), $"a plain {op} is left"));
        // Activations are transposed twice, NCHW to NHWC after the input and back before the output; other Transposes turn weights.
        Assert.Equal(2, model.Graph.Node.Count(n => n.OpType == "Transpose" && !model.Graph.Node.Any(c => c.OpType == "NhwcConv" && c.Input[1] == n.Output[0])));
        Assert.Equal((int)TensorElementType.Float16, model.Graph.Input.Single(i => i.Name == "sample").Type.TensorType.ElemType);
        Assert.Equal((int)TensorElementType.Float, model.Graph.Input.Single(i => i.Name == "timestep").Type.TensorType.ElemType);
        Assert.All(model.Graph.Node.Where(n => n.OpType is "GroupNorm" or "SkipGroupNorm"), n => Assert.Equal(
            [(int)TensorElementType.Float, (int)TensorElementType.Float], n.Input.Skip(1).Take(2).Select(i => ElementTypeOf(model, i))));
    }

    [Fact]
    public void UNet_PassesOnnxRuntimesSchemaChecks_AndLacksOnlyTheCudaKernels()
    {
        Fixtures.Require();
        (ModelProto model, string folder) = UNetUnderTest.BuildGraph("tiny-sd/unet", GraphFlavor.CudaFused, TensorElementType.Float16);

        AssertOnlyKernelsMissing(model, folder);
    }

    [Fact]
    public void VaeDecoder_PassesOnnxRuntimesSchemaChecks_AndLacksOnlyTheCudaKernels()
    {
        Fixtures.Require();
        (ModelProto model, string folder) = VaeGraph((graph, config) =>
        {
            Value latents = graph.Input("latent_sample", TensorElementType.Float16, "batch", config.LatentChannels, "height", "width");
            graph.Output(config.Decode(graph, latents), "sample", "batch", config.OutChannels, "image_height", "image_width");
        });

        Assert.Contains(model.Graph.Node, n => n.OpType == "NhwcConv");
        Assert.Contains(model.Graph.Node, n => n.OpType == "MultiHeadAttention");
        AssertOnlyKernelsMissing(model, folder);
    }

    [Fact]
    public void VaeEncoder_PassesOnnxRuntimesSchemaChecks_AndLacksOnlyTheCudaKernels()
    {
        // Image-to-image and inpainting encode NCHW pixels: the flavor turns them NHWC before its first convolution.
        Fixtures.Require();
        (ModelProto model, string folder) = VaeGraph((graph, config) =>
        {
            Value images = graph.Input("sample", TensorElementType.Float16, "batch", config.InChannels, "height", "width");
            (Value mean, Value std) = config.Encode(graph, images);
            graph.Output(mean, "latent_mean", "batch", config.LatentChannels, "latent_height", "latent_width");
            graph.Output(std, "latent_std", "batch", config.LatentChannels, "latent_height", "latent_width");
        });

        Assert.Contains(model.Graph.Node, n => n.OpType == "NhwcConv");
        Assert.DoesNotContain(model.Graph.Node, n => n.OpType == "NhwcConv" && n.Input[0] == "sample");
        AssertOnlyKernelsMissing(model, folder);
    }

    [Fact]
    public void ResidualWithABias_AtAStableDiffusionWidth_IsOneBiasAdd_WhenNoNormTakesIt()
    {
        // A feed-forward's last linear layer plus its residual, read by something other than a norm (proj_out's reshape).
        const int width = 320;
        string folder = Directory.CreateTempSubdirectory("sd-bias-add-").FullName;
        try
        {
            string path = Path.Combine(folder, "weights.safetensors");
            SafetensorsWriter.Write(path, [
                SafetensorsWriter.Tensor.Float16("net.2.weight", [width, 8], GraphRunner.Random(width * 8, seed: 1)),
                SafetensorsWriter.Tensor.Float16("net.2.bias", [width], GraphRunner.Random(width, seed: 2))]);
            using SafetensorsFile weights = SafetensorsFile.Open(path);
            var parameters = new SafetensorsParameters([weights], TensorElementType.Float16);
            var graph = new GraphBuilder(parameters: parameters, flavor: GraphFlavor.CudaFused);
            Value x = graph.Input("x", TensorElementType.Float16, 2, 16, 8);
            Value skip = graph.Input("skip", TensorElementType.Float16, 2, 16, width);
            graph.Output(graph.Linear("net.2", x, residual: skip).Reshape(2, 4, 4, width), "y", 2, 4, 4, width);
            ModelProto model = graph.ToModel();

            NodeProto biasAdd = Assert.Single(model.Graph.Node, n => n.OpType == "BiasAdd");
            Assert.Equal(["/net.2/FusedMatMul_output_0", "net.2.bias", "skip"], biasAdd.Input);
            Assert.DoesNotContain(model.Graph.Node, n => n.OpType == "Add");
            AssertOnlyKernelsMissing(model, parameters.Folder);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void ImageResidual_AtAStableDiffusionWidth_TakesItsConvolutionsBiases_IntoOneBiasAdd_WhenNoNormTakesIt()
    {
        // A resnet's conv2 plus its conv_shortcut, read by a downsampler's convolution, as before an SD UNet's downsampler.
        using var weights = new ResidualWeights();
        var graph = new GraphBuilder(parameters: weights.Parameters, flavor: GraphFlavor.CudaFused);
        Value x = graph.Input("x", TensorElementType.Float16, 2, 8, 8, 8);
        Value sum = graph.ImageResidual(graph.Conv2d("conv2", x), graph.Conv2d("conv_shortcut", x), ResidualWidth);
        graph.Output(graph.Conv2d("down", sum), "y", 2, 8, 8, ResidualWidth);
        ModelProto model = graph.ToModel();

        NodeProto biasAdd = Assert.Single(model.Graph.Node, n => n.OpType == "BiasAdd");
        // Both convolutions run without their biases; their float32 sum is BiasAdd's bias, a constant once ONNX Runtime folds it.
        Assert.All(new[] { "conv2", "conv_shortcut" }, conv => Assert.Equal(2, ConvolutionOf(model, conv).Input.Count));
        Assert.Equal(3, ConvolutionOf(model, "down").Input.Count);
        Assert.Equal(["conv2.bias", "conv_shortcut.bias"], BiasTerms(model, biasAdd.Input[1]));
        // The one Add left sums the two biases; the activations' sum is BiasAdd's.
        Assert.Equal(["conv2.bias", "conv_shortcut.bias"], BiasTerms(model, Assert.Single(model.Graph.Node, n => n.OpType == "Add").Output[0]));
        AssertOnlyKernelsMissing(model, weights.Parameters.Folder);
    }

    [Fact]
    public void ImageResidual_TakenByTheNextNorm_LeavesNoBiasAdd_AndTheNormAddsTheBiases()
    {
        // The same sum read first by a group norm (SkipGroupNorm computes it and adds the biases), then by the output.
        using var weights = new ResidualWeights();
        var graph = new GraphBuilder(parameters: weights.Parameters, flavor: GraphFlavor.CudaFused);
        Value x = graph.Input("x", TensorElementType.Float16, 2, 8, 8, 8);
        Value shortcut = graph.Conv2d("conv_shortcut", x);
        Value sum = graph.ImageResidual(graph.Conv2d("conv2", x), shortcut, ResidualWidth);
        graph.Output(graph.GroupNorm("norm", sum, 32, ResidualWidth, 1e-5f, silu: true), "y", 2, 8, 8, ResidualWidth);
        graph.Output(sum, "sum", 2, 8, 8, ResidualWidth);
        ModelProto model = graph.ToModel();

        // The shortcut's only reader without its bias is the norm: taking the BiasAdd (and the shape it read) back gave
        // that one read back, no more.
        Assert.Throws<InvalidOperationException>(() => graph.Output(shortcut, "shortcut"));

        Assert.DoesNotContain(model.Graph.Node, n => n.OpType is "BiasAdd" or "Reshape" or "Shape");
        NodeProto norm = Assert.Single(model.Graph.Node, n => n.OpType == "SkipGroupNorm");
        Assert.Equal(["conv2.bias", "conv_shortcut.bias"], BiasTerms(model, norm.Input[4]));
        Assert.Equal(sum.Name, norm.Output[1]);
        Assert.All(new[] { "conv2", "conv_shortcut" }, conv => Assert.Equal(2, ConvolutionOf(model, conv).Input.Count));
        AssertOnlyKernelsMissing(model, weights.Parameters.Folder);
    }

    [Fact]
    public void ImageResidual_AtAWidthBiasAddDoesNotTake_KeepsTheBiasesOnTheConvolutions()
    {
        // The VAE's widths (128, 256, 512): ONNX Runtime's BiasAdd kernel takes 320, 640 and 1280 only.
        using var weights = new ResidualWeights(width: 256);
        var graph = new GraphBuilder(parameters: weights.Parameters, flavor: GraphFlavor.CudaFused);
        Value x = graph.Input("x", TensorElementType.Float16, 2, 8, 8, 8);
        Value sum = graph.ImageResidual(graph.Conv2d("conv2", x), graph.Conv2d("conv_shortcut", x), 256);
        graph.Output(graph.Conv2d("down", sum), "y", 2, 8, 8, ResidualWidth);
        ModelProto model = graph.ToModel();

        Assert.DoesNotContain(model.Graph.Node, n => n.OpType == "BiasAdd");
        Assert.All(new[] { "conv2", "conv_shortcut", "down" }, conv => Assert.Equal(3, ConvolutionOf(model, conv).Input.Count));
    }

    [Fact]
    public void SchemaCheck_RejectsANodeThatBreaksItsSchema()
    {
        // The control for the checks above: a GroupNorm without its required activation, and a MultiHeadAttention fed a
        // float32 query with a float16 key, fail in ONNX Runtime's graph resolution, before any kernel lookup.
        var graph = new GraphBuilder();
        Value x = graph.Input("x", TensorElementType.Float16, 1, 4, 4, 32);
        Value scale = graph.Constant(new float[32], [32]);
        graph.Output(graph.Node("GroupNorm", [x, scale, scale], domain: GraphBuilder.MicrosoftDomain, attributes: ("groups", 8L)), "y");
        var tokens = new GraphBuilder();
        Value q = tokens.Input("q", TensorElementType.Float, 1, 16, 32);
        Value k = tokens.Input("k", TensorElementType.Float16, 1, 16, 32);
        tokens.Output(tokens.Node("MultiHeadAttention", [q, k, k], domain: GraphBuilder.MicrosoftDomain, attributes: ("num_heads", 2L)), "y");

        foreach (GraphBuilder broken in new[] { graph, tokens })
        {
            var ex = Assert.Throws<OnnxRuntimeException>(() => GraphRunner.Session(broken.ToBytes()).Dispose());
            Assert.DoesNotContain("Failed to find kernel", ex.Message, StringComparison.Ordinal);
        }
    }

    private const int ResidualWidth = 320;

    /// <summary>Random float16 weights of two 1x1 convolutions from 8 channels to a width (<c>conv2</c>, <c>conv_shortcut</c>)
    /// and one from that width to 320 (<c>down</c>), each with a bias, and a norm's (<c>norm</c>), in a temporary folder.</summary>
    private sealed class ResidualWeights : IDisposable
    {
        private readonly string _folder = Directory.CreateTempSubdirectory("sd-image-residual-").FullName;
        private readonly SafetensorsFile _file;

        public ResidualWeights(int width = ResidualWidth)
        {
            string path = Path.Combine(_folder, "weights.safetensors");
            SafetensorsWriter.Write(path, [
                SafetensorsWriter.Tensor.Float16("conv2.weight", [width, 8, 1, 1], GraphRunner.Random(width * 8, seed: 1)),
                SafetensorsWriter.Tensor.Float16("conv2.bias", [width], GraphRunner.Random(width, seed: 2)),
                SafetensorsWriter.Tensor.Float16("conv_shortcut.weight", [width, 8, 1, 1], GraphRunner.Random(width * 8, seed: 3)),
                SafetensorsWriter.Tensor.Float16("conv_shortcut.bias", [width], GraphRunner.Random(width, seed: 4)),
                SafetensorsWriter.Tensor.Float16("down.weight", [ResidualWidth, width, 1, 1], GraphRunner.Random(ResidualWidth * width, seed: 5)),
                SafetensorsWriter.Tensor.Float16("down.bias", [ResidualWidth], GraphRunner.Random(ResidualWidth, seed: 6)),
                SafetensorsWriter.Tensor.Float16("norm.weight", [width], GraphRunner.Random(width, seed: 7)),
                SafetensorsWriter.Tensor.Float16("norm.bias", [width], GraphRunner.Random(width, seed: 8))]);
            _file = SafetensorsFile.Open(path);
            Parameters = new SafetensorsParameters([_file], TensorElementType.Float16);
        }

        public SafetensorsParameters Parameters { get; }

        public void Dispose()
        {
            _file.Dispose();
            Directory.Delete(_folder, recursive: true);
        }
    }

    private static NodeProto ConvolutionOf(ModelProto model, string module) =>
        Assert.Single(model.Graph.Node, n => n.OpType == "NhwcConv" && n.Name.StartsWith($"/{module}/", StringComparison.Ordinal));

    // The initializers a bias value is summed from, through the float32 casts and additions the builder adds.
    private static string[] BiasTerms(ModelProto model, string value)
    {
        if (model.Graph.Initializer.Any(i => i.Name == value))
        {
            return [value];
        }

        NodeProto node = model.Graph.Node.Single(n => n.Output.Contains(value));
        return [.. node.Input.SelectMany(input => BiasTerms(model, input)).Order(StringComparer.Ordinal)];
    }

    /// <summary>tiny-sd's VAE in the CUDA-fused flavor, float16, with the inputs and outputs <paramref name="build"/> gives it.</summary>
    private static (ModelProto Model, string DataFolder) VaeGraph(Action<GraphBuilder, AutoencoderKL> build)
    {
        string vae = Fixtures.PathOf("tiny-sd/vae");
        using SafetensorsFile weights = SafetensorsFile.Open(Path.Combine(vae, "diffusion_pytorch_model.safetensors"));
        var parameters = new SafetensorsParameters([weights], TensorElementType.Float16);
        var graph = new GraphBuilder(parameters: parameters, flavor: GraphFlavor.CudaFused);
        build(graph, AutoencoderKL.FromConfig(ComponentConfig.Load(Path.Combine(vae, "config.json"))));
        return (graph.ToModel(), parameters.Folder);
    }

    private static void AssertOnlyKernelsMissing(ModelProto model, string folder)
    {
        var ex = Assert.Throws<OnnxRuntimeException>(() => GraphRunner.Session(model.ToByteArray(), folder).Dispose());

        // ONNX Runtime resolves the whole graph (schemas, types, shapes) before it assigns kernels: this is the first error left.
        Assert.True(ex.Message.Contains("Failed to find kernel for", StringComparison.Ordinal), ex.Message);
        Assert.True(CudaOnlyOperators.Any(op => ex.Message.Contains($"for com.microsoft.{op}(1)", StringComparison.Ordinal)), ex.Message);
    }

    // The type of an initializer, or of a Cast's output.
    private static int ElementTypeOf(ModelProto model, string value) =>
        model.Graph.Initializer.FirstOrDefault(i => i.Name == value)?.DataType
        ?? (int)model.Graph.Node.Single(n => n.Output.Contains(value) && n.OpType == "Cast").Attribute.Single(a => a.Name == "to").I;
}
