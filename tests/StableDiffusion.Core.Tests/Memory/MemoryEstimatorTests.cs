using StableDiffusion.Core.Tests.EndToEnd.Support;
using StableDiffusion.Core.Tests.Hardening.Drills;
using StableDiffusion.Memory;
using StableDiffusion.Pipelines;
using Xunit;

namespace StableDiffusion.Core.Tests.Memory;

[Trait("Area", "Memory")]
public sealed class MemoryEstimatorTests(TinyPipelines pipelines)
{
    [Fact]
    public void A1024Image_IsEstimatedAtTheMeasured20GB()
    {
        // 128 x 128 latents: 16384 tokens; guided: 2 rows x 8 heads x 16384^2 x 4 bytes of attention scores.
        GenerationMemoryEstimate estimate = GenerationMemoryEstimator.Estimate(1024, 1024);

        Assert.Equal(2L * 8 * 16384 * 16384 * 4, estimate.UNetBytes);
        Assert.Equal((16384L * 16384 * 4) + (128L * 1024 * 1024 * 4 * 3), estimate.VaeBytes);
        Assert.InRange(estimate.TotalBytes / 1e9, 19.5, 20.5); // the issue measured 19.8 GB of RSS
    }

    [Fact]
    public void TheEstimate_GrowsWithSizeBatchAndGuidance_AndTheLargestSideFits()
    {
        long small = GenerationMemoryEstimator.Estimate(512, 512).TotalBytes;

        Assert.True(GenerationMemoryEstimator.Estimate(512, 576).TotalBytes > small);
        Assert.True(GenerationMemoryEstimator.Estimate(512, 512, images: 2).TotalBytes > small);
        Assert.True(GenerationMemoryEstimator.Estimate(512, 512, guided: false).TotalBytes < small);
        Assert.Equal(small + 1000, GenerationMemoryEstimator.Estimate(512, 512, assumptions: new() { BaseBytes = 1000 }).TotalBytes);

        const long budget = 8L << 30;
        int side = GenerationMemoryEstimator.LargestSquareSide(budget);
        Assert.Equal(0, side % 8);
        Assert.True(GenerationMemoryEstimator.Estimate(side, side).TotalBytes <= budget);
        Assert.True(GenerationMemoryEstimator.Estimate(side + 8, side + 8).TotalBytes > budget);
        Assert.Equal(0, GenerationMemoryEstimator.LargestSquareSide(1));
    }

    [Fact]
    public async Task ShrinkingTheArenas_ChangesNoPixel()
    {
        using var shrinking = await StableDiffusionPipeline.FromPretrainedAsync(Testing.Fixtures.TinyModel,
            new StableDiffusionPipelineOptions { ShrinkMemoryArenas = true }, TestContext.Current.CancellationToken);
        var request = new TextToImageRequest("a cat") { Seed = 4, NumInferenceSteps = 3, Width = 64, Height = 64 };

        using GenerationResult shrunk = await shrinking.GenerateAsync(request, TestContext.Current.CancellationToken);
        using GenerationResult plain = await pipelines.TextToImage.GenerateAsync(request, TestContext.Current.CancellationToken);

        Assert.Equal(GenerationBytes.Of(plain), GenerationBytes.Of(shrunk));
    }
}
