using StableDiffusion.Pipelines;
using Xunit;

namespace StableDiffusion.Core.Tests.Pipelines;

/// <summary>Clip skip and textual inversion hashes in the infotext, as AUTOMATIC1111 writes them ("Clip skip: 2", "TI hashes").</summary>
[Trait("Area", "PromptWeighting")]
[Trait("Area", "TextualInversion")]
public sealed class GenerationParametersPromptTests
{
    private const string Settings = "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512";

    [Theory]
    [InlineData("", null)]
    [InlineData(", Clip skip: 1", null)]
    [InlineData(", Clip skip: 2", 1)]
    [InlineData(", Clip skip: 12", 11)]
    public void ClipSkip_IsReadInDiffusersCount(string setting, int? expected)
    {
        GenerationParameters parsed = GenerationParameters.Parse($"a cat\n{Settings}{setting}");

        Assert.Equal(expected, parsed.ClipSkip);
        Assert.Empty(parsed.Extra);
    }

    [Fact]
    public void ClipSkipAndHashes_AreWrittenAsWebUIsWriteThem_AndReadBack()
    {
        var parameters = new GenerationParameters
        {
            Prompt = "easynegative, <toy>",
            Width = 512,
            Height = 512,
            ClipSkip = 1,
            TextualInversionHashes = new Dictionary<string, string> { ["easynegative"] = "c74b4e810b03", ["<toy>"] = "3fee1db16b8a" },
        };

        string text = parameters.ToString();
        GenerationParameters parsed = GenerationParameters.Parse(text);

        Assert.EndsWith(", Clip skip: 2, TI hashes: \"easynegative: c74b4e810b03, <toy>: 3fee1db16b8a\"", text, StringComparison.Ordinal);
        Assert.Equal(1, parsed.ClipSkip);
        Assert.Equal(parameters.TextualInversionHashes, parsed.TextualInversionHashes);
    }
}
