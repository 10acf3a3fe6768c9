using StableDiffusion.Imaging;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Cli.Tests;

/// <summary>Bad command lines: the exit code, and a message that says what was wrong and what to do.</summary>
[Trait("Area", "Cli")]
public sealed class UsageErrorTests : IDisposable
{
    private readonly CliRunner _cli = new();

    public void Dispose() => _cli.Dispose();

    [Theory]
    [InlineData(new[] { "a cat", "--bogus" }, "error: Unrecognized command or argument '--bogus'.")]
    [InlineData(new[] { "--bogus" }, "error: Unknown option '--bogus'.")]
    [InlineData(new[] { "a cat", "-W", "65" }, "error: --width must be a positive multiple of 8 (the VAE works on 8x8 pixel blocks), not 65.")]
    [InlineData(new[] { "a cat", "--height", "0" }, "error: --height must be a positive multiple of 8 (the VAE works on 8x8 pixel blocks), not 0.")]
    [InlineData(new[] { "a cat", "--steps", "many" }, "error: --steps takes a whole number, not 'many'.")]
    [InlineData(new[] { "a cat", "--steps", "0" }, "error: --steps must be at least 1, not 0.")]
    [InlineData(new[] { "a cat", "--count", "-2" }, "error: --count must be at least 1, not -2.")]
    [InlineData(new[] { "a cat", "--guidance", "NaN" }, "error: --guidance must be a finite number, not NaN.")]
    [InlineData(new[] { "a cat", "--seed", "-2" }, "error: --seed takes a whole number from 0 to 18446744073709551615, or -1 for a random seed, not '-2'.")]
    [InlineData(new[] { "a cat", "--seed", "many" }, "error: --seed takes a whole number from 0 to 18446744073709551615, or -1 for a random seed, not 'many'.")]
    [InlineData(new[] { "a cat", "-W", "8200" }, "error: --width must be at most 8192 pixels, not 8200.")]
    [InlineData(new[] { "a cat", "--device-id", "-1" }, "error: --device-id must be 0 or more, not -1.")]
    [InlineData(new[] { "a cat", "--provider", "gpu" }, "error: Unknown --provider 'gpu'; use one of: cpu, cuda, tensorrt, directml, coreml, openvino, rocm.")]
    [InlineData(new[] { "a cat", "--steps" }, "error: Required argument missing for option: '--steps'.")]
    public async Task BadOption_IsAUsageError(string[] args, string message)
    {
        CliRun run = await CliRunner.RunAsync(args);

        Assert.Equal(CliCommand.UsageError, run.ExitCode);
        Assert.Contains(message, run.Error, StringComparison.Ordinal);
        Assert.Contains("Run 'sdnet --help' for the options.", run.Error, StringComparison.Ordinal);
        Assert.Empty(run.Output);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("   ")]
    public async Task MissingPrompt_IsAUsageError(string? prompt)
    {
        CliRun run = await CliRunner.RunAsync(prompt is null ? [] : [prompt]);

        Assert.Equal(CliCommand.UsageError, run.ExitCode);
        Assert.Contains("error: give a prompt", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PromptStartingWithADash_FollowsADoubleDash()
    {
        Fixtures.Require();
        string path = _cli.PathOf("dash.png");

        CliRun run = await CliRunner.RunAsync([.. CliRunner.Tiny, "-o", path, "--", "-a dash first"]);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal("-a dash first", ImageFiles.ReadParameters(path).Prompt);
    }

    [Theory]
    [InlineData("no such sampler", "error: --scheduler: Unknown scheduler \"no such sampler\". Known names (case-insensitive): \"Euler\"")]
    [InlineData("DPM++ SDE Karras", "error: --scheduler: Scheduler \"DPM++ SDE Karras\" is not available")]
    public async Task UnknownScheduler_IsAUsageError_BeforeLoading(string scheduler, string message)
    {
        CliRun run = await CliRunner.RunAsync(["a cat", "--model", "/no/such/model", "--scheduler", scheduler]);

        Assert.Equal(CliCommand.UsageError, run.ExitCode);
        Assert.Contains(message, run.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("Loading", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MissingModelFolder_Fails_NamingTheFolder()
    {
        string missing = _cli.PathOf("no-such-model");

        CliRun run = await CliRunner.RunAsync(["a cat", "--model", missing]);

        Assert.Equal(CliCommand.Failure, run.ExitCode);
        Assert.Contains($"error: The model folder '{missing}' does not exist. Pass a folder in the diffusers ONNX layout, or a Hugging Face repository id", run.Error, StringComparison.Ordinal);
        Assert.Empty(_cli.Files());
    }

    [Fact]
    public async Task FolderThatIsNotAModel_Fails_SayingWhatIsMissing()
    {
        CliRun run = await CliRunner.RunAsync(["a cat", "--model", _cli.Folder]);

        Assert.Equal(CliCommand.Failure, run.ExitCode);
        Assert.Contains($"error: '{Path.Combine(_cli.Folder, "model_index.json")}' does not exist: a diffusers model folder has a model_index.json", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ProviderWithoutItsNativePackage_Fails_NamingThePackage()
    {
        Fixtures.Require();

        CliRun run = await CliRunner.RunAsync(["a cat", .. CliRunner.Tiny, "--provider", "cuda", "-o", _cli.PathOf("cuda.png")]);

        Assert.Equal(CliCommand.Failure, run.ExitCode);
        Assert.Contains("error: The execution provider 'CUDA' requested for", run.Error, StringComparison.Ordinal);
        Assert.Contains("Microsoft.ML.OnnxRuntime.Gpu", run.Error, StringComparison.Ordinal);
        Assert.Empty(_cli.Files());
    }

    [Fact]
    public async Task RequestThePipelineRefuses_IsAUsageError()
    {
        Fixtures.Require();

        // 2000 steps is more than the 1000 training timesteps: only the loaded scheduler can tell.
        CliRun run = await CliRunner.RunAsync(["a cat", "--model", Fixtures.TinyModel, "-W", "64", "-H", "64", "--steps", "2000", "-o", _cli.PathOf("many.png")]);

        Assert.Equal(CliCommand.UsageError, run.ExitCode);
        Assert.Contains("error: PNDMScheduler cannot take more inference steps than the 1000 timesteps", run.Error, StringComparison.Ordinal);
        Assert.Empty(_cli.Files());
    }

    [Theory]
    [InlineData("missing.png", "error: --from-png: '{0}' does not exist.")]
    [InlineData("text.png", "error: --from-png: '{0}' cannot be read. This is not a PNG file: it does not start with the PNG signature.")]
    [InlineData("plain.png", "error: --from-png: '{0}' has no \"parameters\" text chunk")]
    public async Task FromPng_WithoutUsableParameters_IsAUsageError(string name, string message)
    {
        string path = _cli.PathOf(name);
        if (name == "text.png")
        {
            await File.WriteAllTextAsync(path, "hello", TestContext.Current.CancellationToken);
        }
        else if (name == "plain.png")
        {
            await RgbImage.FromRgb(new byte[8 * 8 * 3], 8, 8).SaveAsPngAsync(path, cancellationToken: TestContext.Current.CancellationToken);
        }

        CliRun run = await CliRunner.RunAsync(["--from-png", path]);

        Assert.Equal(CliCommand.UsageError, run.ExitCode);
        Assert.Contains(string.Format(System.Globalization.CultureInfo.InvariantCulture, message, path), run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_ListsEveryOption_AndExitsWithZero()
    {
        CliRun run = await CliRunner.RunAsync(["--help"]);

        Assert.Equal(0, run.ExitCode);
        foreach (string option in new[] { "--model", "--revision", "--negative-prompt", "--width", "--height", "--steps", "--guidance", "--seed",
            "--scheduler", "--count", "--provider", "--device-id", "--no-safety-checker", "--output", "--overwrite", "--from-png", "--offline", "--verbose" })
        {
            Assert.Contains(option, run.Output, StringComparison.Ordinal);
        }

        Assert.Contains("Exit codes: 0 done, 1 failed", run.Output, StringComparison.Ordinal);
    }
}
