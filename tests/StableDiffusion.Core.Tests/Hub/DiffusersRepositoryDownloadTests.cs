using StableDiffusion.Hub.Tests.FakeHub;
using StableDiffusion.Models;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.Hub;

/// <summary>
/// A repository in the diffusers layout (../shared/fixtures/tiny-sd's files, with pickled duplicates beside them) served by
/// the fake Hub: <c>FromPretrainedAsync</c> takes only what the component registry loads and generates from it;
/// components given in the options are not downloaded; a single file's base model gives only its small files.
/// </summary>
[Trait("Area", "Hub")]
public sealed class DiffusersRepositoryDownloadTests : IAsyncLifetime
{
    private const string RepoId = "diffusers-org/tiny-sd";

    private HubTestContext _hub = null!;
    private string _commit = null!;

    public async ValueTask InitializeAsync()
    {
        Fixtures.Require();
        _hub = await HubTestContext.StartAsync();
        string folder = Fixtures.PathOf("tiny-sd");
        Dictionary<string, byte[]> files = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .ToDictionary(path => Path.GetRelativePath(folder, path).Replace('\\', '/'), File.ReadAllBytes, StringComparer.Ordinal);
        // What a download must leave: pickled duplicates of the weights.
        files["unet/diffusion_pytorch_model.bin"] = [1, 2, 3];
        files["text_encoder/pytorch_model.bin"] = [1, 2, 3];
        _commit = _hub.Server.AddRepository(RepoId).AddCommit(files, FakeContent.IsLfs, "main");
    }

    public async ValueTask DisposeAsync() => await _hub.DisposeAsync();

    [Fact]
    public async Task FromPretrained_DownloadsTheSafetensorsAndGenerates()
    {
        var options = new StableDiffusionPipelineOptions { Hub = _hub.Options() };

        using StableDiffusionPipeline pipe = await StableDiffusionPipeline.FromPretrainedAsync(RepoId, options, TestContext.Current.CancellationToken);
        using GenerationResult result = await pipe.GenerateAsync(
            new TextToImageRequest("a red cube") { Width = 32, Height = 32, NumInferenceSteps = 2, Seed = 1 }, TestContext.Current.CancellationToken);

        Assert.Single(result.Images);
        string[] downloaded = Downloaded();
        Assert.Contains("unet/diffusion_pytorch_model.safetensors", downloaded);
        Assert.Contains("safety_checker/model.safetensors", downloaded);
        Assert.DoesNotContain(downloaded, path => path.EndsWith(".bin", StringComparison.Ordinal));
    }

    [Fact]
    public async Task FromPretrained_WithAGivenUNet_DoesNotDownloadTheRepositorysUNet()
    {
        using UNetModel unet = UNetModel.FromPretrained(Fixtures.PathOf("tiny-sd/unet"));
        var options = new StableDiffusionPipelineOptions { Hub = _hub.Options(), Components = new Dictionary<string, OnnxModel> { [ModelComponents.UNet] = unet } };

        using StableDiffusionPipeline pipe = await StableDiffusionPipeline.FromPretrainedAsync(RepoId, options, TestContext.Current.CancellationToken);

        Assert.DoesNotContain(Downloaded(), path => path.StartsWith("unet/", StringComparison.Ordinal));
        Assert.Contains("text_encoder/model.safetensors", Downloaded());
    }

    [Fact]
    public async Task FromSingleFile_WithAHubBaseModel_DownloadsOnlyItsSmallFilesAndTheSafetyChecker()
    {
        var options = new StableDiffusionPipelineOptions { Hub = _hub.Options(), BaseModel = RepoId };

        using StableDiffusionPipeline pipe = await StableDiffusionPipeline.FromSingleFileAsync(
            Fixtures.PathOf("tiny-sd-single-file.fp16.safetensors"), options, TestContext.Current.CancellationToken);

        Assert.NotNull(pipe.SafetyChecker);
        string[] downloaded = Downloaded();
        Assert.Contains("unet/config.json", downloaded);
        Assert.Contains("safety_checker/model.safetensors", downloaded);
        Assert.DoesNotContain(downloaded, path => path.EndsWith(".safetensors", StringComparison.Ordinal) && !path.StartsWith("safety_checker/", StringComparison.Ordinal));
        Assert.DoesNotContain(downloaded, path => path.EndsWith(".bin", StringComparison.Ordinal));
    }

    private string[] Downloaded()
    {
        string snapshot = Path.Combine(_hub.Storage(RepoId), "snapshots", _commit);
        return [.. HubTestContext.FilesUnder(snapshot).Where(p => !Directory.Exists(Path.Combine(snapshot, p))).Select(p => p.Replace('\\', '/'))];
    }
}
