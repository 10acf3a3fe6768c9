using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Cli.Tests;

/// <summary>sdnet's LoRAs: <c>--lora file[:scale]</c>, <c>&lt;lora:name:scale&gt;</c> tags from <c>--lora-dir</c>, and the PNG round trip.</summary>
[Trait("Area", "Lora")]
public sealed class LoraTests : IDisposable
{
    private static readonly string LoraFolder = Path.Combine(Fixtures.RepositoryRoot, "tests", "reference", "weights", "lora");
    private readonly CliRunner _cli = new();

    public void Dispose() => _cli.Dispose();

    [Fact]
    public async Task LoraOption_IsRecordedAsATag_AndFromPngAppliesItAgain()
    {
        Fixtures.Require();
        string plain = _cli.PathOf("plain.png"), styled = _cli.PathOf("styled.png"), again = _cli.PathOf("again.png"), tagged = _cli.PathOf("tagged.png");
        string[] common = [.. CliRunner.Tiny, "--seed", "3", "--no-safety-checker"];

        CliRun run0 = await CliRunner.RunAsync(["a castle on a hill", .. common, "-o", plain]);
        CliRun run1 = await CliRunner.RunAsync(["a castle on a hill", .. common, "--lora", Path.Combine(LoraFolder, "style.peft.safetensors") + ":0.8", "-o", styled]);
        CliRun run2 = await CliRunner.RunAsync(["--from-png", styled, "--lora-dir", LoraFolder, "--no-safety-checker", "-o", again]);
        CliRun run3 = await CliRunner.RunAsync(["a castle <lora:style.peft:0.8> on a hill", .. common, "--lora-dir", LoraFolder, "-o", tagged]);

        foreach (CliRun run in new[] { run0, run1, run2, run3 })
        {
            Assert.True(run.ExitCode == 0, run.ToString());
        }

        Assert.Equal("a castle on a hill <lora:style.peft:0.8>", ImageFiles.ReadParameters(styled).Prompt);
        Assert.Equal("a castle <lora:style.peft:0.8> on a hill", ImageFiles.ReadParameters(tagged).Prompt);
        Assert.NotEqual(CliRunner.Pixels(plain), CliRunner.Pixels(styled));
        Assert.Equal(CliRunner.Pixels(styled), CliRunner.Pixels(again));
        Assert.Equal(CliRunner.Pixels(styled), CliRunner.Pixels(tagged));
    }

    [Fact]
    public async Task PromptWithoutTags_ReachesTheModelAsTyped()
    {
        Fixtures.Require();
        string bare = _cli.PathOf("bare.png"), comma = _cli.PathOf("comma.png");
        string[] common = [.. CliRunner.Tiny, "--seed", "3", "--no-safety-checker", "--lora-dir", LoraFolder];

        CliRun run0 = await CliRunner.RunAsync(["a castle on a hill", .. common, "-o", bare]);
        CliRun run1 = await CliRunner.RunAsync(["a castle on a hill,", .. common, "-o", comma]);

        Assert.True(run0.ExitCode == 0, run0.ToString());
        Assert.True(run1.ExitCode == 0, run1.ToString());
        // The trailing comma is a token of the prompt: only tags are taken out of it.
        Assert.NotEqual(CliRunner.Pixels(bare), CliRunner.Pixels(comma));
        Assert.Equal("a castle on a hill,", ImageFiles.ReadParameters(comma).Prompt);
    }

    [Fact]
    public async Task MissingLoras_AreUsageErrors_NamingTheFile()
    {
        Fixtures.Require();
        string missing = _cli.PathOf("missing.safetensors");

        CliRun option = await CliRunner.RunAsync(["a fox", .. CliRunner.Tiny, "--lora", missing + ":0.5", "-o", _cli.PathOf("a.png")]);
        CliRun tag = await CliRunner.RunAsync(["a fox <lora:nowhere:1>", .. CliRunner.Tiny, "--lora-dir", LoraFolder, "-o", _cli.PathOf("b.png")]);
        CliRun weight = await CliRunner.RunAsync(["a fox <lora:style.peft:lots>", .. CliRunner.Tiny, "--lora-dir", LoraFolder, "-o", _cli.PathOf("c.png")]);

        Assert.Equal(2, option.ExitCode);
        Assert.Contains("missing.safetensors' does not exist", option.Error, StringComparison.Ordinal);
        Assert.Equal(2, tag.ExitCode);
        Assert.Contains("nowhere.safetensors", tag.Error, StringComparison.Ordinal);
        Assert.Equal(2, weight.ExitCode);
        Assert.Contains("'lots'", weight.Error, StringComparison.Ordinal);
        Assert.Empty(_cli.Files());
    }
}
