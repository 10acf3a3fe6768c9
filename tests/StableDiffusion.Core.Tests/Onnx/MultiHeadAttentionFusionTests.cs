using System.Numerics.Tensors;
using Google.Protobuf;
using StableDiffusion.Core.Tests.Onnx.Support;
using StableDiffusion.ExecutionProviders;
using StableDiffusion.Models;
using StableDiffusion.Onnx;
using StableDiffusion.Onnx.Builders;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace StableDiffusion.Core.Tests.Onnx;

/// <summary>
/// The attention of diffusers' exports, rewritten to MultiHeadAttention at load time, computes what the exported graph does;
/// anything that differs from the exporter's pattern is left as it is.
/// </summary>
[Trait("Area", "WeightsLoading")]
public sealed class MultiHeadAttentionFusionTests
{
    private const string UNet = "tiny-sd-onnx/unet/model.onnx";

    [Fact]
    public void Fuse_TheTinyUNet_RewritesEveryAttentionAndGivesTheSameOutput()
    {
        Fixtures.Require();
        byte[] original = File.ReadAllBytes(Fixtures.PathOf(UNet));

        (byte[] fused, int attentions) = MultiHeadAttentionFusion.Fuse(original)!.Value;

        ModelProto model = ModelProto.Parser.ParseFrom(fused);
        Assert.Equal(8, attentions); // Self- and cross-attention in each of the four transformers.
        Assert.Equal(8, model.Graph.Node.Count(n => n.OpType == "MultiHeadAttention" && n.Domain == "com.microsoft"));
        Assert.DoesNotContain(model.Graph.Node, n => n.OpType == "Softmax");
        Assert.All(model.Graph.Node.Where(n => n.OpType == "MultiHeadAttention"), n => Assert.Equal(8, n.Attribute.Single(a => a.Name == "num_heads").I));
        Assert.Contains(model.OpsetImport, o => o.Domain == "com.microsoft");

        // 16x24 latents: 384 queries, so the probabilities are a real matrix, and odd-sized down and up blocks.
        (string, float[], long[])[] inputs =
        [
            ("sample", GraphRunner.Random(2 * 4 * 16 * 24, seed: 1), [2, 4, 16, 24]),
            ("timestep", [501f, 501f], [2]),
            ("encoder_hidden_states", GraphRunner.Random(2 * 77 * 32, seed: 2), [2, 77, 32]),
        ];
        string folder = Path.GetDirectoryName(Fixtures.PathOf(UNet))!;
        (float[] expected, long[] shape) = GraphRunner.Run(original, folder, inputs);
        (float[] actual, long[] fusedShape) = GraphRunner.Run(fused, folder, inputs);

        Assert.Equal(shape, fusedShape);
        ArrayAssert.CloseRelative(expected, actual, 1e-5, "UNet output, MultiHeadAttention vs the export's MatMul-Softmax-MatMul");
    }

    [Fact]
    public void Fuse_TheTinyVaeDecoder_RewritesItsSingleHeadAttention()
    {
        Fixtures.Require();
        byte[] original = File.ReadAllBytes(Fixtures.PathOf("tiny-sd-onnx/vae_decoder/model.onnx"));

        (byte[] fused, int attentions) = MultiHeadAttentionFusion.Fuse(original)!.Value;

        Assert.Equal(1, attentions);
        NodeProto attention = ModelProto.Parser.ParseFrom(fused).Graph.Node.Single(n => n.OpType == "MultiHeadAttention");
        Assert.Equal(1, attention.Attribute.Single(a => a.Name == "num_heads").I);
        float[] latents = GraphRunner.Random(4 * 12 * 16, seed: 3);
        (float[] expected, _) = GraphRunner.Run(original, null, ("latent_sample", latents, [1, 4, 12, 16]));
        (float[] actual, _) = GraphRunner.Run(fused, null, ("latent_sample", latents, [1, 4, 12, 16]));
        ArrayAssert.CloseRelative(expected, actual, 1e-5, "VAE decoder output, MultiHeadAttention vs the export's attention");
    }

    [Fact]
    public void Fuse_TheTextEncodersMaskedAttention_LeavesTheGraphAlone()
    {
        Fixtures.Require();

        // CLIP's causal mask is added between the scores and the softmax: not the pattern.
        Assert.Null(MultiHeadAttentionFusion.Fuse(File.ReadAllBytes(Fixtures.PathOf("tiny-sd-onnx/text_encoder/model.onnx"))));
    }

