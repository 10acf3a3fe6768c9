using System.Text.Json.Nodes;
using StableDiffusion.Core.Tests.Hardening.Support;
using StableDiffusion.Core.Tests.Onnx.Support;
using StableDiffusion.Models;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using StableDiffusion.Weights;
using Xunit;

namespace StableDiffusion.Core.Tests.Loading;

/// <summary>
/// A corpus of broken diffusers folders: each fails to load with a specific exception naming the file at fault and what
/// is wrong with it, before any generation.
/// </summary>
[Trait("Category", "Hardening")]
[Trait("Area", "WeightsLoading")]
public sealed class BadDiffusersFolderTests
{
    private static readonly Dictionary<string, BrokenFolder> Corpus = new()
    {
        ["unet folder missing"] = new(f => f.Delete("unet"), typeof(ModelLoadException), ["unet/model.onnx", "unet/config.json", "diffusers layout"]),
        ["vae folder missing"] = new(f => f.Delete("vae"), typeof(ModelLoadException), ["vae_decoder/model.onnx", "vae/config.json"]),
        ["unet weights missing"] = new(f => f.Delete("unet/diffusion_pytorch_model.safetensors"), typeof(ModelLoadException),
            ["unet", "config.json", "no weights in safetensors", "diffusion_pytorch_model.safetensors"]),
        ["text encoder weights only as a PyTorch pickle"] = new(f =>
        {
            File.Move(f.PathOf("text_encoder/model.safetensors"), f.PathOf("text_encoder/pytorch_model.bin"));
        }, typeof(ModelLoadException), ["text_encoder", "PyTorch pickles (.bin)", ".safetensors"]),
        ["unet block type the builder cannot build"] = new(f => f.EditJson("unet/config.json",
            j => j["down_block_types"] = new JsonArray("SimpleCrossAttnDownBlock2D", "DownBlock2D")), typeof(ModelLoadException),
            ["unet/config.json", "\"down_block_types\"", "SimpleCrossAttnDownBlock2D", "cannot build"]),
        ["text encoder activation the builder cannot build"] = new(f => f.EditJson("text_encoder/config.json", j => j["hidden_act"] = "relu"), typeof(ModelLoadException),
            ["text_encoder/config.json", "\"hidden_act\"", "relu"]),
        ["vae configuration is not JSON"] = new(f => f.Write("vae/config.json", "{\"latent_channels\": "), typeof(ModelLoadException), ["vae/config.json"]),
        ["unet tensor missing"] = new(f => Rewrite(f, "unet/diffusion_pytorch_model.safetensors", name => name == "conv_in.weight" ? null : name), typeof(ModelLoadException),
            ["unet/diffusion_pytorch_model.safetensors", "'conv_in.weight'"]),
        ["text encoder with another vocabulary size"] = new(f => f.EditJson("text_encoder/config.json", j => j["vocab_size"] = 1000), typeof(ModelLoadException),
            ["text_encoder/config.json", "vocab_size 1000", "token_embedding.weight"]),
        ["unet with other channels than its weights"] = new(f => f.EditJson("unet/config.json", j => j["block_out_channels"] = new JsonArray(64, 64)), typeof(ModelLoadException),
            ["unet/diffusion_pytorch_model.safetensors"]),
        ["vae weights truncated"] = new(f => f.Truncate("vae/diffusion_pytorch_model.safetensors"), typeof(SafetensorsFormatException),
            ["vae/diffusion_pytorch_model.safetensors"]),
        ["sharded index names a missing shard"] = new(f =>
        {
            f.Delete("unet/diffusion_pytorch_model.safetensors");
            f.Write("unet/diffusion_pytorch_model.safetensors.index.json", """{"metadata": {}, "weight_map": {"conv_in.weight": "diffusion_pytorch_model-00001-of-00002.safetensors"}}""");
        }, typeof(ModelLoadException), ["unet/diffusion_pytorch_model.safetensors.index.json", "diffusion_pytorch_model-00001-of-00002.safetensors", "missing"]),
        ["sharded index names a file outside the folder"] = new(f =>
        {
            f.Delete("unet/diffusion_pytorch_model.safetensors");
            f.Write("unet/diffusion_pytorch_model.safetensors.index.json", """{"weight_map": {"conv_in.weight": "../vae/diffusion_pytorch_model.safetensors"}}""");
        }, typeof(ModelLoadException), ["unet/diffusion_pytorch_model.safetensors.index.json", "not a file name beside it"]),
        ["required safety checker missing"] = new(f => f.Delete("safety_checker"), typeof(ModelLoadException), ["requires the safety checker", "safety_checker/config.json", "EnableSafetyChecker"]),
        ["safety checker configuration the builder cannot build"] = new(f => f.EditJson("safety_checker/config.json",
            j => j["vision_config"]!["hidden_act"] = "tanh"), typeof(ModelLoadException), ["safety_checker/config.json", "vision_config.hidden_act", "tanh"]),
    };

