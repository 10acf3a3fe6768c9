using SkiaSharp;
using StableDiffusion.Imaging;
using StableDiffusion.Pipelines;
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

    [Fact]
    public async Task BaseModelWithoutACheckpointFile_IsAUsageError()
    {
        CliRun run = await CliRunner.RunAsync(["a cat", "--base-model", "some/base"]);

        Assert.Equal(CliCommand.UsageError, run.ExitCode);
        Assert.Contains("error: --base-model applies to a checkpoint file given with --model; 'onnx-community/stable-diffusion-v1-5-ONNX' is a model folder or repository", run.Error, StringComparison.Ordinal);
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
        Assert.DoesNotContain("(Parameter '", run.Error, StringComparison.Ordinal); // .NET's suffix is for C# callers, not the tool's users
        Assert.DoesNotContain("Actual value was", run.Error, StringComparison.Ordinal);
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

    [Theory]
    [InlineData("bad..name", "error: The model 'bad..name' is neither a folder here ('{0}' does not exist) nor a Hugging Face repository id ('name' or 'namespace/name' of letters, digits, '-', '_' and '.', such as 'onnx-community/stable-diffusion-v1-5-ONNX').")]
    [InlineData("org/na me", "error: The model 'org/na me' is neither a folder here ('{0}' does not exist) nor a Hugging Face repository id")]
    [InlineData("-org/name", "error: The model '-org/name' is neither a folder here ('{0}' does not exist) nor a Hugging Face repository id")]
    public async Task ModelThatIsNeitherAFolderNorAHubId_FailsAtOnce(string model, string message)
    {
        // Offline, so a model name that reached the Hub would fail differently (and only after the network was tried).
        CliRun run = await CliRunner.RunAsync(["a cat", "--model", model, "--offline"]);

        Assert.Equal(CliCommand.Failure, run.ExitCode);
        Assert.Contains(string.Format(System.Globalization.CultureInfo.InvariantCulture, message, Path.GetFullPath(model)), run.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("folder", "error: --output: '{0}' is a folder; give the file to write, e.g. {0}/image.png.")]
    [InlineData("picture.gif", "error: --output: '{0}' has the extension .gif; sdnet writes .png (with the settings in it), .jpg and .webp.")]
    [InlineData("picture", "error: --output: '{0}' has no extension; sdnet writes .png (with the settings in it), .jpg and .webp.")]
    public async Task OutputThatCannotBeWritten_IsAUsageError_BeforeLoading(string name, string message)
    {
        string output = _cli.PathOf(name);
        if (name == "folder")
        {
            Directory.CreateDirectory(output);
        }

        CliRun run = await CliRunner.RunAsync(["a cat", "--model", "/no/such/model", "-o", output]);

        Assert.Equal(CliCommand.UsageError, run.ExitCode);
        Assert.Contains(string.Format(System.Globalization.CultureInfo.InvariantCulture, message, output), run.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("Loading", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MaskOfAnotherSize_IsAUsageError_BeforeLoading()
    {
        string image = WriteImage("room.png", 64, 64), mask = WriteImage("mask.png", 64, 32);

        CliRun run = await CliRunner.RunAsync(["a sofa", "--model", "/no/such/model", "--init-image", image, "--mask", mask]);

        Assert.Equal(CliCommand.UsageError, run.ExitCode);
        Assert.Contains($"error: --mask: '{mask}' is 64x32 pixels but --init-image '{image}' is 64x64; the mask must have the image's size.", run.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("Loading", run.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("text", "error: --init-image: '{0}' is not an image this tool can read: This is not an image that can be read (PNG, JPEG, WebP, GIF or BMP)")]
    [InlineData("transparent", "error: --init-image: '{0}' has transparent pixels; Stable Diffusion works on opaque images. Flatten it onto a background colour first (for example, export it as JPEG).")]
    [InlineData("tiny", "error: --init-image: '{0}' is 4x4 pixels; image-to-image needs at least 8x8 (the output has the input's size, rounded down to a multiple of 8).")]
    [InlineData("huge", "error: --init-image: '{0}' is not an image this tool can read: The image is 9000x8 pixels; at most 8192x8192 is accepted. Scale it down first.")]
    public async Task InitImageThatCannotBeUsed_IsAUsageError_BeforeLoading(string kind, string message)
    {
        string path = _cli.PathOf($"{kind}.png");
        switch (kind)
        {
            case "text":
                await File.WriteAllTextAsync(path, "not a picture", TestContext.Current.CancellationToken);
                break;
            case "transparent":
                await File.WriteAllBytesAsync(path, TransparentPng(), TestContext.Current.CancellationToken);
                break;
            default:
                WriteImage($"{kind}.png", kind == "tiny" ? 4 : 9000, kind == "tiny" ? 4 : 8);
                break;
        }

        CliRun run = await CliRunner.RunAsync(["a cat", "--model", "/no/such/model", "--init-image", path]);

        Assert.Equal(CliCommand.UsageError, run.ExitCode);
        Assert.Contains(string.Format(System.Globalization.CultureInfo.InvariantCulture, message, path), run.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("Loading", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FromPngOfAnImageToImageResult_WithoutTheImage_SaysWhatIsMissing()
    {
        string png = _cli.PathOf("edited.png");
        RgbImage.FromRgb(new byte[8 * 8 * 3], 8, 8).SaveAsPng(png, new GenerationParameters { Prompt = "a fox", Width = 8, Height = 8, Strength = 0.6 });

        CliRun run = await CliRunner.RunAsync(["--from-png", png]);

        Assert.Equal(CliCommand.UsageError, run.ExitCode);
        Assert.Contains($"error: --from-png: '{png}' was made from an input image (image-to-image or inpainting, denoising strength 0.6), which the PNG does not hold: " +
            "pass that image with --init-image (and the mask with --mask, if it was inpainted).", run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FromPngWithSettingsTheToolCannotApply_NamesThemInAWarning()
    {
        string png = _cli.PathOf("webui.png");
        RgbImage.FromRgb(new byte[8 * 8 * 3], 8, 8).SaveAsPng(png, GenerationParameters.Parse(
            "a castle\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 8x8, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Clip skip: 2, Hires upscale: 2, Denoising strength: 0.5, Version: v1.10.1"));

        // The scheduler check fails after the warnings, so nothing is loaded.
        CliRun run = await CliRunner.RunAsync(["--from-png", png, "--scheduler", "no such sampler"]);
        CliRun withoutModel = await CliRunner.RunAsync(["--from-png", png, "--init-image", png, "--model", "/no/such/model"]);

        Assert.Contains($"warning: --from-png: sdnet cannot apply these settings of '{png}' yet, so the image may differ: Hires upscale.", run.Error, StringComparison.Ordinal);
        Assert.Contains("error: --scheduler: Unknown scheduler", run.Error, StringComparison.Ordinal);
        Assert.Equal(CliCommand.Failure, withoutModel.ExitCode);
        Assert.Contains($"warning: --from-png: sdnet cannot apply these settings of '{png}' yet, so the image may differ: Hires upscale.", withoutModel.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_ListsEveryOption_AndExitsWithZero()
    {
        CliRun run = await CliRunner.RunAsync(["--help"]);

        Assert.Equal(0, run.ExitCode);
        foreach (string option in new[] { "--model", "--revision", "--negative-prompt", "--width", "--height", "--steps", "--guidance", "--seed",
            "--scheduler", "--count", "--provider", "--device-id", "--no-safety-checker", "--output", "--overwrite", "--from-png", "--offline", "--verbose",
            "--embedding", "--clip-skip", "--no-prompt-weighting" })
        {
            Assert.Contains(option, run.Output, StringComparison.Ordinal);
        }

        Assert.Contains("Exit codes: 0 done, 1 failed", run.Output, StringComparison.Ordinal);
    }

    private string WriteImage(string name, int width, int height)
    {
        string path = _cli.PathOf(name);
        RgbImage.FromRgb(new byte[width * height * 3], width, height).SaveAsPng(path);
        return path;
    }

    private static byte[] TransparentPng()
    {
        using var bitmap = new SKBitmap(new SKImageInfo(8, 8, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        bitmap.Erase(new SKColor(10, 20, 30, 100));
        using SKData data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }
}
