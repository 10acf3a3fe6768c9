using StableDiffusion.Imaging;
using StableDiffusion.Pipelines;
using StableDiffusion.SkiaSharp;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Cli.Tests;

/// <summary>sdnet end to end on the tiny model: files, metadata, regeneration, cancellation.</summary>
[Trait("Area", "Cli")]
public sealed class EndToEndTests : IDisposable
{
    private readonly CliRunner _cli = new();

    public void Dispose() => _cli.Dispose();

    [Fact]
    public async Task Generate_WritesThePngWithItsParameters()
    {
        Fixtures.Require();
        string path = _cli.PathOf("astronaut.png");

        CliRun run = await CliRunner.RunAsync([
            "a photo of an astronaut riding a horse on mars", .. CliRunner.Tiny, "--seed", "42", "-n", "blurry, low quality", "-g", "6", "-o", path]);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(path, run.Output.Trim());
        RgbImage image = SkiaImageCodec.Decode(path);
        Assert.Equal((64, 64), (image.Width, image.Height));
        string text = GenerationParameters.FromPng(path)!.ToString();
        Assert.StartsWith(
            $"a photo of an astronaut riding a horse on mars\nNegative prompt: blurry, low quality\n" +
            $"Steps: 4, Sampler: PLMS, CFG scale: 6, Seed: 42, Size: 64x64, Model: {Fixtures.TinyModel}, Version: sdnet ",
            text, StringComparison.Ordinal);
        Assert.Matches(@", Version: sdnet \d+\.\d+\.\d+$", text);
        Assert.Contains("Image: denoising 5/5", run.Error, StringComparison.Ordinal);
        Assert.Contains("loading the model", run.Error, StringComparison.Ordinal);
        Assert.Contains("Seed: 42", run.Error, StringComparison.Ordinal);
        Assert.Equal(["astronaut.png"], _cli.Files());
    }

