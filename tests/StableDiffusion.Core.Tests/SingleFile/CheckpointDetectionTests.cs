using StableDiffusion.Core.Tests.Weights;
using StableDiffusion.Loading.SingleFile;
using StableDiffusion.Models;
using StableDiffusion.Testing;
using StableDiffusion.Weights;
using Xunit;

namespace StableDiffusion.Core.Tests.SingleFile;

/// <summary>
/// Files given as a Stable Diffusion 1.x single-file checkpoint that are something else: each refused naming the file,
/// what it looks like and what to do, from its header alone.
/// </summary>
[Trait("Area", "WeightsLoading")]
public sealed class CheckpointDetectionTests : IDisposable
{
    private static readonly string[] CompleteSd1 =
    [
        "model.diffusion_model.input_blocks.0.0.weight:320,4,3,3", "model.diffusion_model.out.2.bias",
        "first_stage_model.decoder.conv_in.weight", "cond_stage_model.transformer.text_model.final_layer_norm.weight",
    ];

    private readonly string _folder = Directory.CreateTempSubdirectory("sd-detection-").FullName;

    /// <summary>Tensor names (with ":shape" where it matters), the kind the file looks like, and what the message says.</summary>
    public static TheoryData<string, string[], CheckpointKind, string> Files => new()
    {
        {
            "sdxl", ["conditioner.embedders.0.transformer.text_model.final_layer_norm.weight", "conditioner.embedders.1.model.positional_embedding", .. CompleteSd1],
            CheckpointKind.StableDiffusionXL, "looks like a Stable Diffusion XL checkpoint"
        },
        {
            "sd2-openclip", ["cond_stage_model.model.token_embedding.weight", "model.diffusion_model.input_blocks.0.0.weight:320,4,3,3", "first_stage_model.decoder.conv_in.weight"],
            CheckpointKind.StableDiffusion2, "looks like a Stable Diffusion 2.x checkpoint ('cond_stage_model.model.token_embedding.weight'"
        },
        {
            "sd2-cross-attention", ["model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight:320,1024", .. CompleteSd1],
            CheckpointKind.StableDiffusion2, "cross-attention 1024 wide"
        },
        {
            "lora-kohya", ["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", "lora_unet_down_blocks_0_attentions_0_proj_in.alpha"],
            CheckpointKind.Lora, "is a LoRA (low-rank weight updates such as 'lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight')"
        },
        {
            "lora-peft", ["unet.down_blocks.0.attentions.0.proj_in.lora_A.weight", "unet.down_blocks.0.attentions.0.proj_in.lora_B.weight"],
            CheckpointKind.Lora, "is a LoRA"
        },
        { "embedding", ["emb_params:2,768"], CheckpointKind.TextualInversion, "is a textual inversion embedding" },
        { "vae-original", ["encoder.conv_in.weight", "decoder.conv_in.weight", "quant_conv.weight"], CheckpointKind.Vae, "holds a VAE alone" },
        { "vae-diffusers", ["encoder.down_blocks.0.resnets.0.conv1.weight", "encoder.conv_in.weight"], CheckpointKind.Vae, "holds a VAE alone" },
        {
            "diffusers-unet", ["conv_in.weight", "down_blocks.0.resnets.0.conv1.weight", "time_embedding.linear_1.weight"],
            CheckpointKind.DiffusersComponent, "is one component of a diffusers folder (diffusers' names, such as 'down_blocks.0.resnets.0.conv1.weight')"
        },
        { "diffusers-text-encoder", ["text_model.final_layer_norm.weight"], CheckpointKind.DiffusersComponent, "FromPretrainedAsync" },
        { "controlnet", ["control_model.time_embed.0.weight", "control_model.input_hint_block.0.weight"], CheckpointKind.ControlNet, "is a ControlNet" },
        { "not-sd", ["bert.embeddings.word_embeddings.weight", "classifier.bias"], CheckpointKind.Unknown, "is not a Stable Diffusion checkpoint: none of its 2 tensors ('bert.embeddings.word_embeddings.weight', 'classifier.bias') is under model.diffusion_model." },
        { "ema-only-flat", ["model_ema.diffusion_modelout2bias", "model_ema.decay"], CheckpointKind.Unknown, "is not a Stable Diffusion checkpoint" },
        {
            "instruct-pix2pix", ["model.diffusion_model.input_blocks.0.0.weight:320,8,3,3", "first_stage_model.decoder.conv_in.weight", "cond_stage_model.transformer.text_model.final_layer_norm.weight"],
            CheckpointKind.Unknown, "has a UNet that takes 8 input channels"
        },
    };

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Theory]
    [MemberData(nameof(Files))]
    public void NotAnSd1Checkpoint_IsRefusedSayingWhatItLooksLike(string name, string[] tensors, CheckpointKind kind, string message)
    {
        string path = Write(name, tensors);

        var ex = Assert.Throws<UnsupportedCheckpointException>(() => SingleFileCheckpoint.Open(path));

        Assert.Equal(kind, ex.Kind);
        Assert.Equal(path, ex.Path);
        Assert.StartsWith($"'{path}' ", ex.Message, StringComparison.Ordinal);
        Assert.Contains(message, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("first_stage_model.", "no VAE (no first_stage_model.* tensors)")]
    [InlineData("cond_stage_model.", "no CLIP text encoder (no cond_stage_model.transformer.* tensors)")]
    public void Sd1UNetWithoutAComponent_NamesTheMissingComponent(string left, string message)
    {
        string path = Write("incomplete", [.. CompleteSd1.Where(t => !t.StartsWith(left, StringComparison.Ordinal))]);

        var ex = Assert.Throws<ModelLoadException>(() => SingleFileCheckpoint.Open(path));

        Assert.Equal(path, ex.Path);
        Assert.Contains($"'{path}' has a Stable Diffusion UNet but {message}", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CompleteSd1Header_IsTextToImage()
    {
        using SingleFileCheckpoint checkpoint = SingleFileCheckpoint.Open(Write("sd1", CompleteSd1));

        Assert.Equal(CheckpointKind.StableDiffusion1, checkpoint.Kind);
    }

    [Fact]
    public void TruncatedFile_IsASafetensorsFormatErrorNamingTheFile()
    {
        Fixtures.Require();
        string path = Path.Combine(_folder, "truncated.safetensors");
        byte[] bytes = File.ReadAllBytes(Fixtures.PathOf("tiny-sd-single-file.fp16.safetensors"));
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);

        var ex = Assert.Throws<SafetensorsFormatException>(() => SingleFileCheckpoint.Open(path));

        Assert.Equal(path, ex.Path);
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HeaderThatLies_IsASafetensorsFormatError()
    {
        string path = Path.Combine(_folder, "lying.safetensors");
        SafetensorsWriter.WriteRaw(path, """{"model.diffusion_model.out.2.bias":{"dtype":"F16","shape":[4],"data_offsets":[0,800]}}""", new byte[8]);

        var ex = Assert.Throws<SafetensorsFormatException>(() => SingleFileCheckpoint.Open(path));

        Assert.Equal(path, ex.Path);
    }

    [Fact]
    public void MissingFileAndFolder_AreModelLoadErrors()
    {
        string missing = Path.Combine(_folder, "none.safetensors");

        Assert.Contains("does not exist", Assert.Throws<ModelLoadException>(() => SingleFileCheckpoint.Open(missing)).Message, StringComparison.Ordinal);
        Assert.Contains("is a folder", Assert.Throws<ModelLoadException>(() => SingleFileCheckpoint.Open(_folder)).Message, StringComparison.Ordinal);
    }

    // A safetensors file of float16 tensors named as given ("name" is [1]; "name:a,b" is [a, b], zeros).
    private string Write(string name, string[] tensors)
    {
        string path = Path.Combine(_folder, $"{name}.safetensors");
        SafetensorsWriter.Write(path, tensors.Select(t =>
        {
            string[] parts = t.Split(':');
            long[] shape = parts.Length > 1 ? [.. parts[1].Split(',').Select(long.Parse)] : [1];
            return SafetensorsWriter.Tensor.Float16(parts[0], shape, new float[shape.Aggregate(1L, (a, b) => a * b)]);
        }));
        return path;
    }
}
