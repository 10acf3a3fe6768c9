using System.Text.Json;
using StableDiffusion.Core.Tests.Pipelines;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.Loading;

/// <summary>
/// The textual inversion and clip skip cases with the model switched from the ONNX export to the diffusers folder of the
/// same weights: the text encoder built from config.json is edited from its built graph (not from a model.onnx), and the
/// images and prompt embeddings are the ones the export gives, diffusers' own.
/// </summary>
[Trait("Category", "Parity")]
[Trait("Area", "WeightsLoading")]
public sealed class DiffusersTextConditioningParityTests
{
    public static IEnumerable<TheoryDataRow<string>> TextualInversionCases() => Reference.CaseNames("textual_inversion");

    public static IEnumerable<TheoryDataRow<string>> ClipSkipCases() => Reference.CaseNames("clip_skip");

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
