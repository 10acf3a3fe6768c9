using System.Text.Json;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.Pipelines;

/// <summary>Every pipeline case of reference.json, run through the public API: same images, flags and embeddings as diffusers.</summary>
[Trait("Category", "Parity")]
[Trait("Area", "Pipeline")]
public sealed class TextToImageParityTests
{
    public static IEnumerable<TheoryDataRow<string>> Cases() => Reference.CaseNames("pipeline");

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Case_MatchesDiffusers(string name)
    {
        Reference.Require();
        JsonElement c = Reference.Case("pipeline", name);
        string modelPath = Reference.ResolvePath(Reference.Root.GetProperty("pipeline").GetProperty("model").GetString()!);
        using StableDiffusionPipeline pipe = await StableDiffusionPipeline.FromPretrainedAsync(modelPath, cancellationToken: TestContext.Current.CancellationToken);

        JsonElement prompt = c.GetProperty("prompt");
        TextToImageRequest request = prompt.ValueKind == JsonValueKind.Array
            ? new TextToImageRequest(prompt.EnumerateArray().Select(p => p.GetString()!).ToArray())
            : new TextToImageRequest(prompt.GetString()!);
        var seen = new List<float>();
        request = request with
        {
            NegativePrompt = c.TryGetProperty("negative_prompt", out JsonElement negative) ? negative.GetString() : null,
            Seed = c.GetProperty("seed").GetUInt64(),
            NumInferenceSteps = c.GetProperty("steps").GetInt32(),
            GuidanceScale = c.GetProperty("guidance").GetSingle(),
            GuidanceRescale = c.TryGetProperty("guidance_rescale", out JsonElement rescale) ? rescale.GetSingle() : 0f,
            Eta = c.TryGetProperty("eta", out JsonElement eta) ? eta.GetSingle() : 0f,
            Height = c.GetProperty("height").GetInt32(),
            Width = c.GetProperty("width").GetInt32(),
            NumImagesPerPrompt = c.GetProperty("num_images_per_prompt").GetInt32(),
            Scheduler = ReferenceSchedulers.Create(c.GetProperty("scheduler").GetString()!),
            OnStepEnd = step => seen.Add(step.Timestep),
        };

        using GenerationResult result = await pipe.GenerateAsync(request, TestContext.Current.CancellationToken);

        Assert.Equal(c.GetProperty("timesteps").EnumerateArray().Select(t => t.GetSingle()), seen);
        ArrayAssert.Close(Reference.Array($"pipe/{name}/torch_images").ToSingle(), result.ImageTensor.AsSpan(), 1e-4, $"{name}: images");
        Assert.Equal(c.GetProperty("torch_nsfw").EnumerateArray().Select(f => f.GetBoolean()), result.NsfwContentDetected!);

        float[] embeds = result.PromptEmbeds.AsSpan().ToArray();
        float[] expectedPositive = Reference.Array($"pipe/{name}/prompt_embeds").ToSingle();
        bool guided = request.GuidanceScale > 1;
        ArrayAssert.Close(expectedPositive, embeds.AsSpan(guided ? expectedPositive.Length : 0, expectedPositive.Length), 1e-5, $"{name}: prompt embeds");
        if (guided)
        {
            float[] expectedNegative = Reference.Array($"pipe/{name}/negative_prompt_embeds").ToSingle();
            ArrayAssert.Close(expectedNegative, embeds.AsSpan(0, expectedNegative.Length), 1e-5, $"{name}: negative prompt embeds");
        }
    }
}
