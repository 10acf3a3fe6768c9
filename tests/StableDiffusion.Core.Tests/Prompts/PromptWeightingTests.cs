using StableDiffusion.Core.Tests.EndToEnd.Support;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.Prompts;

/// <summary>
/// Prompt weighting and clip skip through the public API on the tiny model, against expectations worked out by hand from
/// the text encoder's own outputs: the weighted embeddings are the plain hidden states times each token's weight times
/// one factor per row (the mean restoration), long prompts are chunks encoded on their own, and the default is diffusers'.
/// </summary>
[Trait("Area", "PromptWeighting")]
public sealed class PromptWeightingTests(TinyPipelines pipelines)
{
    private const int Bos = 49406, Eos = 49407, A = 320, Red = 736, Cube = 11353, Dog = 1929;
    private const int Width = 32;

    [Fact]
    public void WeightsOfOne_GiveThePlainPromptsEmbeddings()
    {
        float[] plain = Embeds(pipelines.TextToImage, new TextToImageRequest("a red cube"));
        float[] weighted = Embeds(pipelines.TextToImage, new TextToImageRequest("a (red:1.0) cube") { PromptWeighting = true });

        Assert.Equal(plain, weighted);
    }

    [Fact]
    public void Weights_MultiplyTheirTokensHiddenStates_ThenOneFactorScalesTheRow()
    {
        // The tiny encoder's final layer norm is the identity, so every position averages to zero and the restoring
        // factor (a ratio of two means near zero) is arbitrary; what holds is its shape: hidden x weight x one factor.
        // PromptChunksTests checks the factor itself; the prompt_weighting parity cases check it on a real layer norm.
        float[] hidden = Encode(pipelines.TextToImage, [Bos, A, Red, Cube, .. Enumerable.Repeat(Eos, 73)]);

        float[] weighted = Embeds(pipelines.TextToImage, new TextToImageRequest("a (red:1.5) [cube]") { PromptWeighting = true });

        float[] weights = [1, 1, 1.5f, (float)(1 / 1.1), .. Enumerable.Repeat(1f, 73)];
        int largest = Enumerable.Range(0, hidden.Length).MaxBy(i => Math.Abs(hidden[i]));
        double factor = weighted[largest] / (hidden[largest] * (double)weights[largest / Width]);
        for (int i = 0; i < hidden.Length; i++)
        {
            double expected = hidden[i] * weights[i / Width] * factor;
            Assert.True(Math.Abs(weighted[i] - expected) <= 1e-5 * Math.Abs(factor), $"position {i / Width}, channel {i % Width}: {weighted[i]} vs {expected}");
        }
    }

    [Fact]
    public void ALongPrompt_IsChunksOf75TokensEncodedOnTheirOwn()
    {
        string prompt = string.Join(' ', Enumerable.Repeat("a", 78)) + " red dog";

        float[] weighted = Embeds(pipelines.TextToImage, new TextToImageRequest(prompt) { PromptWeighting = true });

        float[] first = Encode(pipelines.TextToImage, [Bos, .. Enumerable.Repeat(A, 75), Eos]);
        float[] second = Encode(pipelines.TextToImage, [Bos, A, A, A, Red, Dog, .. Enumerable.Repeat(Eos, 70), Eos]);
        Assert.Equal(154 * Width, weighted.Length);
        ArrayAssert.Close([.. first, .. second], weighted, 1e-6, "two chunks");
    }

    [Fact]
    public void Break_StartsTheNextChunk()
    {
        float[] weighted = Embeds(pipelines.TextToImage, new TextToImageRequest("a red cube BREAK a dog") { PromptWeighting = true });

        float[] first = Encode(pipelines.TextToImage, [Bos, A, Red, Cube, .. Enumerable.Repeat(Eos, 73)]);
        float[] second = Encode(pipelines.TextToImage, [Bos, A, Dog, .. Enumerable.Repeat(Eos, 74)]);
        ArrayAssert.Close([.. first, .. second], weighted, 1e-6, "chunks around BREAK");
    }