    [Fact]
    [Trait("Area", "WeightsLoading")]
    public async Task SingleFileModel_WithABaseModel_GeneratesAndRecordsTheFile()
    {
        Fixtures.Require();
        string file = Fixtures.PathOf("tiny-sd-single-file.fp16.safetensors");
        string path = _cli.PathOf("single.png");

        CliRun run = await CliRunner.RunAsync([
            "a castle on a hill", "--model", file, "--base-model", Fixtures.PathOf("tiny-sd"), "-W", "64", "-H", "64", "--steps", "2", "--seed", "1", "-o", path]);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal((64, 64), (SkiaImageCodec.Decode(path).Width, SkiaImageCodec.Decode(path).Height));
        Assert.Contains($"Model: {Path.GetFullPath(file)}", GenerationParameters.FromPng(path)!.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    [Trait("Area", "WeightsLoading")]
    public async Task FileThatIsNotAnSd1Checkpoint_FailsSayingWhatItIs()
    {
        Fixtures.Require();
        string file = _cli.PathOf("vae.safetensors");
        File.Copy(Fixtures.PathOf("tiny-sd/vae/diffusion_pytorch_model.safetensors"), file);

        CliRun run = await CliRunner.RunAsync(["a cat", "--model", file, "-o", _cli.PathOf("none.png")]);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains($"'{file}' holds a VAE alone", run.Error, StringComparison.Ordinal);
        Assert.Equal(["vae.safetensors"], _cli.Files());
    }

    [Fact]
    public async Task WrittenParameters_RoundTripThroughParseAndFormat()
    {
        Fixtures.Require();
        string path = _cli.PathOf("quoted.png");
        CliRun run = await CliRunner.RunAsync(["a \"quoted\", multi\nline prompt: with colons", .. CliRunner.Tiny, "--seed", "7",
            "--scheduler", "dpm++ 2m karras", "-n", "two\nlines", "-o", path]);
        Assert.True(run.ExitCode == 0, run.ToString());

        GenerationParameters parsed = ImageFiles.ReadParameters(path);
        GenerationParameters again = GenerationParameters.Parse(parsed.ToString());

        Assert.Equivalent(parsed, again, strict: true);
        Assert.Equal("a \"quoted\", multi\nline prompt: with colons", parsed.Prompt);
        Assert.Equal("two\nlines", parsed.NegativePrompt);
        Assert.Equal("DPM++ 2M Karras", parsed.Sampler);
        Assert.Equal((7UL, 4, 7.5f, 64, 64), (parsed.Seed!.Value, parsed.NumInferenceSteps, parsed.GuidanceScale, parsed.Width, parsed.Height));
        Assert.Equal(Fixtures.TinyModel, parsed.Model);
    }

    [Fact]
    public async Task FromPng_ReproducesThePixels()
    {
        Fixtures.Require();
        string first = _cli.PathOf("first.png"), second = _cli.PathOf("second.png"), other = _cli.PathOf("other.png");
        CliRun run = await CliRunner.RunAsync(["a watercolor fox", .. CliRunner.Tiny, "--seed", "1234", "--scheduler", "Euler a", "--no-safety-checker", "-o", first]);
        Assert.True(run.ExitCode == 0, run.ToString());

        // No --model, prompt or seed: all come from the PNG (the safety checker setting is not stored).
        CliRun again = await CliRunner.RunAsync(["--from-png", first, "--no-safety-checker", "-o", second]);
        CliRun changed = await CliRunner.RunAsync(["--from-png", first, "--seed", "1235", "--no-safety-checker", "-o", other]);

        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.True(changed.ExitCode == 0, changed.ToString());
        byte[] pixels = CliRunner.Pixels(first);
        Assert.Contains(pixels, b => b != 0); // not a black, flagged image
        Assert.Equal(pixels, CliRunner.Pixels(second));
        Assert.NotEqual(pixels, CliRunner.Pixels(other));
        Assert.Equal("Euler a", ImageFiles.ReadParameters(second).Sampler);
        Assert.Equal(1235UL, ImageFiles.ReadParameters(other).Seed);
    }

    [Fact]
    public async Task Count_GivesEachImageItsOwnReproducibleSeed()
    {
        Fixtures.Require();
        string path = _cli.PathOf("batch.png");
        CliRun run = await CliRunner.RunAsync(["a lighthouse", .. CliRunner.Tiny, "--seed", "10", "-c", "2", "--no-safety-checker", "-o", path]);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal([_cli.PathOf("batch-1.png"), _cli.PathOf("batch-2.png")], run.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(11UL, ImageFiles.ReadParameters(_cli.PathOf("batch-2.png")).Seed);

        CliRun single = await CliRunner.RunAsync(["--from-png", _cli.PathOf("batch-2.png"), "--no-safety-checker", "-o", _cli.PathOf("single.png")]);

        Assert.True(single.ExitCode == 0, single.ToString());
        Assert.Equal(CliRunner.Pixels(_cli.PathOf("batch-2.png")), CliRunner.Pixels(_cli.PathOf("single.png")));
        Assert.NotEqual(CliRunner.Pixels(_cli.PathOf("batch-1.png")), CliRunner.Pixels(_cli.PathOf("batch-2.png")));
    }

    [Fact]
    public async Task SafetyChecker_FlagsAreReported_AndTurningItOffWarns()
    {
        Fixtures.Require();

        // The tiny model's checker has random weights and flags everything: the image is written black, with a warning.
        CliRun on = await CliRunner.RunAsync(["a cat", .. CliRunner.Tiny, "--seed", "1", "-o", _cli.PathOf("on.png")]);
        CliRun off = await CliRunner.RunAsync(["a cat", .. CliRunner.Tiny, "--seed", "1", "--no-safety-checker", "-o", _cli.PathOf("off.png")]);

        Assert.True(on.ExitCode == 0, on.ToString());
        Assert.Contains("the safety checker flagged", on.Error, StringComparison.Ordinal);
        Assert.All(CliRunner.Pixels(_cli.PathOf("on.png")), b => Assert.Equal(0, b));
        Assert.True(off.ExitCode == 0, off.ToString());
        Assert.Contains("warning: The safety checker is disabled", off.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("flagged", off.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ExistingOutput_IsKept_UnlessOverwriteIsGiven()
    {
        Fixtures.Require();
        string path = _cli.PathOf("taken.png");
        await File.WriteAllTextAsync(path, "not an image", TestContext.Current.CancellationToken);

        CliRun refused = await CliRunner.RunAsync(["a cat", .. CliRunner.Tiny, "-o", path]);

        Assert.Equal(CliCommand.UsageError, refused.ExitCode);
        Assert.Contains($"error: '{path}' already exists; pass --overwrite", refused.Error, StringComparison.Ordinal);
        Assert.Equal("not an image", await File.ReadAllTextAsync(path, TestContext.Current.CancellationToken));
        Assert.DoesNotContain("Loading", refused.Error, StringComparison.Ordinal); // refused before loading anything

        CliRun replaced = await CliRunner.RunAsync(["a cat", .. CliRunner.Tiny, "-o", path, "--overwrite"]);

        Assert.True(replaced.ExitCode == 0, replaced.ToString());
        Assert.Equal("a cat", ImageFiles.ReadParameters(path).Prompt);
        Assert.Equal(["taken.png"], _cli.Files());
    }

    [Fact]
    public async Task Cancellation_Returns130_AndLeavesNoPartialFile()
    {
        Fixtures.Require();
        using var cancellation = new CancellationTokenSource();

        // Cancel as the second image starts denoising: the first image is complete, the second must leave nothing behind.
        var error = new TriggerWriter("Image 2/2: denoising 0/", cancellation.Cancel);
        CliRun run = await CliRunner.RunCancellableAsync(["a cat", .. CliRunner.Tiny, "-c", "2", "--seed", "3", "-o", _cli.PathOf("cancelled.png")], error, cancellation.Token);

        Assert.True(run.ExitCode == CliCommand.Cancelled, run.ToString());
        Assert.Contains("Cancelled.", run.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("Image 2/2: denoising 1/", run.Error, StringComparison.Ordinal);
        Assert.Equal(["cancelled-1.png"], _cli.Files());
        Assert.Equal(_cli.PathOf("cancelled-1.png"), run.Output.Trim());
        Assert.Equal(3UL, ImageFiles.ReadParameters(_cli.PathOf("cancelled-1.png")).Seed);
    }

    [Fact]
    public async Task CancellationDuringLoading_Returns130()
    {
        Fixtures.Require();
        using var cancellation = new CancellationTokenSource();
        var error = new TriggerWriter("Loading ", cancellation.Cancel);

        CliRun run = await CliRunner.RunCancellableAsync(["a cat", .. CliRunner.Tiny, "-o", _cli.PathOf("never.png")], error, cancellation.Token);

        Assert.True(run.ExitCode == CliCommand.Cancelled, run.ToString());
        Assert.Empty(_cli.Files());
    }
}

/// <summary>Runs that change the process's working directory, kept away from every other test.</summary>
[Trait("Area", "Cli")]
[Collection(nameof(WorkingDirectoryCollection))]
public sealed class WorkingDirectoryTests : IDisposable
{
    private readonly CliRunner _cli = new();

    public void Dispose() => _cli.Dispose();

    [Fact]
    public async Task DefaultFileName_NamesTheSeed()
    {
        Fixtures.Require();
        string previous = Environment.CurrentDirectory;
        CliRun run;
        try
        {
            Environment.CurrentDirectory = _cli.Folder;
            run = await CliRunner.RunAsync(["a cat", .. CliRunner.Tiny, "--seed", "99"]);
        }
        finally
        {
            Environment.CurrentDirectory = previous;
        }

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(["sdnet-99.png"], _cli.Files());
    }
}

[CollectionDefinition(DisableParallelization = true)]
public sealed class WorkingDirectoryCollection;
