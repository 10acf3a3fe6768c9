using StableDiffusion.Core.Tests.Weights;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.Lora;

/// <summary>
/// A LoRA on the text encoder together with a textual inversion and clip skip: the three edit the same session, and
/// each change must keep the others.
/// </summary>
[Trait("Area", "Lora")]
[Trait("Area", "TextualInversion")]
public sealed class LoraTextConditioningTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("sd-lora-ti-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task AnEmbeddingAndATextEncoderLora_BothApply_AndUnloadingTheLoraKeepsTheEmbedding()
    {
        Fixtures.Require();
        using StableDiffusionPipeline pipe = await StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel,
            new StableDiffusionPipelineOptions { EnableSafetyChecker = false }, TestContext.Current.CancellationToken);
        float[] plain = Embeds(pipe, "a red cube");

        pipe.LoadLoraWeights(LoraFiles.Path("style.peft.safetensors"), "style");
        float[] styled = Embeds(pipe, "a red cube");
        Assert.True(MaxDifference(plain, styled) > 1e-3, "The LoRA's text encoder layers should change the prompt embeddings.");

        // Loading the embedding rebuilds the text encoder while the LoRA is applied: the LoRA must stay merged.
        pipe.LoadTextualInversion(CubeEmbedding());
        Assert.Equal(Embeds(pipe, "a red cube"), Embeds(pipe, "a red <cube>"));
        Assert.True(MaxDifference(styled, Embeds(pipe, "a red <cube>")) < 1e-5, "The LoRA should still apply after the embedding was loaded.");

        // Clip skip adds outputs to the same session: the LoRA and the embedding stay.
        float[] skipped = Embeds(pipe, "a red <cube>", clipSkip: 1);
        Assert.Equal(Embeds(pipe, "a red cube", clipSkip: 1), skipped);

        // Taking the LoRA off rebuilds the text encoder again: the embedding must stay loaded and effective.
        pipe.UnloadLoraWeights();
        Assert.Equal(["<cube>"], pipe.TextualInversionTokens);
        float[] unloaded = Embeds(pipe, "a red <cube>");
        Assert.Equal(Embeds(pipe, "a red cube"), unloaded);
        Assert.True(MaxDifference(plain, unloaded) < 1e-5, "Without the LoRA the embeddings should be the base model's again.");
        Assert.True(MaxDifference(skipped, Embeds(pipe, "a red <cube>", clipSkip: 1)) > 1e-3, "Clip skip's hidden states should lose the LoRA too.");
    }

    // The vector of 'cube' under a new token: a prompt with the token encodes exactly as one with 'cube' when the
    // embedding is in effect, and differently (as the token's characters) when it is not.
    private string CubeEmbedding()
    {
        using var weights = StableDiffusion.Weights.SafetensorsFile.Open(Path.Combine(Fixtures.PathOf("tiny-sd"), "text_encoder", "model.safetensors"));
        var table = weights.Find("text_model.embeddings.token_embedding.weight")!;
        float[] cube = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(weights.GetBytes(table)).Slice(11353 * 32, 32).ToArray();
        string path = Path.Combine(_folder, "cube.safetensors");
        SafetensorsWriter.Write(path, [SafetensorsWriter.Tensor.Float32("<cube>", [32], cube)]);
        return path;
    }

    private static float[] Embeds(StableDiffusionPipeline pipe, string prompt, int? clipSkip = null)
    {
        using GenerationResult result = pipe.Generate(new TextToImageRequest(prompt) { NumInferenceSteps = 1, Height = 32, Width = 32, Seed = 1, GuidanceScale = 1f, ClipSkip = clipSkip });
        return result.PromptEmbeds.AsSpan().ToArray();
    }

    private static float MaxDifference(float[] a, float[] b) => a.Zip(b).Max(p => Math.Abs(p.First - p.Second));
}
