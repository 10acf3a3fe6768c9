using StableDiffusion.Pipelines;
using Xunit;

namespace StableDiffusion.Core.Tests.Pipelines;

/// <summary>The A1111 <c>parameters</c> text: what web UIs write, parsed and formatted back.</summary>
[Trait("Area", "Images")]
public sealed class GenerationParametersTests
{
    private const string WebUiText = """
        masterpiece, (a castle:1.2), sunset
        Negative prompt: lowres, bad anatomy
        Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 3528402127, Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.10.1
        """;

    [Fact]
    public void Parse_ReadsWhatAWebUiWrites()
    {
        GenerationParameters p = GenerationParameters.Parse(WebUiText);

        Assert.Equal("masterpiece, (a castle:1.2), sunset", p.Prompt);
        Assert.Equal("lowres, bad anatomy", p.NegativePrompt);
        Assert.Equal(28, p.NumInferenceSteps);
        Assert.Equal("DPM++ 2M Karras", p.Sampler); // the schedule type folds into the sampler name
        Assert.Equal(7f, p.GuidanceScale);
        Assert.Equal(3528402127UL, p.Seed);
        Assert.Equal((512, 768), (p.Width, p.Height));
        Assert.Equal("v1-5-pruned-emaonly", p.Model);
        Assert.Equal(new Dictionary<string, string> { ["Model hash"] = "6ce0161689", ["Version"] = "v1.10.1" }, p.Extra);
    }

    [Fact]
    public void FormatThenParse_KeepsEverything()
    {
        var p = new GenerationParameters
        {
            Prompt = "line one\nline two: \"quoted\", with commas",
            NegativePrompt = "neg, \\ backslash",
            NumInferenceSteps = 25,
            Sampler = "Euler a",
            GuidanceScale = 7.25f,
            Seed = ulong.MaxValue,
            Width = 768,
            Height = 512,
            Model = "org/name",
            Strength = 0.75,
            ClipSkip = 1,
            TextualInversionHashes = new Dictionary<string, string> { ["<toy>"] = "0d447b3b154f" },
            Extra = new Dictionary<string, string> { ["Note"] = "a, b: \"c\"" },
        };

        string text = p.ToString();
        GenerationParameters back = GenerationParameters.Parse(text);

        Assert.Equivalent(p, back, strict: true);
        Assert.Equal(text, back.ToString());
    }

    [Theory]
    [InlineData("Sampler: Euler, Schedule type: Automatic", "Euler", null)]
    [InlineData("Sampler: DPM++ 2M Karras, Schedule type: Karras", "DPM++ 2M Karras", null)]
    [InlineData("Sampler: Euler, Schedule type: Exponential", "Euler", "Exponential")]
    [InlineData("Sampler: \"DPM++ 2M, odd\"", "DPM++ 2M, odd", null)]
    public void Parse_FoldsKarrasScheduleTypesOnly(string settings, string sampler, string? scheduleLeft)
    {
        GenerationParameters p = GenerationParameters.Parse($"a cat\nSteps: 20, {settings}, Size: 64x64");

        Assert.Equal(sampler, p.Sampler);
        Assert.Equal(scheduleLeft, p.Extra.TryGetValue("Schedule type", out string? left) ? left : null);
    }

    [Theory]
    [InlineData("a cat", "The parameters have no settings line (one starting with \"Steps: \").")]
    [InlineData("a cat\nSteps: 20, Sampler: Euler", "The parameters have no Size.")]
    [InlineData("a cat\nSteps: 20, Size: big", "Size 'big' is not WIDTHxHEIGHT.")]
    [InlineData("a cat\nSteps: many, Size: 64x64", "Steps 'many' is not a whole number.")]
    [InlineData("a cat\nSteps: 20, CFG scale: high, Size: 64x64", "CFG scale 'high' is not a number.")]
    [InlineData("a cat\nSteps: 20, Seed: -1, Size: 64x64", "Seed '-1' is not a whole number.")]
    public void Parse_MalformedText_SaysWhatIsWrong(string text, string message)
    {
        FormatException ex = Assert.Throws<FormatException>(() => GenerationParameters.Parse(text));
        Assert.Equal(message, ex.Message);
    }
}
