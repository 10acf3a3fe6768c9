using System.Text.Json;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.Pipelines;

/// <summary>Every text-to-image case of every reference, run through the public API: same images, flags and embeddings as diffusers.</summary>
[Trait("Category", "Parity")]
[Trait("Area", "Pipeline")]
public sealed class TextToImageParityTests
{
    private static readonly string[] SectionFields = ["model", "torch_model", "note", "cases"];
    private static readonly string[] CaseFields = [.. ReferenceCases.CallFields, "height", "width", "timesteps", "onnx_nsfw", "torch_vs_onnx_maxabs"];

    public static IEnumerable<TheoryDataRow<string>> Cases() => Reference.CaseNames("pipeline");

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Case_MatchesDiffusers(string id)
    {
        (ReferenceSet set, JsonElement c) = Reference.Case("pipeline", id);
        Reference.RequireKnownFields(set.Root.GetProperty("pipeline"), $"{set.Label}: pipeline", SectionFields);
        Reference.RequireKnownFields(c, id, CaseFields);
        using StableDiffusionPipeline pipe = await LoadAsync(set);
        var seen = new List<float>();
        TextToImageRequest request = Request(set, c, step => seen.Add(step.Timestep));

        using GenerationResult result = await pipe.GenerateAsync(request, TestContext.Current.CancellationToken);

        ReferenceCases.AssertTimesteps(c.GetProperty("timesteps"), seen, id);
        string arrays = $"pipe/{c.GetProperty("name").GetString()}";
        ReferenceCases.AssertMatches(set, $"{arrays}/torch_images", c, result, id);

        float[] embeds = result.PromptEmbeds.AsSpan().ToArray();
        float[] expectedPositive = set.Array($"{arrays}/prompt_embeds").ToSingle();
        bool guided = request.GuidanceScale > 1;
        ArrayAssert.Close(expectedPositive, embeds.AsSpan(guided ? expectedPositive.Length : 0, expectedPositive.Length), 1e-5, $"{id}: prompt embeds");
        if (guided)
        {
            float[] expectedNegative = set.Array($"{arrays}/negative_prompt_embeds").ToSingle();
            ArrayAssert.Close(expectedNegative, embeds.AsSpan(0, expectedNegative.Length), 1e-5, $"{id}: negative prompt embeds");
        }
    }

    private static Task<StableDiffusionPipeline> LoadAsync(ReferenceSet set) =>
        StableDiffusionPipeline.FromPretrainedAsync(set.ResolvePath(set.Root.GetProperty("pipeline").GetProperty("model").GetString()!),
            cancellationToken: TestContext.Current.CancellationToken);

    /// <summary>The request of a text-to-image case.</summary>
    internal static TextToImageRequest Request(ReferenceSet set, JsonElement c, Action<StepEndContext> onStepEnd) =>
        ReferenceCases.WithCallSettings(new TextToImageRequest(ReferenceCases.Prompts(c)), set, c, onStepEnd) with
        {
            Height = c.GetProperty("height").GetInt32(),
            Width = c.GetProperty("width").GetInt32(),
        };
}
