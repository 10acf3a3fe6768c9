using System.Text.Json;
using StableDiffusion.Core.Tests.Pipelines;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.Lora;

/// <summary>
/// Every LoRA case of every reference through the public API: the same adapters (PEFT and kohya files, LoCon, two at
/// once with weights, per-call scales) give diffusers' images and prompt embeddings, unfused and fused.
/// </summary>
[Trait("Category", "Parity")]
[Trait("Area", "Lora")]
public sealed class LoraParityTests
{
    private static readonly string[] SectionFields = ["model", "torch_model", "note", "cases"];
    private static readonly string[] CaseFields = [.. ReferenceCases.CallFields, "height", "width", "timesteps", "loras", "scale"];

    public static IEnumerable<TheoryDataRow<string>> Cases() => Reference.CaseNames("lora");

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Case_MatchesDiffusers(string id)
    {
        (ReferenceSet set, JsonElement c) = Reference.Case("lora", id);
        using StableDiffusionPipeline pipe = await LoadWithAdaptersAsync(set, c, id);
        var seen = new List<float>();
        TextToImageRequest request = Request(set, c, step => seen.Add(step.Timestep));

        using GenerationResult result = await pipe.GenerateAsync(request, TestContext.Current.CancellationToken);

        ReferenceCases.AssertTimesteps(c.GetProperty("timesteps"), seen, id);
        AssertMatches(set, c, result, id);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Case_Fused_MatchesDiffusers_AndUnfuseRestoresIt(string id)
    {
        (ReferenceSet set, JsonElement c) = Reference.Case("lora", id);
        using StableDiffusionPipeline pipe = await LoadWithAdaptersAsync(set, c, id);
        TextToImageRequest request = Request(set, c, null);

        pipe.FuseLora(request.LoraScale ?? 1f);
        using (GenerationResult fused = await pipe.GenerateAsync(request with { LoraScale = 0.25f }, TestContext.Current.CancellationToken))
        {
            // Fused adapters keep the scale they were fused at, whatever the call's.
            AssertMatches(set, c, fused, $"{id} (fused)");
        }

        pipe.UnfuseLora();
        using GenerationResult unfused = await pipe.GenerateAsync(request, TestContext.Current.CancellationToken);
        AssertMatches(set, c, unfused, $"{id} (unfused after fusing)");
    }

    private static async Task<StableDiffusionPipeline> LoadWithAdaptersAsync(ReferenceSet set, JsonElement c, string id)
    {
        Reference.RequireKnownFields(set.Root.GetProperty("lora"), $"{set.Label}: lora", SectionFields);
        Reference.RequireKnownFields(c, id, CaseFields);
        StableDiffusionPipeline pipe = await StableDiffusionPipeline.FromPretrainedAsync(
            set.ResolvePath(set.Root.GetProperty("lora").GetProperty("model").GetString()!), cancellationToken: TestContext.Current.CancellationToken);
        var names = new List<string>();
        var weights = new List<float>();
        foreach (JsonElement lora in c.GetProperty("loras").EnumerateArray())
        {
            Reference.RequireKnownFields(lora, $"{id}: loras", "file", "adapter", "weight");
            names.Add(pipe.LoadLoraWeights(Path.Combine(set.Folder, lora.GetProperty("file").GetString()!), lora.GetProperty("adapter").GetString()));
            weights.Add(lora.GetProperty("weight").GetSingle());
        }

        pipe.SetAdapters(names, weights);
        return pipe;
    }

    private static TextToImageRequest Request(ReferenceSet set, JsonElement c, Action<StepEndContext>? onStepEnd) =>
        ReferenceCases.WithCallSettings(new TextToImageRequest(ReferenceCases.Prompts(c)), set, c, onStepEnd) with
        {
            Height = c.GetProperty("height").GetInt32(),
            Width = c.GetProperty("width").GetInt32(),
            LoraScale = c.TryGetProperty("scale", out JsonElement scale) ? scale.GetSingle() : null,
        };

    private static void AssertMatches(ReferenceSet set, JsonElement c, GenerationResult result, string what)
    {
        string arrays = $"lora/{c.GetProperty("name").GetString()}";
        ReferenceCases.AssertMatches(set, $"{arrays}/torch_images", c, result, what);
        float[] embeds = result.PromptEmbeds.AsSpan().ToArray();
        float[] positive = set.Array($"{arrays}/prompt_embeds").ToSingle();
        bool guided = c.GetProperty("guidance").GetSingle() > 1;
        ArrayAssert.Close(positive, embeds.AsSpan(guided ? positive.Length : 0, positive.Length), 1e-5, $"{what}: prompt embeds");
        if (guided)
        {
            float[] negative = set.Array($"{arrays}/negative_prompt_embeds").ToSingle();
            ArrayAssert.Close(negative, embeds.AsSpan(0, negative.Length), 1e-5, $"{what}: negative prompt embeds");
        }
    }
}
