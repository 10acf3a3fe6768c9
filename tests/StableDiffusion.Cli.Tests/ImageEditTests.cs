using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Cli.Tests;

/// <summary>sdnet --init-image / --strength / --mask: image-to-image and inpainting on the tiny models.</summary>
[Trait("Area", "Cli")]
public sealed class ImageEditTests : IDisposable
{
    private readonly CliRunner _cli = new();

    public void Dispose() => _cli.Dispose();

    [Fact]
    public async Task InitImage_ChangesTheImage_AndRecordsTheStrength()
    {
        Fixtures.Require();
        string input = WriteImage("input.png", (x, y) => new Rgb24((byte)(x * 4), (byte)(y * 4), 128));
        string output = _cli.PathOf("changed.png");

        CliRun run = await CliRunner.RunAsync(["a watercolor castle", "--model", Fixtures.TinyVariantsModel, "--steps", "10", "--seed", "1",
            "--init-image", input, "--strength", "0.7", "-o", output]);

        Assert.True(run.ExitCode == 0, run.ToString());
        // int(10 x 0.7) = 7 steps; the SD 1.5 default PNDM runs 11 timesteps for 10 steps, of which the last 8 here, as diffusers does.
        Assert.Contains("denoising 8/8", run.Error, StringComparison.Ordinal);
        GenerationParameters parameters = PngMetadata.Read(output);
        Assert.Equal(0.7, parameters.DenoisingStrength);
        Assert.Equal((64, 64), (parameters.Width, parameters.Height));
    }

    [Fact]
    public async Task Mask_Inpaints_WithTheInpaintingModel()
    {
        Fixtures.Require();
        string input = WriteImage("room.png", (x, y) => new Rgb24(200, (byte)(y * 4), 50));
        string mask = WriteImage("mask.png", (x, y) => x is >= 16 and < 48 && y is >= 16 and < 48 ? new Rgb24(255, 255, 255) : new Rgb24(0, 0, 0));
        string output = _cli.PathOf("inpainted.png");

        CliRun run = await CliRunner.RunAsync(["a red sofa", "--model", Fixtures.TinyInpaintModel, "--steps", "4", "--seed", "2",
            "--init-image", input, "--mask", mask, "-o", output]);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(1.0, PngMetadata.Read(output).DenoisingStrength);
    }

    [Fact]
    public async Task FromPng_ReproducesAnImageToImageResult()
    {
        Fixtures.Require();
        string input = WriteImage("input.png", (x, y) => new Rgb24((byte)(x * 4), 64, (byte)(y * 4)));
        string first = _cli.PathOf("first.png");
        string again = _cli.PathOf("again.png");
        CliRun run = await CliRunner.RunAsync(["a fox", "--model", Fixtures.TinyModel, "--steps", "6", "--init-image", input, "--strength", "0.5", "-o", first]);
        Assert.True(run.ExitCode == 0, run.ToString());

        CliRun rerun = await CliRunner.RunAsync(["--from-png", first, "--init-image", input, "-o", again]);

        Assert.True(rerun.ExitCode == 0, rerun.ToString());
        Assert.Equal(CliRunner.Pixels(first), CliRunner.Pixels(again));
    }

    [Theory]
    [InlineData(new[] { "a cat", "--mask", "m.png" }, "--mask and --strength need --init-image")]
    [InlineData(new[] { "a cat", "--strength", "0.5" }, "--mask and --strength need --init-image")]
    [InlineData(new[] { "a cat", "--init-image", "missing.png" }, "'missing.png' does not exist.")]
    [InlineData(new[] { "a cat", "--init-image", "in.png", "--strength", "1.5" }, "--strength must be between 0 and 1, not 1.5.")]
    [InlineData(new[] { "a cat", "--init-image", "in.png", "-W", "128" }, "--width and --height do not apply to image-to-image")]
    public async Task BadImageOptions_AreUsageErrors(string[] args, string message)
    {
        string[] withPaths = [.. args.Select(a => a.EndsWith(".png", StringComparison.Ordinal) && a != "missing.png" ? WriteImage(a, (_, _) => new Rgb24(1, 2, 3)) : a)];

        CliRun run = await CliRunner.RunAsync(withPaths);

        Assert.Equal(CliCommand.UsageError, run.ExitCode);
        Assert.Contains(message, run.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task InitImageThatIsNotAnImage_IsAUsageError()
    {
        Fixtures.Require();
        string notAnImage = _cli.PathOf("notes.png");
        await File.WriteAllTextAsync(notAnImage, "not a picture", TestContext.Current.CancellationToken);

        CliRun run = await CliRunner.RunAsync(["a cat", "--model", Fixtures.TinyModel, "--init-image", notAnImage]);

        Assert.Equal(CliCommand.UsageError, run.ExitCode);
        Assert.Contains("--init-image", run.Error, StringComparison.Ordinal);
        Assert.Contains("is not an image", run.Error, StringComparison.Ordinal);
    }

    private string WriteImage(string name, Func<int, int, Rgb24> pixel)
    {
        string path = _cli.PathOf(name);
        using var image = new Image<Rgb24>(64, 64);
        for (int y = 0; y < 64; y++)
        {
            for (int x = 0; x < 64; x++)
            {
                image[x, y] = pixel(x, y);
            }
        }

        image.SaveAsPng(path);
        return path;
    }
}
