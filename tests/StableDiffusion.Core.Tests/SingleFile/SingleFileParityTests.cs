using System.Text.Json;
using StableDiffusion.Core.Tests.Pipelines;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.SingleFile;

/// <summary>
/// The single_file section of every reference: diffusers' <c>from_single_file</c> on the original-layout checkpoint with the
/// base model as <c>config</c>, against <c>FromSingleFileAsync</c> with <see cref="StableDiffusionPipelineOptions.BaseModel"/>:
/// text-to-image, image-to-image and inpainting, same images, flags and prompt embeddings.
/// </summary>
[Trait("Category", "Parity")]
[Trait("Area", "WeightsLoading")]
public sealed class SingleFileParityTests
{
    private const string Section = "single_file";
    private static readonly string[] SectionFields = ["file", "base_model", "torch_dtype", "note", "cases", "edit_cases"];
    private static readonly string[] CaseFields = [.. ReferenceCases.CallFields, "height", "width", "timesteps"];

    public static IEnumerable<TheoryDataRow<string>> Cases() => Reference.CaseNames(Section);

    public static IEnumerable<TheoryDataRow<string>> EditCases() => Reference.CaseNames(Section, "edit_cases");

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Case_MatchesDiffusersFromSingleFile(string id)
    {
        (ReferenceSet set, JsonElement c) = Reference.Case(Section, id);
        JsonElement section = set.Root.GetProperty(Section);
        Reference.RequireKnownFields(section, $"{set.Label}: {Section}", SectionFields);
        Reference.RequireKnownFields(c, id, CaseFields);
        Assert.Equal("float32", section.GetProperty("torch_dtype").GetString());
        using StableDiffusionPipeline pipe = await StableDiffusionPipeline.FromSingleFileAsync(
            set.ResolvePath(section.GetProperty("file").GetString()!), Options(set), TestContext.Current.CancellationToken);
        var seen = new List<float>();
        TextToImageRequest request = TextToImageParityTests.Request(set, c, step => seen.Add(step.Timestep));

        using GenerationResult result = await pipe.GenerateAsync(request, TestContext.Current.CancellationToken);

        ReferenceCases.AssertTimesteps(c.GetProperty("timesteps"), seen, id);
        string arrays = $"single/{c.GetProperty("name").GetString()}";
        ReferenceCases.AssertMatches(set, $"{arrays}/torch_images", c, result, id);
        float[] embeds = result.PromptEmbeds.AsSpan().ToArray();
        float[] positive = set.Array($"{arrays}/prompt_embeds").ToSingle();
        float[] negative = set.Array($"{arrays}/negative_prompt_embeds").ToSingle();
        ArrayAssert.Close(negative, embeds.AsSpan(0, negative.Length), 1e-5, $"{id}: negative prompt embeds");
        ArrayAssert.Close(positive, embeds.AsSpan(negative.Length, positive.Length), 1e-5, $"{id}: prompt embeds");
    }

    [Theory]
    [MemberData(nameof(EditCases))]
    public async Task EditCase_MatchesDiffusersFromSingleFile(string id)
    {
        (ReferenceSet set, JsonElement c) = Reference.Case(Section, id, "edit_cases");
        var seen = new List<float>();

        using GenerationResult result = await EditParityTests.RunAsync(set, c, set.ResolvePath(c.GetProperty("model").GetString()!), step => seen.Add(step.Timestep), Options(set));

        ReferenceCases.AssertTimesteps(c.GetProperty("timesteps_run"), seen, id);
        ReferenceCases.AssertMatches(set, $"single/{c.GetProperty("name").GetString()}/torch_images", c, result, id);
    }

    private static StableDiffusionPipelineOptions Options(ReferenceSet set) =>
        new() { BaseModel = set.ResolvePath(set.Root.GetProperty(Section).GetProperty("base_model").GetString()!) };
}
