using System.Text.Json.Nodes;
using StableDiffusion.Core.Tests.EndToEnd.Support;
using StableDiffusion.Core.Tests.Hardening.Support;
using StableDiffusion.Hub.Tests.FakeHub;
using StableDiffusion.Models;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.Hardening;

/// <summary>
/// Damaged model folders (a copy of a fixture, damaged one way each): every one fails with a specific exception whose
/// message names the file and the problem, never with an error from deep inside ONNX Runtime or a wrong image.
/// </summary>
[Trait("Category", "Hardening")]
public sealed class BadModelFolderTests
{
    private static readonly Dictionary<string, BrokenModel> Corpus = new(StringComparer.Ordinal)
    {
        // Missing pieces.
        ["empty folder"] = new(Tiny, f => f.Clear(), typeof(ModelLoadException), ["model_index.json", "does not exist"]),
        ["folder that does not exist"] = new(Tiny, _ => { }, typeof(ModelLoadException), ["missing-model", "does not exist"],
            Use: path => LoadAsync(Path.Combine(path, "missing-model"))),
        ["unet graph missing"] = new(Tiny, f => f.Delete("unet/model.onnx"), typeof(ModelLoadException), ["unet/model.onnx"]),
        ["text encoder folder missing"] = new(Tiny, f => f.Delete("text_encoder"), typeof(ModelLoadException), ["text_encoder/model.onnx"]),
        ["vae decoder folder missing"] = new(Tiny, f => f.Delete("vae_decoder"), typeof(ModelLoadException), ["vae_decoder/model.onnx"]),
        ["PyTorch weights instead of an ONNX graph"] = new(Tiny, f =>
        {
            f.Delete("unet/model.onnx");
            f.Write("unet/diffusion_pytorch_model.safetensors", "not an onnx graph");
        }, typeof(ModelLoadException), ["PyTorch weights", "unet/model.onnx"]),
        ["required safety checker missing"] = new(Tiny, f => f.Delete("safety_checker"), typeof(ModelLoadException),
            ["requires the safety checker", "EnableSafetyChecker"]),
        ["feature extractor missing"] = new(Tiny, f => f.Delete("feature_extractor"), typeof(ModelLoadException), ["feature_extractor/preprocessor_config.json"]),
        ["scheduler configuration missing"] = new(Tiny, f => f.Delete("scheduler"), typeof(ModelLoadException), ["scheduler/scheduler_config.json"]),
        ["tokenizer folder missing"] = new(Tiny, f => f.Delete("tokenizer"), typeof(ModelLoadException), ["tokenizer", "does not exist"]),
        ["tokenizer vocabulary missing"] = new(Variants, f => f.Delete("tokenizer/vocab.json"), typeof(ModelLoadException), ["tokenizer", "vocab.json"]),
        ["unet external weights missing"] = new(Variants, f => f.Delete("unet/model.onnx.data"), typeof(ModelLoadException), ["unet/model.onnx", "model.onnx.data"]),
        ["vae encoder missing, for image-to-image"] = new(Tiny, f => f.Delete("vae_encoder"), typeof(ModelLoadException), ["vae_encoder/model.onnx", "image-to-image"],
            Use: ImageToImageAsync),

        // Truncated or corrupt files.
        ["unet graph truncated"] = new(Variants, f => f.Truncate("unet/model.onnx"), typeof(ModelLoadException), ["unet/model.onnx", "truncated or corrupt"]),
        ["unet external weights truncated"] = new(Tiny, f => f.Truncate("unet/weights.pb"), typeof(ModelLoadException), ["unet/model.onnx", "truncated or corrupt"]),
        ["text encoder graph truncated"] = new(Tiny, f => f.Truncate("text_encoder/model.onnx", 0.3), typeof(ModelLoadException), ["text_encoder/model.onnx"]),
        ["vae decoder graph is random bytes"] = new(Tiny, f => f.Write("vae_decoder/model.onnx", FakeContent.Bytes(4096, seed: 9)), typeof(ModelLoadException), ["vae_decoder/model.onnx"]),
        ["safety checker graph is empty"] = new(Tiny, f => f.Write("safety_checker/model.onnx", []), typeof(ModelLoadException), ["safety_checker/model.onnx"]),
        ["vae encoder graph truncated, for image-to-image"] = new(Tiny, f => f.Truncate("vae_encoder/model.onnx"), typeof(ModelLoadException), ["vae_encoder/model.onnx"],
            Use: ImageToImageAsync),

        // Graphs of another component, or with other inputs and types.
        ["unet is the text encoder's graph"] = new(Tiny, f => f.Replace("unet/model.onnx", Fixtures.TinyModel, "text_encoder/model.onnx"),
            typeof(ModelLoadException), ["unet", "no input named 'sample'"]),
        ["vae decoder is the vae encoder's graph"] = new(Tiny, f => f.Replace("vae_decoder/model.onnx", Fixtures.TinyModel, "vae_encoder/model.onnx"),
            typeof(ModelLoadException), ["vae_decoder", "'latent_sample'"]),
        ["text encoder is the unet's graph"] = new(Tiny, f =>
        {
            f.Replace("text_encoder/model.onnx", Fixtures.TinyModel, "unet/model.onnx");
            f.Replace("text_encoder/weights.pb", Fixtures.TinyModel, "unet/weights.pb");
        }, typeof(ModelLoadException), ["text_encoder", "'input_ids'"]),
        ["safety checker is the vae decoder's graph"] = new(Tiny, f => f.Replace("safety_checker/model.onnx", Fixtures.TinyModel, "vae_decoder/model.onnx"),
            typeof(ModelLoadException), ["safety_checker", "clip_input"]),
        ["vae encoder is the vae decoder's graph, for image-to-image"] = new(Tiny, f => f.Replace("vae_encoder/model.onnx", Fixtures.TinyModel, "vae_decoder/model.onnx"),
            typeof(ModelLoadException), ["vae_encoder", "'sample'"], Use: ImageToImageAsync),
        ["unet takes int64 samples"] = new(Tiny, f => f.Write("unet/model.onnx", BadGraphs.UNetWithIntegerSample()), typeof(ModelLoadException), ["unet", "'sample'", "Int64"]),
        ["unet timestep is a matrix"] = new(Tiny, f => f.Write("unet/model.onnx", BadGraphs.UNetWithMatrixTimestep()), typeof(ModelLoadException), ["unet", "timestep", "rank 2"]),
        ["unet has no prompt embeddings input"] = new(Tiny, f => f.Write("unet/model.onnx", BadGraphs.UNetWithoutHiddenStates()), typeof(ModelLoadException),
            ["unet", "'encoder_hidden_states'"]),
        ["text encoder takes float ids"] = new(Tiny, f => f.Write("text_encoder/model.onnx", BadGraphs.TextEncoderWithFloatIds()), typeof(ModelLoadException),
            ["text_encoder", "'input_ids'", "Float"]),
        ["text encoder narrower than the unet"] = new(Tiny, f => f.Write("text_encoder/model.onnx", BadGraphs.TextEncoderWithHiddenSize(16)), typeof(ModelLoadException),
            ["16-wide", "expects 32", "different models"]),
        ["vae decoder takes int32 latents"] = new(Tiny, f => f.Write("vae_decoder/model.onnx", BadGraphs.VaeDecoderWithIntegerLatents()), typeof(ModelLoadException),
            ["vae_decoder", "'latent_sample'", "Int32"]),
        ["vae decoder returns rank-3 images"] = new(Tiny, f => f.Write("vae_decoder/model.onnx", BadGraphs.VaeDecoderWithRank3Output()), typeof(ModelLoadException),
            ["vae_decoder", "'sample'", "rank 4"]),
        ["inpainting unet in a text-to-image folder"] = new(Tiny, f =>
        {
            f.Delete("unet/weights.pb");
            f.Replace("unet/model.onnx", Fixtures.TinyInpaintModel, "unet/model.onnx");
            f.Replace("unet/model.onnx.data", Fixtures.TinyInpaintModel, "unet/model.onnx.data");
        }, typeof(InvalidOperationException), ["inpainting UNet", "9 input channels", "StableDiffusionInpaintPipeline"], Use: TextToImageAsync),

        // Malformed or contradictory configuration.
        ["model_index.json is not JSON"] = new(Tiny, f => f.Write("model_index.json", """{ "_class_name": """), typeof(ModelLoadException), ["model_index.json", "not valid JSON"]),
        ["model_index.json is an array"] = new(Tiny, f => f.Write("model_index.json", "[]"), typeof(ModelLoadException), ["model_index.json", "JSON object"]),
        ["model_index.json has no class name"] = new(Tiny, f => f.EditJson("model_index.json", j => j.Remove("_class_name")), typeof(ModelLoadException),
            ["model_index.json", "_class_name"]),
        ["model_index.json requires_safety_checker is text"] = new(Tiny, f => f.EditJson("model_index.json", j => j["requires_safety_checker"] = "yes"),
            typeof(ModelLoadException), ["requires_safety_checker", "true or false"]),
        ["model_index.json component is not a pair"] = new(Tiny, f => f.EditJson("model_index.json", j => j["unet"] = new JsonArray("diffusers")),
            typeof(ModelLoadException), ["\"unet\"", "[library, class]"]),
        ["scheduler configuration is not JSON"] = new(Tiny, f => f.Write("scheduler/scheduler_config.json", "{ beta_start: 0.1 }"), typeof(ModelLoadException),
            ["scheduler/scheduler_config.json"]),
        ["scheduler configuration names an unknown class"] = new(Tiny, f => f.EditJson("scheduler/scheduler_config.json", j => j["_class_name"] = "NoSuchScheduler"),
            typeof(ModelLoadException), ["scheduler_config.json", "NoSuchScheduler"]),
        ["scheduler configuration has an unknown beta schedule"] = new(Tiny, f => f.EditJson("scheduler/scheduler_config.json", j => j["beta_schedule"] = "wobbly"),
            typeof(ModelLoadException), ["scheduler_config.json", "wobbly"]),
        ["scheduler configuration has no training steps"] = new(Tiny, f => f.EditJson("scheduler/scheduler_config.json", j => j["num_train_timesteps"] = -1),
            typeof(ModelLoadException), ["scheduler_config.json", "num_train_timesteps"]),
        ["tokenizer configuration is not JSON"] = new(Tiny, f => f.Write("tokenizer/tokenizer_config.json", "{\"model_max_length\": 77,"), typeof(ModelLoadException),
            ["tokenizer_config.json", "not valid JSON"]),
        ["tokenizer vocabulary and merges from different tokenizers"] = new(Variants,
            f => f.Write("tokenizer/vocab.json", """{"a</w>": 0, "b</w>": 1, "<|startoftext|>": 2, "<|endoftext|>": 3}"""),
            typeof(ModelLoadException), ["merges.txt", "do not belong together"]),
        ["tokenizer special token not in the vocabulary"] = new(Tiny, f => f.EditJson("tokenizer/special_tokens_map.json", j => j["bos_token"] = "<|no-such-token|>"),
            typeof(ModelLoadException), ["special_tokens_map.json", "<|no-such-token|>"]),
        ["tokenizer added token contradicts the vocabulary"] = new(Variants, f => f.EditJson("tokenizer/tokenizer_config.json",
            j => j["added_tokens_decoder"] = JsonNode.Parse("""{"5": {"content": "<|endoftext|>", "special": true}}""")),
            typeof(ModelLoadException), ["tokenizer_config.json", "<|endoftext|>"]),
        ["tokenizer pads to more tokens than the text encoder takes"] = new(Tiny, f => f.EditJson("tokenizer/tokenizer_config.json", j => j["model_max_length"] = 100),
            typeof(ModelRunException), ["text_encoder", "model_max_length", "100"], Use: TextToImageAsync),
        ["preprocessor configuration is not JSON"] = new(Tiny, f => f.Write("feature_extractor/preprocessor_config.json", "{"), typeof(ModelLoadException),
            ["preprocessor_config.json", "not valid JSON"]),
        ["preprocessor configuration crops to nothing"] = new(Tiny, f => f.EditJson("feature_extractor/preprocessor_config.json", j => j["crop_size"] = 0),
            typeof(ModelLoadException), ["preprocessor_config.json", "crop_size"]),
        ["unet configuration is not JSON"] = new(Tiny, f => f.Write("unet/config.json", "{\"sample_size\": "), typeof(ModelLoadException), ["unet/config.json", "not valid JSON"]),
        ["unet configuration sample size is zero"] = new(Tiny, f => f.Write("unet/config.json", """{"sample_size": 0}"""), typeof(ModelLoadException),
            ["unet/config.json", "sample_size"]),
        ["vae configuration has no blocks"] = new(Tiny, f => f.Write("vae_decoder/config.json", """{"block_out_channels": []}"""), typeof(ModelLoadException),
            ["vae_decoder/config.json", "block_out_channels"]),
        ["vae configuration scaling factor is text"] = new(Tiny, f => f.Write("vae_decoder/config.json", """{"scaling_factor": "0.18215"}"""), typeof(ModelLoadException),
            ["vae_decoder/config.json", "scaling_factor"]),
    };

