using StableDiffusion.Core.Tests.Weights;
using StableDiffusion.Hub;
using StableDiffusion.Models;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.SingleFile;

/// <summary><c>FromSingleFile</c> through the public API: what it refuses and when, the base model, the safety checker.</summary>
[Trait("Area", "WeightsLoading")]
public sealed class SingleFileLoadingTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("sd-single-file-loading-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task FileThatIsNotAnSd1Checkpoint_FailsBeforeTheBaseModelIsAskedFor()
    {
        // The base model is a Hub id behind an endpoint nothing listens on, with an empty cache: refusing the file must
        // neither try the Hub nor write to the cache.
        string file = Path.Combine(_folder, "lora.safetensors");
        SafetensorsWriter.Write(file, [SafetensorsWriter.Tensor.Float16("lora_unet_mid_block_attentions_0_proj_in.lora_down.weight", [4, 320], new float[1280])]);
        string cache = Directory.CreateDirectory(Path.Combine(_folder, "cache")).FullName;
        var options = new StableDiffusionPipelineOptions
        {
            BaseModel = "someone/sd15-base",
            Hub = new HubOptions { CacheDirectory = cache, Endpoint = new Uri("http://127.0.0.1:9"), MaxRetries = 0 },
        };

        var ex = await Assert.ThrowsAsync<UnsupportedCheckpointException>(() => StableDiffusionPipeline.FromSingleFileAsync(file, options, TestContext.Current.CancellationToken));

        Assert.Equal(CheckpointKind.Lora, ex.Kind);
        Assert.Empty(Directory.EnumerateFileSystemEntries(cache));
    }

    [Fact]
    public async Task BaseModelWithoutDiffusersConfigurations_NamesWhatABaseModelIs()
    {
        Fixtures.Require();
        var options = new StableDiffusionPipelineOptions { BaseModel = Fixtures.TinyModel };

        var ex = await Assert.ThrowsAsync<ModelLoadException>(() => StableDiffusionPipeline.FromSingleFileAsync(
            Fixtures.PathOf("tiny-sd-single-file.fp16.safetensors"), options, TestContext.Current.CancellationToken));

        Assert.Contains($"The base model '{Path.GetFullPath(Fixtures.TinyModel)}' of the single file", ex.Message, StringComparison.Ordinal);
        Assert.Contains("is a Stable Diffusion 1.x model in the diffusers layout", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SafetyChecker_ComesFromTheBaseModelUnlessTurnedOff(bool enabled)
    {
        Fixtures.Require();
        var options = new StableDiffusionPipelineOptions { BaseModel = Fixtures.PathOf("tiny-sd"), EnableSafetyChecker = enabled };

        using var pipe = await StableDiffusionPipeline.FromSingleFileAsync(Fixtures.PathOf("tiny-sd-single-file.fp16.safetensors"), options, TestContext.Current.CancellationToken);

        Assert.Equal(enabled, pipe.SafetyChecker is not null);
    }
}
