using StableDiffusion.Core.Tests.Onnx.Support;
using StableDiffusion.Core.Tests.Weights;
using StableDiffusion.Lora;
using StableDiffusion.Models;
using StableDiffusion.Onnx;
using StableDiffusion.Onnx.Builders;
using StableDiffusion.Testing;
using Xunit;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace StableDiffusion.Core.Tests.Lora;

/// <summary>LoRA files matched to graph layers: kohya and PEFT names, exports and built graphs, and every refusal.</summary>
[Trait("Area", "Lora")]
public sealed class LoraMatchingTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("sd-lora-tests-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void ExportTargets_MapExporterNamesToModulePaths()
    {
        IReadOnlyDictionary<string, LoraTargets> targets = ExportTargets();

        LoraTarget toQ = targets[ModelComponents.UNet].Modules["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"];
        Assert.StartsWith("onnx::MatMul_", toQ.Initializers[0], StringComparison.Ordinal);
        Assert.True(toQ.Transposed);
        LoraTarget conv = targets[ModelComponents.UNet].Modules["down_blocks.0.resnets.0.conv1"];
        Assert.Equal(["down_blocks.0.resnets.0.conv1.weight"], conv.Initializers);
        Assert.False(conv.Transposed);
        Assert.False(targets[ModelComponents.UNet].Modules["down_blocks.0.resnets.0.time_emb_proj"].Transposed); // Gemm, transB = 1
        Assert.True(targets[ModelComponents.TextEncoder].Modules["encoder.layers.1.mlp.fc2"].Transposed);
        Assert.Equal([64L, 32L], targets[ModelComponents.TextEncoder].Modules["encoder.layers.1.mlp.fc2"].Shape);
    }

    [Fact]
    public void KohyaAndPeftFiles_OfOneLora_ChangeTheSameLayersEqually()
    {
        IReadOnlyDictionary<string, LoraTargets> targets = ExportTargets();
        LoraAdapter kohya = LoraAdapter.Resolve("k", "kohya", LoraFile.Read(LoraFiles.Path("style.kohya.safetensors")), targets);
        LoraAdapter peft = LoraAdapter.Resolve("p", "peft", LoraFile.Read(LoraFiles.Path("style.peft.safetensors")), targets);

        Assert.Equal(peft.Layers.Count, kohya.Layers.Count);
        Assert.Contains(kohya.Layers, l => l.Entry.Component == ModelComponents.TextEncoder);
        foreach ((LoraEntry entry, LoraTarget target) in peft.Layers)
        {
            (LoraEntry other, _) = Assert.Single(kohya.Layers, l => ReferenceEquals(l.Target, target));
            ArrayAssert.Close(Update(entry, target), Update(other, target), 1e-6, target.Module);
        }
    }

    [Fact]
    public void LoCon_ChangesConvolutionsAndLinearLayers()
    {
        LoraAdapter locon = LoraAdapter.Resolve("l", "locon", LoraFile.Read(LoraFiles.Path("locon.kohya.safetensors")), ExportTargets());

        Assert.Contains(locon.Layers, l => l.Target.Module == "down_blocks.0.resnets.0.conv1" && l.Entry.DownShape.Length == 4);
        Assert.Contains(locon.Layers, l => l.Target.Module == "down_blocks.0.resnets.0.time_emb_proj");
        Assert.All(locon.Layers, l => Assert.Equal(1f, l.Entry.Scale)); // alpha 2, rank 2
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void BuiltGraphTargets_AreTheDiffusersKeys_IncludingPackedProjections(bool cudaFused)
    {
        Fixtures.Require();
        (ModelProto model, string dataFolder) = UNetUnderTest.BuildGraph("tiny-sd/unet", cudaFused ? GraphFlavor.CudaFused : GraphFlavor.Plain,
            cudaFused ? TensorElementType.Float16 : TensorElementType.Float);
        var graph = new BuiltGraph(Google.Protobuf.MessageExtensions.ToByteArray(model), dataFolder, "built unet");
        var targets = new Dictionary<string, LoraTargets> { [ModelComponents.UNet] = LoraTargets.Read(ModelComponents.UNet, graph) };
        IReadOnlyList<LoraEntry> unetOnly = [.. LoraFile.Read(LoraFiles.Path("style.peft.safetensors")).Where(e => e.Component == ModelComponents.UNet)];

        LoraAdapter adapter = LoraAdapter.Resolve("style", "style", unetOnly, targets);

        LoraTarget toK = targets[ModelComponents.UNet].Modules["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_k"];
        Assert.False(toK.Transposed);
        Assert.Equal(unetOnly.Count, adapter.Layers.Count);
        float[] stored = LoraTargets.ReadBase(graph, toK);
        Assert.Equal(toK.ElementCount, stored.Length);
    }

    [Fact]
    public void SdxlFile_IsRefused_ListingItsUnmatchedKeys()
    {
        string path = WriteLayers("sdxl.safetensors",
            Layer("lora_te2_text_model_encoder_layers_0_self_attn_q_proj", 4, 1280, 1280),
            Layer("lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", 4, 2048, 640));

        LoraLoadException e = Assert.Throws<LoraLoadException>(() => Resolve(path));

        Assert.Contains("SDXL", e.Message, StringComparison.Ordinal);
        Assert.Equal(2, e.UnmatchedKeys.Count);
        Assert.Contains("lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", e.UnmatchedKeys);
        Assert.Equal(path, e.FilePath);
    }

    [Fact]
    public void Sd2File_IsRefused_NamingTheWidths()
    {
        string path = Write("sd2.safetensors", Layer("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", 4, 1024, 32));

        LoraLoadException e = Assert.Throws<LoraLoadException>(() => Resolve(path));

        Assert.Contains("SD 2.x", e.Message, StringComparison.Ordinal);
        Assert.Contains("1024", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void KeysMatchingNothing_AreListed_AndNothingIsApplied()
    {
        string path = WriteLayers("partial.safetensors",
            Layer("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", 4, 32, 32),
            Layer("lora_unet_down_blocks_9_attentions_0_transformer_blocks_0_attn1_to_q", 4, 32, 32));

        LoraLoadException e = Assert.Throws<LoraLoadException>(() => Resolve(path));

        Assert.Equal(["lora_unet_down_blocks_9_attentions_0_transformer_blocks_0_attn1_to_q"], e.UnmatchedKeys);
        Assert.Contains("1 of its 2 layers", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AWeightTheExporterShared_IsRefused_NamingBothLayers()
    {
        var graph = new GraphBuilder();
        Value x = graph.Input("x", TensorElementType.Float, 1, 4);
        Value shared = graph.Initializer("onnx::MatMul_7", [4, 4], new float[16]);
        Value y;
        using (graph.Scope("a"))
        using (graph.Scope("to_q"))
        {
            y = graph.Node("MatMul", [x, shared]);
        }

        using (graph.Scope("b"))
        using (graph.Scope("to_q"))
        {
            y = graph.Node("MatMul", [y, shared]);
        }

        graph.Output(y, "y", 1, 4);
        var targets = new Dictionary<string, LoraTargets>
        {
            [ModelComponents.UNet] = LoraTargets.Read(ModelComponents.UNet, new BuiltGraph(graph.ToBytes(), _folder, "shared graph")),
        };
        var entry = new LoraEntry(ModelComponents.UNet, "a.to_q", IsFlat: false, "unet.a.to_q", new float[8], [2, 4], new float[8], [4, 2], Alpha: 2);

        LoraLoadException e = Assert.Throws<LoraLoadException>(() => LoraAdapter.Resolve("s", "shared.safetensors", [entry], targets));

        Assert.Contains("a.to_q shares its weight with b.to_q", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("lora_unet_x.hada_w1_a", "LoHa")]
    [InlineData("lora_unet_x.lokr_w1", "LoKr")]
    [InlineData("lora_unet_x.dora_scale", "DoRA")]
    [InlineData("lora_unet_x.diff", "full weight difference")]
    [InlineData("model.diffusion_model.input_blocks.0.0.weight", "not LoRA weights")]
    public void OtherAdapterKinds_AreRefusedByName(string key, string expected)
    {
        string path = Write("other.safetensors", SafetensorsWriter.Tensor.Float32(key, [2, 2], [1, 2, 3, 4]));

        LoraLoadException e = Assert.Throws<LoraLoadException>(() => LoraFile.Read(path));

        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.Equal([key], e.UnmatchedKeys);
    }

    [Fact]
    public void BrokenFiles_AreRefused_WithTheReason()
    {
        string notSafetensors = Path.Combine(_folder, "lora.safetensors");
        File.WriteAllText(notSafetensors, "not a safetensors file at all");
        string incomplete = Write("incomplete.safetensors", SafetensorsWriter.Tensor.Float32("lora_unet_a.lora_down.weight", [1, 2], [1, 2]));
        string badShapes = Write("shapes.safetensors",
            SafetensorsWriter.Tensor.Float32("lora_unet_a.lora_down.weight", [2, 2], [1, 2, 3, 4]),
            SafetensorsWriter.Tensor.Float32("lora_unet_a.lora_up.weight", [2, 3], [1, 2, 3, 4, 5, 6]));
        string empty = Write("empty.safetensors");

        Assert.Contains("safetensors", Assert.Throws<LoraLoadException>(() => LoraFile.Read(notSafetensors)).Message, StringComparison.Ordinal);
        Assert.Contains("incomplete", Assert.Throws<LoraLoadException>(() => LoraFile.Read(incomplete)).Message, StringComparison.Ordinal);
        Assert.Contains("shapes", Assert.Throws<LoraLoadException>(() => LoraFile.Read(badShapes)).Message, StringComparison.Ordinal);
        Assert.Contains("no LoRA weights", Assert.Throws<LoraLoadException>(() => LoraFile.Read(empty)).Message, StringComparison.Ordinal);
        Assert.Contains("does not exist", Assert.Throws<LoraLoadException>(() => LoraFile.Read(Path.Combine(_folder, "missing.safetensors"))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Alphas_ComeFromTheFile_TheMetadata_OrTheRank()
    {
        string kohya = Write("alpha.safetensors",
            [.. Layer("lora_unet_a", 4, 8, 8), SafetensorsWriter.Tensor.Float32("lora_unet_a.alpha", [], [2f]), .. Layer("lora_unet_b", 4, 8, 8)]);
        string peft = Path.Combine(_folder, "peft.safetensors");
        SafetensorsWriter.Write(peft,
            [SafetensorsWriter.Tensor.Float32("unet.a.lora_A.weight", [4, 8], new float[32]), SafetensorsWriter.Tensor.Float32("unet.a.lora_B.weight", [8, 4], new float[32]),
             SafetensorsWriter.Tensor.Float32("unet.b.lora_A.weight", [4, 8], new float[32]), SafetensorsWriter.Tensor.Float32("unet.b.lora_B.weight", [8, 4], new float[32])],
            new Dictionary<string, string> { ["lora_adapter_metadata"] = """{"unet.lora_alpha": 8, "unet.alpha_pattern": {"b": 2}, "unet.r": 4}""" });
        string plain = Write("plain.safetensors", Layer("unet.a", 4, 8, 8, peft: true));

        IReadOnlyList<LoraEntry> fromKohya = LoraFile.Read(kohya);
        IReadOnlyList<LoraEntry> fromMetadata = LoraFile.Read(peft);

        Assert.Equal(0.5f, fromKohya.Single(e => e.Name == "a").Scale);
        Assert.Equal(0.5f, fromKohya.Single(e => e.Name == "b").Scale); // the file's most common alpha, as diffusers takes it
        Assert.Equal(2f, fromMetadata.Single(e => e.Name == "a").Scale);
        Assert.Equal(0.5f, fromMetadata.Single(e => e.Name == "b").Scale);
        Assert.Equal(1f, Assert.Single(LoraFile.Read(plain)).Scale);
    }

    private IReadOnlyDictionary<string, LoraTargets> ExportTargets()
    {
        Fixtures.Require();
        return new Dictionary<string, LoraTargets>
        {
            [ModelComponents.UNet] = LoraTargets.Read(ModelComponents.UNet, BuiltGraph.OfFile(Path.Combine(Fixtures.TinyModel, "unet", "model.onnx"))),
            [ModelComponents.TextEncoder] = LoraTargets.Read(ModelComponents.TextEncoder, BuiltGraph.OfFile(Path.Combine(Fixtures.TinyModel, "text_encoder", "model.onnx"))),
        };
    }

    private LoraAdapter Resolve(string path) => LoraAdapter.Resolve("test", path, LoraFile.Read(path), ExportTargets());

    /// <summary>The update a LoRA entry adds to a zero weight, in the target's stored order.</summary>
    private static float[] Update(LoraEntry entry, LoraTarget target)
    {
        var weight = new float[target.ElementCount];
        LoraMerge.Add(weight, target, entry, 1f);
        return weight;
    }

    private static SafetensorsWriter.Tensor[] Layer(string name, int rank, int inFeatures, int outFeatures, bool peft = false) =>
    [
        SafetensorsWriter.Tensor.Float32(name + (peft ? ".lora_A.weight" : ".lora_down.weight"), [rank, inFeatures], new float[rank * inFeatures]),
        SafetensorsWriter.Tensor.Float32(name + (peft ? ".lora_B.weight" : ".lora_up.weight"), [outFeatures, rank], new float[outFeatures * rank]),
    ];

    private string Write(string name, params SafetensorsWriter.Tensor[] tensors)
    {
        string path = Path.Combine(_folder, name);
        SafetensorsWriter.Write(path, tensors);
        return path;
    }

    private string WriteLayers(string name, params SafetensorsWriter.Tensor[][] layers) => Write(name, [.. layers.SelectMany(l => l)]);
}