    [Fact]
    public void ByDefault_PromptsArePlainAndCutAt77Tokens()
    {
        string prompt = "(red:1.5) " + string.Join(' ', Enumerable.Repeat("a", 100));

        float[] embeds = Embeds(pipelines.TextToImage, new TextToImageRequest(prompt));

        Assert.Equal(77 * Width, embeds.Length);
        int[] ids = pipelines.TextToImage.Tokenizer.Encode(prompt).InputIds.ToArray();
        Assert.Equal(Encode(pipelines.TextToImage, ids), embeds);
    }

    [Fact]
    public async Task ThePipelineOption_TurnsWeightingOn_AndARequestCanTurnItOff()
    {
        Fixtures.Require();
        using var pipe = await StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel, new StableDiffusionPipelineOptions { PromptWeighting = true }, TestContext.Current.CancellationToken);
        string prompt = string.Join(' ', Enumerable.Repeat("a", 100));

        Assert.Equal(154 * Width, Embeds(pipe, new TextToImageRequest(prompt)).Length);
        Assert.Equal(77 * Width, Embeds(pipe, new TextToImageRequest(prompt) { PromptWeighting = false }).Length);
    }

    [Fact]
    public async Task ClipSkip_TakesTheEarlierLayerForThePromptOnly_OrForBothWhenWeighted()
    {
        Fixtures.Require();
        using var pipe = await StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel, cancellationToken: TestContext.Current.CancellationToken);
        int[] prompt = [.. pipe.Tokenizer.Encode("a red cube").InputIds.ToArray()];
        int[] empty = [.. pipe.Tokenizer.Encode(string.Empty).InputIds.ToArray()];

        float[] plain = Embeds(pipe, new TextToImageRequest("a red cube") { ClipSkip = 1 }, guided: true);
        float[] weighted = Embeds(pipe, new TextToImageRequest("a red cube") { ClipSkip = 1, PromptWeighting = true }, guided: true);

        Assert.Equal(2, pipe.TextEncoder.MaxClipSkip);
        float[] promptSkipped = pipe.TextEncoder.Encode(prompt, 1, clipSkip: 1).AsSpan().ToArray();
        Assert.Equal([.. pipe.TextEncoder.Encode(empty, 1).AsSpan(), .. promptSkipped], plain);
        Assert.Equal([.. pipe.TextEncoder.Encode(empty, 1, clipSkip: 1).AsSpan(), .. promptSkipped], weighted);
        Assert.NotEqual(pipe.TextEncoder.Encode(prompt, 1).AsSpan().ToArray(), promptSkipped);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    public async Task ClipSkip_OutsideTheLayers_IsRefusedNamingTheSetting(int clipSkip)
    {
        Fixtures.Require();
        using var pipe = await StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel, cancellationToken: TestContext.Current.CancellationToken);

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => pipe.Generate(new TextToImageRequest("a") { ClipSkip = clipSkip, NumInferenceSteps = 1 }, cancellationToken: TestContext.Current.CancellationToken));

        Assert.Contains("ClipSkip", ex.Message, StringComparison.Ordinal);
        Assert.Equal(nameof(DiffusionRequest.ClipSkip), ex.ParamName);
        Assert.Equal(clipSkip, ex.ActualValue);
    }

    // The prompt embeddings of a one-step generation; without guidance unless asked ([negative; prompt] then).
    private static float[] Embeds(StableDiffusionPipeline pipe, TextToImageRequest request, bool guided = false)
    {
        using GenerationResult result = pipe.Generate(request with
        {
            NumInferenceSteps = 1,
            Height = 32,
            Width = 32,
            Seed = 1,
            GuidanceScale = guided ? 7.5f : 1f,
        });
        return result.PromptEmbeds.AsSpan().ToArray();
    }

    private static float[] Encode(StableDiffusionPipeline pipe, int[] ids) => pipe.TextEncoder.Encode(ids, 1).AsSpan().ToArray();
}
