using StableDiffusion.ExecutionProviders;
using StableDiffusion.Models;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.Pipelines;

public sealed class VaeSlicingTests
{
    private static readonly TextToImageRequest Request = new("a castle on a hill") { Seed = 7, NumInferenceSteps = 3, Height = 64, Width = 64, NumImagesPerPrompt = 3 };

    [Fact]
    public async Task EnableVaeSlicing_DecodesOneImagePerRun_WithTheImagesOfOneRun()
    {
        Fixtures.Require();
        // A decoder whose batch is fixed to one image fails on a batch of three: only per-image runs get through it.
        var oneImageDecoder = new Dictionary<string, SessionSettings>
        {
            [ModelComponents.VaeDecoder] = new() { FreeDimensionOverrides = new Dictionary<string, long> { ["batch"] = 1 } },
        };
        CancellationToken token = TestContext.Current.CancellationToken;
        using var whole = await StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel, cancellationToken: token);
        using var sliced = await StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel,
            new StableDiffusionPipelineOptions { EnableVaeSlicing = true, ComponentSessions = oneImageDecoder }, token);
        using var unsliced = await StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel,
            new StableDiffusionPipelineOptions { ComponentSessions = oneImageDecoder }, token);

        using GenerationResult expected = await whole.GenerateAsync(Request, token);
        using GenerationResult actual = await sliced.GenerateAsync(Request, token);
        await Assert.ThrowsAsync<ModelRunException>(() => unsliced.GenerateAsync(Request, token));

        Assert.Equal(3, actual.Images.Count);
        ArrayAssert.Close(expected.ImageTensor.AsSpan(), actual.ImageTensor.AsSpan(), 1e-5, "sliced vs one decoder run");
    }

    [Fact]
    public async Task EnableVaeSlicing_WithStaticShape_SpecialisesTheDecoderForOneImage()
    {
        Fixtures.Require();
        CancellationToken token = TestContext.Current.CancellationToken;
        var shape = new StaticShapeOptions { Height = 64, Width = 64, ImagesPerCall = 3 };
        using var sliced = await StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel,
            new StableDiffusionPipelineOptions { StaticShape = shape, EnableVaeSlicing = true }, token);
        using var whole = await StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel, new StableDiffusionPipelineOptions { StaticShape = shape }, token);

        using GenerationResult expected = await whole.GenerateAsync(Request, token);
        using GenerationResult actual = await sliced.GenerateAsync(Request, token);

        Assert.Equal(1, sliced.VaeDecoder.Session.InputMetadata["latent_sample"].Dimensions[0]);
        Assert.Equal(3, whole.VaeDecoder.Session.InputMetadata["latent_sample"].Dimensions[0]);
        ArrayAssert.Close(expected.ImageTensor.AsSpan(), actual.ImageTensor.AsSpan(), 1e-5, "sliced vs one decoder run");
    }
}