    public static TheoryData<string> Cases() => [.. Corpus.Keys];

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task BrokenFolder_FailsWithASpecificErrorNamingTheFile(string name)
    {
        BrokenFolder broken = Corpus[name];
        using ModelFolderCopy folder = ModelFolderCopy.Of(Fixtures.PathOf("tiny-sd"));
        broken.Damage(folder);

        Exception? error = await Record.ExceptionAsync(async () =>
        {
            using var pipe = await StableDiffusionPipeline.FromPretrainedAsync(folder.Path, cancellationToken: TestContext.Current.CancellationToken);
        });

        ExceptionAssert.Specific(error, broken.Exception, broken.Message);
    }

    [Fact]
    public void UNetFromPretrained_WithAFolderOfNeitherLayout_NamesWhatItLookedFor()
    {
        using ModelFolderCopy folder = ModelFolderCopy.Of(Fixtures.PathOf("tiny-sd"));

        var error = Record.Exception(() => UNetModel.FromPretrained(folder.PathOf("tokenizer")));

        ExceptionAssert.Specific(error, typeof(ModelLoadException), ["tokenizer", "model.onnx", "config.json"]);
    }

    [Fact]
    public async Task GivenComponent_UnderAnotherComponentsName_IsRefused()
    {
        Fixtures.Require();
        using UNetModel unet = UNetModel.FromPretrained(Fixtures.PathOf("tiny-sd/unet"));
        var options = new StableDiffusionPipelineOptions { Components = new Dictionary<string, OnnxModel> { [ModelComponents.TextEncoder] = unet } };

        Exception? error = await Record.ExceptionAsync(() => StableDiffusionPipeline.FromPretrainedAsync(Fixtures.PathOf("tiny-sd"), options, TestContext.Current.CancellationToken));

        ExceptionAssert.Specific(error, typeof(ArgumentException), ["Components[\"text_encoder\"]", "UNetModel", "[\"unet\"]"]);
    }

    [Fact]
    public async Task GivenComponent_ThePipelineDoesNotTake_IsRefused()
    {
        Fixtures.Require();
        using UNetModel unet = UNetModel.FromPretrained(Fixtures.PathOf("tiny-sd/unet"));
        var options = new StableDiffusionPipelineOptions { Components = new Dictionary<string, OnnxModel> { ["controlnet"] = unet } };

        Exception? error = await Record.ExceptionAsync(() => StableDiffusionPipeline.FromPretrainedAsync(Fixtures.PathOf("tiny-sd"), options, TestContext.Current.CancellationToken));

        ExceptionAssert.Specific(error, typeof(ArgumentException), ["'controlnet'", "text_encoder, unet, vae_decoder"]);
    }

    private static void Rewrite(ModelFolderCopy folder, string relative, Func<string, string?> rename)
    {
        string path = folder.PathOf(relative);
        string original = path + ".original";
        File.Move(path, original);
        using (SafetensorsFile source = SafetensorsFile.Open(original))
        {
            WeightFiles.Rewrite(source, path, rename);
        }

        File.Delete(original);
    }

    private sealed record BrokenFolder(Action<ModelFolderCopy> Damage, Type Exception, string[] Message);
}
