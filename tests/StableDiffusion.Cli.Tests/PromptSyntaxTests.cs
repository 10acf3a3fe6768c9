using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Cli.Tests;

/// <summary>sdnet's --embedding, --clip-skip and prompt weighting: applied, written to the PNG as web UIs write them, read back by --from-png.</summary>
[Trait("Area", "Cli")]
[Trait("Area", "PromptWeighting")]
[Trait("Area", "TextualInversion")]
public sealed class PromptSyntaxTests : IDisposable
{
    private readonly CliRunner _cli = new();

    public void Dispose() => _cli.Dispose();

    private static string CatToy => Path.Combine(Fixtures.RepositoryRoot, "tests", "reference", "weights", "embeddings", "cat-toy.safetensors");

    [Fact]
    public async Task ClipSkipAndEmbeddings_AreRecordedAsWebUIsWriteThem_AndFromPngReadsThemBack()
    {
        Fixtures.Require();
        string first = _cli.PathOf("first.png"), again = _cli.PathOf("again.png"), plain = _cli.PathOf("plain.png"), without = _cli.PathOf("without.png");
        CliRun run = await CliRunner.RunAsync(["a photo of <toy> on a sofa", .. CliRunner.Tiny, "--seed", "3", "--clip-skip", "2", "--embedding", $"{CatToy}:<toy>", "--no-safety-checker", "-o", first]);
        Assert.True(run.ExitCode == 0, run.ToString());

        CliRun rerun = await CliRunner.RunAsync(["--from-png", first, "--embedding", $"{CatToy}:<toy>", "--no-safety-checker", "-o", again]);
        CliRun noSkip = await CliRunner.RunAsync(["--from-png", first, "--clip-skip", "1", "--embedding", $"{CatToy}:<toy>", "--no-safety-checker", "-o", plain]);
        CliRun missing = await CliRunner.RunAsync(["--from-png", first, "--no-safety-checker", "-o", without]);

        GenerationParameters parameters = ImageFiles.ReadParameters(first);
        Assert.Equal(1, parameters.ClipSkip);
        Assert.Contains(", Clip skip: 2, TI hashes: \"<toy>: 0d447b3b154f\"", parameters.ToString(), StringComparison.Ordinal);
        Assert.True(rerun.ExitCode == 0, rerun.ToString());
        Assert.Equal(CliRunner.Pixels(first), CliRunner.Pixels(again));
        Assert.True(noSkip.ExitCode == 0, noSkip.ToString());
        Assert.Null(ImageFiles.ReadParameters(plain).ClipSkip);
        Assert.NotEqual(CliRunner.Pixels(first), CliRunner.Pixels(plain));
        Assert.True(missing.ExitCode == 0, missing.ToString());
        Assert.Contains("the PNG's prompts use the embeddings <toy>, which are not loaded", missing.Error, StringComparison.Ordinal);
        Assert.NotEqual(CliRunner.Pixels(first), CliRunner.Pixels(without));
    }

    [Fact]
    public async Task PromptWeighting_IsOnByDefault_AndCanBeTurnedOff()
    {
        Fixtures.Require();
        string weighted = _cli.PathOf("weighted.png"), plain = _cli.PathOf("plain.png"), diffusers = _cli.PathOf("diffusers.png");
        string[] common = [.. CliRunner.Tiny, "--seed", "5", "--no-safety-checker"];

        CliRun a = await CliRunner.RunAsync(["a (red:1.5) cube", .. common, "-o", weighted]);
        CliRun b = await CliRunner.RunAsync(["a red cube", .. common, "-o", plain]);
        CliRun c = await CliRunner.RunAsync(["a red cube", .. common, "--no-prompt-weighting", "-o", diffusers]);

        Assert.True(a.ExitCode == 0 && b.ExitCode == 0 && c.ExitCode == 0, $"{a}\n{b}\n{c}");
        Assert.NotEqual(CliRunner.Pixels(plain), CliRunner.Pixels(weighted));
        // A prompt without syntax and within 75 tokens gives diffusers' image either way.
        Assert.Equal(CliRunner.Pixels(diffusers), CliRunner.Pixels(plain));
    }

    [Theory]
    [InlineData("--clip-skip", "0", "--clip-skip must be at least 1, not 0.")]
    [InlineData("--embedding", "no-such-file.safetensors", "--embedding: 'no-such-file.safetensors' does not exist.")]
    public async Task BadValues_AreUsageErrors(string option, string value, string expected)
    {
        CliRun run = await CliRunner.RunAsync(["a cat", option, value]);

        Assert.Equal(2, run.ExitCode);
        Assert.Contains(expected, run.Error, StringComparison.Ordinal);
    }
}