    private static string Tiny => Fixtures.TinyModel;

    private static string Variants => Fixtures.TinyVariantsModel;

    public static TheoryData<string> Cases() => [.. Corpus.Keys];

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task BrokenModel_FailsWithASpecificErrorNamingTheProblem(string name)
    {
        BrokenModel broken = Corpus[name];
        using ModelFolderCopy folder = ModelFolderCopy.Of(broken.Fixture);
        broken.Damage(folder);

        Exception? error = await Record.ExceptionAsync(() => (broken.Use ?? LoadAsync)(folder.Path));

        ExceptionAssert.Specific(error, broken.Exception, broken.Message);
    }

    private static async Task LoadAsync(string path)
    {
        using StableDiffusionPipeline pipeline = await StableDiffusionPipeline.FromPretrainedAsync(path, cancellationToken: TestContext.Current.CancellationToken);
    }

    private static async Task TextToImageAsync(string path)
    {
        using StableDiffusionPipeline pipeline = await StableDiffusionPipeline.FromPretrainedAsync(path, cancellationToken: TestContext.Current.CancellationToken);
        using GenerationResult result = await pipeline.GenerateAsync(new TextToImageRequest("a lighthouse") { Seed = 1, NumInferenceSteps = 2, Height = 64, Width = 64 },
            TestContext.Current.CancellationToken);
    }

    private static async Task ImageToImageAsync(string path)
    {
        using StableDiffusionImg2ImgPipeline pipeline = await StableDiffusionImg2ImgPipeline.FromPretrainedAsync(path, cancellationToken: TestContext.Current.CancellationToken);
        var picture = TestImages.Picture();
        using GenerationResult result = await pipeline.GenerateAsync(new Img2ImgRequest("a lighthouse", picture) { Seed = 1, NumInferenceSteps = 2 },
            TestContext.Current.CancellationToken);
    }

    /// <summary>A way to damage a model folder, how to use it, and the error that must come out.</summary>
    /// <param name="Fixture">The fixture folder to copy.</param>
    /// <param name="Damage">What to do to the copy.</param>
    /// <param name="Exception">The exact exception type expected.</param>
    /// <param name="Message">What the message must name.</param>
    /// <param name="Use">What to do with the damaged folder (default: load a text-to-image pipeline).</param>
    private sealed record BrokenModel(string Fixture, Action<ModelFolderCopy> Damage, Type Exception, string[] Message, Func<string, Task>? Use = null);
}
