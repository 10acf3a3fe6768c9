using SkiaSharp;
using StableDiffusion.Imaging;
using StableDiffusion.Pipelines;
using StableDiffusion.SkiaSharp;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Cli.Tests;

/// <summary>The files sdnet reads and writes: the core's PNGs read by --from-png, outputs by extension, seed -1.</summary>
[Trait("Area", "Images")]
public sealed class ImageFilesTests : IDisposable
{
    private readonly CliRunner _cli = new();

    public void Dispose() => _cli.Dispose();

    [Theory]
    [InlineData("a photo of an astronaut, riding: a \"horse\"")]
    [InlineData("宇宙飛行士 🚀")]
    public void TheCoresPng_IsReadByFromPng_WithEverySetting(string prompt)
    {
        var written = new GenerationParameters
        {
            Prompt = prompt,
            NegativePrompt = "blurry\nlow quality",
            NumInferenceSteps = 30,
            Sampler = "DPM++ 2M Karras",
            GuidanceScale = 6.5f,
            Seed = 18446744073709551615,
            Width = 16,
            Height = 8,
            Model = "/models/my model, v2",
            Strength = 0.35,
            Extra = new Dictionary<string, string> { ["Version"] = "sdnet 0.1.0" },
        };
        string path = _cli.PathOf("core.png");
        RgbImage.FromRgb(new byte[16 * 8 * 3], 16, 8).SaveAsPng(path, written);

        GenerationParameters read = ImageFiles.ReadParameters(path);

        Assert.Equal(written.ToString(), read.ToString());
        Assert.Equal((prompt, 30, 6.5f, 18446744073709551615UL, 0.35), (read.Prompt, read.NumInferenceSteps, read.GuidanceScale, read.Seed!.Value, read.Strength!.Value));
        Assert.Equal("/models/my model, v2", read.Model);
    }

    [Theory]
    [InlineData("out.jpg", "Jpeg")]
    [InlineData("out.JPEG", "Jpeg")]
    [InlineData("out.webp", "Webp")]
    [InlineData("out.png", "Png")]
    public async Task Output_IsWrittenInTheFormatOfItsExtension(string name, string format)
    {
        Fixtures.Require();
        string path = _cli.PathOf(name);

        CliRun run = await CliRunner.RunAsync(["a lighthouse", .. CliRunner.Tiny, "--seed", "3", "--no-safety-checker", "-o", path]);

        Assert.True(run.ExitCode == 0, run.ToString());
        using var codec = SKCodec.Create(path);
        Assert.Equal(format, codec.EncodedFormat.ToString());
        Assert.Equal((64, 64), (SkiaImageCodec.Decode(path).Width, SkiaImageCodec.Decode(path).Height));
        Assert.Equal([name], _cli.Files());
    }

    [Fact]
    public async Task SeedMinusOne_PicksARandomSeed_EvenOverAPngsSeed()
    {
        Fixtures.Require();
        string first = _cli.PathOf("first.png"), second = _cli.PathOf("second.png");
        CliRun run = await CliRunner.RunAsync(["a lighthouse", .. CliRunner.Tiny, "--seed", "-1", "--no-safety-checker", "-o", first]);
        Assert.True(run.ExitCode == 0, run.ToString());
        ulong seed = ImageFiles.ReadParameters(first).Seed!.Value;
        Assert.Contains($"Seed: {seed}", run.Error, StringComparison.Ordinal);

        CliRun again = await CliRunner.RunAsync(["--from-png", first, "--seed", "-1", "--no-safety-checker", "-o", second]);

        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.NotEqual(seed, ImageFiles.ReadParameters(second).Seed!.Value);
    }
}