    [Fact]
    public void Fuse_AnAttentionWhoseProbabilitiesAreReadElsewhere_KeepsThatOne()
    {
        Fixtures.Require();
        ModelProto model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Fixtures.PathOf(UNet)));
        NodeProto softmax = model.Graph.Node.First(n => n.OpType == "Softmax");
        model.Graph.Output.Add(new ValueInfoProto { Name = softmax.Output[0] });

        (byte[] fused, int attentions) = MultiHeadAttentionFusion.Fuse(model.ToByteArray())!.Value;

        Assert.Equal(7, attentions);
        ModelProto rewritten = ModelProto.Parser.ParseFrom(fused);
        Assert.Equal(softmax, Assert.Single(rewritten.Graph.Node, n => n.OpType == "Softmax"));
        Assert.Contains(rewritten.Graph.Node, n => n.Output.Contains(softmax.Input[0]));
    }

    [Fact]
    public void Fuse_AnAttentionWithAnotherHeadCountInOneReshape_KeepsThatOne()
    {
        Fixtures.Require();
        ModelProto model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Fixtures.PathOf(UNet)));
        NodeProto softmax = model.Graph.Node.First(n => n.OpType == "Softmax");
        string scope = softmax.Name[..softmax.Name.LastIndexOf('/')];

        // The value reshape's head count, [B, -1, 8, d] -> [B, -1, 4, d]: no longer the pattern's one head split.
        NodeProto valueReshape = model.Graph.Node.Single(n => n.Name == $"{scope}/Reshape_2");
        NodeProto concat = model.Graph.Node.Single(n => n.Output.Contains(valueReshape.Input[1]));
        NodeProto heads = model.Graph.Node.Single(n => n.Output.Contains(concat.Input[2]));
        TensorProto value = heads.Attribute.Single(a => a.Name == "value").T;
        value.RawData = ByteString.CopyFrom(BitConverter.GetBytes(4L));

        (byte[] fused, int attentions) = MultiHeadAttentionFusion.Fuse(model.ToByteArray())!.Value;

        Assert.Equal(7, attentions);
        Assert.Contains(ModelProto.Parser.ParseFrom(fused).Graph.Node, n => n.Name == softmax.Name);
    }

    [Fact]
    public void UNetModel_OnTheCpu_RewritesByDefaultAndPredictsAsTheExport()
    {
        Fixtures.Require();
        string path = Fixtures.PathOf(UNet);
        using UNetModel exported = UNetModel.Load(path, new SessionSettings { FuseAttention = false });
        using UNetModel fused = UNetModel.Load(path);

        Assert.Equal(0, exported.FusedAttentions);
        Assert.Equal(8, fused.FusedAttentions);
        ArrayAssert.CloseRelative(Predict(exported, 301f, 16, seed: 4), Predict(fused, 301f, 16, seed: 4), 1e-5, "UNetModel with and without the MultiHeadAttention rewrite");
    }

    [Fact]
    public void UNetModel_WithAnIntegerTimestepAndWeightsInModelOnnxData_IsRetypedAndRewrittenInOneLoad()
    {
        Fixtures.Require();
        string path = Fixtures.PathOf("tiny-sd-onnx-variants/unet/model.onnx");
        using UNetModel exported = UNetModel.Load(path, new SessionSettings { FuseAttention = false });
        using UNetModel fused = UNetModel.Load(path);

        // A fractional timestep reaches both graphs whole only if the int64 input was retyped in each.
        float[] expected = Predict(exported, 301.5f, 16, seed: 8), actual = Predict(fused, 301.5f, 16, seed: 8);

        Assert.Equal(TensorElementType.Float, exported.TimestepType);
        Assert.Equal(TensorElementType.Float, fused.TimestepType);
        Assert.Equal(8, fused.FusedAttentions);
        ArrayAssert.CloseRelative(expected, actual, 1e-5, "the variants' UNet, retyped, with and without the MultiHeadAttention rewrite");
    }

    [Fact]
    public void UNetModel_BaseGraphOfAnExport_IsTheGraphAsLoaded_SoThatLoraRebuildsKeepBothEdits()
    {
        Fixtures.Require();
        using UNetModel unet = UNetModel.Load(Fixtures.PathOf("tiny-sd-onnx-variants/unet/model.onnx"));

        GraphProto graph = ModelProto.Parser.ParseFrom(unet.BaseGraph().Model).Graph;

        Assert.Equal(8, graph.Node.Count(n => n.OpType == "MultiHeadAttention"));
        Assert.Equal((int)TensorElementType.Float, graph.Input.Single(i => i.Name == "timestep").Type.TensorType.ElemType);
    }

    [Fact]
    public void UNetModel_WhoseWeightsLinkIntoAHubCacheBlobsFolder_IsRewrittenAndPredictsAsTheLocalCopy()
    {
        Fixtures.Require();
        string root = Directory.CreateTempSubdirectory("sd-fusion-links-").FullName;
        try
        {
            // The Hugging Face cache layout: snapshots/<rev>/unet/{model.onnx, weights.pb} link to blobs/<hash>.
            string blobs = Directory.CreateDirectory(Path.Combine(root, "blobs")).FullName;
            string unet = Directory.CreateDirectory(Path.Combine(root, "snapshots", "rev", "unet")).FullName;
            foreach ((string name, string hash) in new[] { ("model.onnx", "1a2b"), ("weights.pb", "3c4d") })
            {
                File.Copy(Path.Combine(Path.GetDirectoryName(Fixtures.PathOf(UNet))!, name), Path.Combine(blobs, hash));
                File.CreateSymbolicLink(Path.Combine(unet, name), Path.Combine("..", "..", "..", "blobs", hash));
            }

            DateTime written = File.GetLastWriteTimeUtc(Path.Combine(blobs, "3c4d"));
            using UNetModel local = UNetModel.Load(Fixtures.PathOf(UNet));
            using UNetModel linked = UNetModel.Load(Path.Combine(unet, "model.onnx"));
            float[] expected = Predict(local, 301f, 8, seed: 6), actual = Predict(linked, 301f, 8, seed: 6);

            Assert.Equal(8, linked.FusedAttentions);
            Assert.Equal(expected, actual);
            Assert.Equal(["1a2b", "3c4d"], Directory.GetFiles(blobs).Select(Path.GetFileName).Order());
            Assert.Equal(written, File.GetLastWriteTimeUtc(Path.Combine(blobs, "3c4d")));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void FuseAttention_ByDefault_IsOnForTheCpuOnly()
    {
        Assert.True(new SessionSettings().FusesAttention);
        Assert.False(new SessionSettings { ExecutionProvider = ExecutionProvider.Cuda() }.FusesAttention);
        Assert.True(new SessionSettings { ExecutionProvider = ExecutionProvider.Cuda(), FuseAttention = true }.FusesAttention);
        Assert.False(new SessionSettings { FuseAttention = false }.FusesAttention);
    }

    [Fact]
    public void FuseAttention_ChoosesTheAttentionOfUNetsBuiltFromWeights()
    {
        ExecutionProviderFamily cpu = ExecutionProviderFamily.Of(ExecutionProvider.Cpu), cuda = ExecutionProviderFamily.Of(ExecutionProvider.Cuda());

        Assert.Same(GraphFlavor.PlainWithMultiHeadAttention, cpu.BuiltGraphFlavor(ModelComponents.UNet, ComputePrecision.Float32, new SessionSettings().FusesAttention));
        Assert.Same(GraphFlavor.Plain, cpu.BuiltGraphFlavor(ModelComponents.UNet, ComputePrecision.Float32, new SessionSettings { FuseAttention = false }.FusesAttention));
        Assert.Same(GraphFlavor.Plain, cpu.BuiltGraphFlavor(ModelComponents.UNet, ComputePrecision.Float16, fuseAttention: true));
        Assert.Same(GraphFlavor.Plain, cpu.BuiltGraphFlavor(ModelComponents.VaeDecoder, ComputePrecision.Float32, fuseAttention: true));
        Assert.Same(GraphFlavor.Plain, cuda.BuiltGraphFlavor(ModelComponents.UNet, ComputePrecision.Float32, new SessionSettings { ExecutionProvider = ExecutionProvider.Cuda() }.FusesAttention));
        Assert.Same(GraphFlavor.PlainWithMultiHeadAttention, cuda.BuiltGraphFlavor(ModelComponents.UNet, ComputePrecision.Float32, fuseAttention: true));
        Assert.Same(GraphFlavor.CudaFused, cuda.BuiltGraphFlavor(ModelComponents.UNet, ComputePrecision.Float16, fuseAttention: false));
    }

    // The UNet's prediction for a random batch of two size x size latents (seed) and prompt embeddings (seed + 1).
    private static float[] Predict(UNetModel unet, float timestep, int size, int seed)
    {
        Tensor<float> sample = Tensor.Create(GraphRunner.Random(2 * 4 * size * size, seed), [2, 4, size, size]);
        Tensor<float> context = Tensor.Create(GraphRunner.Random(2 * 77 * 32, seed + 1), [2, 77, 32]);
        Tensor<float> prediction = Tensor.CreateFromShape<float>([2, 4, size, size]);
        unet.Predict(sample, timestep, context, prediction);
        return prediction.AsSpan().ToArray();
    }
}
