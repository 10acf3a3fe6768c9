using StableDiffusion.Imaging;
using StableDiffusion.Pipelines;
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
        string input = WriteImage("input.png", (x, y) => ((byte)(x * 4), (byte)(y * 4), 128));
        string output = _cli.PathOf("changed.png");

        CliRun run = await CliRunner.RunAsync(["a watercolor castle", "--model", Fixtures.TinyVariantsModel, "--steps", "10", "--seed", "1",
            "--init-image", input, "--strength", "0.7", "-o", output]);

        Assert.True(run.ExitCode == 0, run.ToString());
        // int(10 x 0.7) = 7 steps; the SD 1.5 default PNDM runs 11 timesteps for 10 steps, of which the last 8 here, as diffusers does.
        Assert.Contains("denoising 8/8", run.Error, StringComparison.Ordinal);
        GenerationParameters parameters = ImageFiles.ReadParameters(output);
        Assert.Equal(0.7, parameters.Strength);
        Assert.Equal((64, 64), (parameters.Width, parameters.Height));
    }

    [Fact]
    public async Task InitImage_TakenSideways_IsUsedUpright()
    {
        // A phone photo stored 64 wide and 32 high whose EXIF orientation turns it a quarter: the image is 32 x 64.
        Fixtures.Require();
        string input = _cli.PathOf("sideways.jpg");
        byte[] stored = SkiaSharp.SkiaImageCodec.Encode(RgbImage.FromRgb(new byte[64 * 32 * 3], 64, 32), global::SkiaSharp.SKEncodedImageFormat.Jpeg);
        await File.WriteAllBytesAsync(input, JpegExif.WithOrientation(stored, 6), TestContext.Current.CancellationToken);
        string output = _cli.PathOf("upright.png");

        CliRun run = await CliRunner.RunAsync(["a tower", "--model", Fixtures.TinyModel, "--steps", "2", "--init-image", input, "-o", output]);

        Assert.True(run.ExitCode == 0, run.ToString());
        GenerationParameters parameters = ImageFiles.ReadParameters(output);
        Assert.Equal((32, 64), (parameters.Width, parameters.Height));
    }

    [Fact]
    public async Task Mask_Inpaints_WithTheInpaintingModel()
    {
        Fixtures.Require();
        string input = WriteImage("room.png", (x, y) => (200, (byte)(y * 4), 50));
        string mask = WriteImage("mask.png", (x, y) => x is >= 16 and < 48 && y is >= 16 and < 48 ? (255, 255, 255) : (0, 0, 0));
        string output = _cli.PathOf("inpainted.png");

        CliRun run = await CliRunner.RunAsync(["a red sofa", "--model", Fixtures.TinyInpaintModel, "--steps", "4", "--seed", "2",
            "--init-image", input, "--mask", mask, "-o", output]);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(1.0, ImageFiles.ReadParameters(output).Strength);
    }

    [Fact]
    public async Task FromPng_ReproducesAnImageToImageResult()
    {
        Fixtures.Require();
        string input = WriteImage("input.png", (x, y) => ((byte)(x * 4), 64, (byte)(y * 4)));
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
    [InlineData(new[] { "a cat", "--init-image", "missing.png" }, "error: --init-image: 'missing.png' does not exist.")]
    [InlineData(new[] { "a cat", "--init-image", "in.png", "--strength", "1.5" }, "--strength must be between 0 and 1, not 1.5.")]
    [InlineData(new[] { "a cat", "--init-image", "in.png", "-W", "128" }, "--width and --height do not apply to image-to-image")]
    public async Task BadImageOptions_AreUsageErrors(string[] args, string message)
    {
        string[] withPaths = [.. args.Select(a => a.EndsWith(".png", StringComparison.Ordinal) && a != "missing.png" ? WriteImage(a, (_, _) => (1, 2, 3)) : a)];

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

    private string WriteImage(string name, Func<int, int, (int R, int G, int B)> pixel, int width = 64, int height = 64)
    {
        string path = _cli.PathOf(name);
        var rgb = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                (int r, int g, int b) = pixel(x, y);
                int o = ((y * width) + x) * 3;
                (rgb[o], rgb[o + 1], rgb[o + 2]) = ((byte)r, (byte)g, (byte)b);
            }
        }

        RgbImage.FromRgb(rgb, width, height).SaveAsPng(path);
        return path;
    }
}
