using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Cli.Tests;

/// <summary>sdnet on models in the diffusers layout: <c>--model</c> takes the folder, <c>--variant</c> picks its weight files.</summary>
[Trait("Area", "Cli")]
[Trait("Area", "WeightsLoading")]
public sealed class DiffusersModelTests : IDisposable
{
    private readonly CliRunner _cli = new();

    public void Dispose() => _cli.Dispose();

    [Fact]
    public async Task DiffusersFolder_GivesTheImageOfItsOnnxExport()
    {
        Fixtures.Require();
        string fromOnnx = _cli.PathOf("onnx.png"), fromDiffusers = _cli.PathOf("diffusers.png");
        string[] settings = ["a lighthouse at dusk", "-W", "64", "-H", "64", "--steps", "4", "--seed", "21"];

        CliRun onnx = await CliRunner.RunAsync([.. settings, "--model", Fixtures.TinyModel, "-o", fromOnnx]);
        CliRun diffusers = await CliRunner.RunAsync([.. settings, "--model", Fixtures.PathOf("tiny-sd"), "-o", fromDiffusers]);

        Assert.True(onnx.ExitCode == 0, onnx.ToString());
        Assert.True(diffusers.ExitCode == 0, diffusers.ToString());
        byte[] expected = CliRunner.Pixels(fromOnnx), actual = CliRunner.Pixels(fromDiffusers);
        Assert.Contains(expected, b => b != 0); // not a black, flagged image
        // The same weights: images within 1e-4, so 8-bit pixels at most one level apart (where a value sits on a rounding edge).
        Assert.All(expected.Zip(actual), pair => Assert.InRange(Math.Abs(pair.First - pair.Second), 0, 1));
    }

    [Fact]
    public async Task Variant_PicksTheVariantsFiles()
    {
        Fixtures.Require();
        string model = CopyOfTinySd();
        // Only the variant's file: loading succeeds only if --variant chose it.
        File.Move(Path.Combine(model, "unet", "diffusion_pytorch_model.safetensors"), Path.Combine(model, "unet", "diffusion_pytorch_model.fp16.safetensors"));
        string path = _cli.PathOf("variant.png");

        CliRun withVariant = await CliRunner.RunAsync(["a lighthouse", "--model", model, "--variant", "fp16", "-W", "64", "-H", "64", "--steps", "2", "-o", path]);
        CliRun without = await CliRunner.RunAsync(["a lighthouse", "--model", model, "-W", "64", "-H", "64", "--steps", "2", "-o", _cli.PathOf("plain.png")]);

        Assert.True(withVariant.ExitCode == 0, withVariant.ToString());
        Assert.True(File.Exists(path));
        Assert.Equal(CliCommand.Failure, without.ExitCode);
        Assert.Contains("no weights in safetensors", without.Error, StringComparison.Ordinal);
        Assert.Contains("diffusion_pytorch_model.safetensors", without.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("../fp16")]
    [InlineData("fp16.safetensors")]
    public async Task VariantThatIsNotAName_IsAUsageError(string variant)
    {
        CliRun run = await CliRunner.RunAsync(["a cat", "--variant", variant]);

        Assert.Equal(CliCommand.UsageError, run.ExitCode);
        Assert.Contains($"error: --variant takes a name of letters, digits, '-' and '_' such as fp16, not '{variant}'.", run.Error, StringComparison.Ordinal);
    }

    private string CopyOfTinySd()
    {
        string source = Fixtures.PathOf("tiny-sd"), target = _cli.PathOf("tiny-sd-copy");
        foreach (string file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            string copy = Path.Combine(target, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
            File.Copy(file, copy);
            File.SetAttributes(copy, FileAttributes.Normal); // the fixtures are read-only
        }

        return target;
    }
}
