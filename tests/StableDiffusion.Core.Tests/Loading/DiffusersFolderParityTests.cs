using System.Text.Json;
using StableDiffusion.Core.Tests.Pipelines;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.Loading;

/// <summary>
/// Every text-to-image, image-to-image and inpainting case of every reference, with the model switched from the ONNX export
/// to the diffusers folder of the same weights (and the inpainting UNet given as a component): the graphs are built from
/// config.json and the safetensors files, and the images are diffusers' own. The textual inversion and clip skip cases too:
/// the built text encoder is edited from its built graph (not from a model.onnx) and gives the export's images.
/// </summary>
[Trait("Category", "Parity")]
[Trait("Area", "WeightsLoading")]
public sealed class DiffusersFolderParityTests
{
    public static IEnumerable<TheoryDataRow<string>> PipelineCases() => Reference.CaseNames("pipeline");

    public static IEnumerable<TheoryDataRow<string>> EditCases() => Reference.CaseNames("edit");

    public static IEnumerable<TheoryDataRow<string>> TextualInversionCases() => Reference.CaseNames("textual_inversion");

    public static IEnumerable<TheoryDataRow<string>> ClipSkipCases() => Reference.CaseNames("clip_skip");

    [Theory]
    [MemberData(nameof(PipelineCases))]
    public async Task PipelineCase_FromTheDiffusersFolder_MatchesDiffusers(string id)
    {
        (ReferenceSet set, JsonElement c) = Reference.Case("pipeline", id);
        using DiffusersModel model = DiffusersModel.For(set.ResolvePath(set.Root.GetProperty("pipeline").GetProperty("model").GetString()!));
        using StableDiffusionPipeline pipe = await StableDiffusionPipeline.FromPretrainedAsync(model.Path, model.Options, TestContext.Current.CancellationToken);
        var seen = new List<float>();

        using GenerationResult result = await pipe.GenerateAsync(TextToImageParityTests.Request(set, c, step => seen.Add(step.Timestep)), TestContext.Current.CancellationToken);

        ReferenceCases.AssertTimesteps(c.GetProperty("timesteps"), seen, id);
        ReferenceCases.AssertMatches(set, $"pipe/{c.GetProperty("name").GetString()}/torch_images", c, result, id);
    }

    [Theory]
    [MemberData(nameof(EditCases))]
    public async Task EditCase_FromTheDiffusersFolder_MatchesDiffusers(string id)
    {
        (ReferenceSet set, JsonElement c) = Reference.Case("edit", id);
        using DiffusersModel model = DiffusersModel.For(set.ResolvePath(c.GetProperty("model").GetString()!));
        var seen = new List<float>();

        using GenerationResult result = await EditParityTests.RunAsync(set, c, model.Path, step => seen.Add(step.Timestep), model.Options);

        ReferenceCases.AssertTimesteps(c.GetProperty("timesteps_run"), seen, id);
        ReferenceCases.AssertMatches(set, $"edit/{c.GetProperty("name").GetString()}/torch_images", c, result, id);
    }

    [Theory]
    [MemberData(nameof(TextualInversionCases))]
    public async Task TextualInversionCase_FromTheDiffusersFolder_MatchesDiffusers(string id)
    {
        (ReferenceSet set, JsonElement c) = Reference.Case("textual_inversion", id);
        using DiffusersModel model = DiffusersModel.For(set.ResolvePath(set.Root.GetProperty("textual_inversion").GetProperty("model").GetString()!));
        using StableDiffusionPipeline pipe = await StableDiffusionPipeline.FromPretrainedAsync(model.Path, model.Options, TestContext.Current.CancellationToken);
        foreach (JsonElement embedding in c.GetProperty("embeddings").EnumerateArray())
        {
            pipe.LoadTextualInversion(set.ResolvePath(embedding.GetProperty("file").GetString()!),
                embedding.TryGetProperty("token", out JsonElement token) ? token.GetString() : null);
        }

        await PromptCases.RunAndAssertAsync(pipe, set, c, PromptCases.Request(set, c), $"ti/{c.GetProperty("name").GetString()}", id);
    }

    [Theory]
    [MemberData(nameof(ClipSkipCases))]
    public async Task ClipSkipCase_FromTheDiffusersFolder_MatchesDiffusers(string id)
    {
        (ReferenceSet set, JsonElement c) = Reference.Case("clip_skip", id);
        using DiffusersModel model = DiffusersModel.For(set.ResolvePath(set.Root.GetProperty("clip_skip").GetProperty("model").GetString()!));
        using StableDiffusionPipeline pipe = await StableDiffusionPipeline.FromPretrainedAsync(model.Path, model.Options, TestContext.Current.CancellationToken);
        TextToImageRequest request = PromptCases.Request(set, c) with { ClipSkip = c.GetProperty("clip_skip").GetInt32() };

        await PromptCases.RunAndAssertAsync(pipe, set, c, request, $"clip_skip/{c.GetProperty("name").GetString()}", id);
    }
}
