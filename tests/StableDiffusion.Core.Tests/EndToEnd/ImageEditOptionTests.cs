using StableDiffusion.Core.Tests.EndToEnd.Support;
using StableDiffusion.Core.Tests.Hardening.Drills;
using StableDiffusion.Hub.Tests.FakeHub;
using StableDiffusion.Imaging;
using StableDiffusion.Pipelines;
using StableDiffusion.Randomness;
using StableDiffusion.Schedulers;
using Xunit;

namespace StableDiffusion.Core.Tests.EndToEnd;

/// <summary>The options of image-to-image and inpainting requests, through the public API on the tiny models.</summary>
[Trait("Area", "Edit")]
public sealed class ImageEditOptionTests(TinyPipelines pipelines)
{
    private readonly RgbImage _picture = TestImages.Picture();
    private readonly RgbImage _mask = TestImages.Mask();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("DDIM", 10, 0.3, 3)]
    [InlineData("DDIM", 10, 0.75, 7)]
    [InlineData("DDIM", 10, 1.0, 10)]
    [InlineData("DDIM", 7, 0.7, 4)] // int(7 * 0.7) = int(4.8999...) = 4, as in Python.
    [InlineData("Euler a", 10, 0.7, 7)]
    [InlineData("DPM++ 2M", 10, 0.5, 5)]
    [InlineData("PNDM", 10, 0.5, 6)] // PNDM's schedule has one timestep more than steps.
    [InlineData("Heun", 5, 0.6, 5)] // Heun (order 2) runs 2 x int(steps x strength) - 1 of its 2 x steps - 1 timesteps.
    public async Task Strength_RunsTheLastPartOfTheSchedule(string scheduler, int steps, double strength, int unetCalls)
    {
        IScheduler chosen = SchedulerFactory.Create(scheduler, pipelines.VariantsImageToImage.Scheduler.Config);
        IScheduler full = chosen.Clone();
        full.SetTimesteps(steps);
        var seen = new List<float>();

        using GenerationResult result = await pipelines.VariantsImageToImage.GenerateAsync(new Img2ImgRequest("a lighthouse", _picture)
        {
            Seed = 1, NumInferenceSteps = steps, Strength = strength, Scheduler = chosen, OnStepEnd = s => seen.Add(s.Timestep),
        }, Ct);

        Assert.Equal(unetCalls, result.Timings.UNetCalls);
        Assert.Equal(full.Timesteps.TakeLast(unetCalls), seen);
    }

    [Fact]
    public async Task DiffusersExportVaeEncoder_IsSeedReproducible_AndMatchesTheLatentParametersExport()
    {
        var request = new Img2ImgRequest("a lighthouse at dusk", _picture) { Seed = 9, NumInferenceSteps = 6, Strength = 0.7 };

        using GenerationResult first = await pipelines.ImageToImage.GenerateAsync(request, Ct);
        using GenerationResult second = await pipelines.ImageToImage.GenerateAsync(request, Ct);
        using GenerationResult latentParameters = await pipelines.VariantsImageToImage.GenerateAsync(request, Ct);

        ResultAssert.Identical(first, second, "diffusers' VAE encoder export, same seed");
        ResultAssert.Close(latentParameters, first, 1e-5, "diffusers' export against the latent_parameters export of the same weights");
    }

    [Fact]
    public async Task ResizeImage_RoundsDownToMultiplesOf8_OrKeepsAnImageThatAlreadyFits()
    {
        RgbImage odd = TestImages.Picture(70, 66);

        using GenerationResult resized = await pipelines.VariantsImageToImage.GenerateAsync(new Img2ImgRequest("a lighthouse", odd) { Seed = 1, NumInferenceSteps = 2 }, Ct);
        using GenerationResult kept = await pipelines.VariantsImageToImage.GenerateAsync(new Img2ImgRequest("a lighthouse", _picture) { Seed = 1, NumInferenceSteps = 2, ResizeImage = false }, Ct);

        Assert.Equal((64, 64), (resized.Images[0].Width, resized.Images[0].Height));
        Assert.Equal((64, 64), (kept.Images[0].Width, kept.Images[0].Height));
        await Assert.ThrowsAsync<ArgumentException>(() => pipelines.VariantsImageToImage.GenerateAsync(new Img2ImgRequest("a lighthouse", odd) { ResizeImage = false }, Ct));
    }

    [Fact]
    public async Task ImageToImage_TakesPromptsImagesPerPromptNegativePromptsAndGuidance()
    {
        var reports = new List<GenerationProgress>();
        var request = new Img2ImgRequest(["a lighthouse", "a castle"], _picture)
        {
            Seed = 2, NumInferenceSteps = 4, Strength = 0.75, NumImagesPerPrompt = 2, NegativePrompts = ["fog", "rain"],
        };

        using GenerationResult guided = await pipelines.VariantsImageToImage.GenerateAsync(request, new SynchronousProgress<GenerationProgress>(reports.Add), Ct);
        using GenerationResult unguided = await pipelines.VariantsImageToImage.GenerateAsync(request with { GuidanceScale = 1, NegativePrompts = null }, Ct);
        using GenerationResult again = await pipelines.VariantsImageToImage.GenerateAsync(request, Ct);

        Assert.Equal(4, guided.Images.Count);
        Assert.Equal([8, 77, 32], guided.PromptEmbeds.Lengths.ToArray());
        Assert.Equal([4, 77, 32], unguided.PromptEmbeds.Lengths.ToArray());
        ResultAssert.Identical(guided, again, "the same request twice");
        Assert.Equal(
            [GenerationStage.EncodingPrompt, GenerationStage.EncodingImage, GenerationStage.Denoising],
            reports.Select(r => r.Stage).Distinct().Take(3));
        Assert.True(guided.Timings.ImageEncoding > TimeSpan.Zero);
        // The model's PNDM: 4 steps make 5 timesteps, of which strength 0.75 skips int(4 x 0.25) = 1.
        Assert.Equal(4, guided.Timings.UNetCalls);
    }

    [Theory]
    [InlineData(1.0, 10)]
    [InlineData(0.6, 6)]
    public async Task Inpaint_Strength_RunsTheLastPartOfTheSchedule(double strength, int unetCalls)
    {
        IScheduler ddim = SchedulerFactory.Create("DDIM", pipelines.Inpaint.Scheduler.Config);

        using GenerationResult result = await pipelines.Inpaint.GenerateAsync(new InpaintRequest("a red door", _picture, _mask)
        {
            Seed = 1, NumInferenceSteps = 10, Strength = strength, Scheduler = ddim, Height = 64, Width = 64,
        }, Ct);

        Assert.Equal(unetCalls, result.Timings.UNetCalls);
        Assert.Equal((64, 64), (result.Images[0].Width, result.Images[0].Height));
    }

    [Fact]
    public async Task Inpaint_WithAnOrdinaryUNet_KeepsTheImagesLatentsOutsideTheMask()
    {
        var request = new InpaintRequest("a red door", _picture, _mask) { Seed = 4, NumInferenceSteps = 4, Strength = 0.75, Height = 64, Width = 64 };

        using GenerationResult door = await pipelines.LatentInpaint.GenerateAsync(request, Ct);
        using GenerationResult window = await pipelines.LatentInpaint.GenerateAsync(request with { Prompts = ["a round window"] }, Ct);

        // The mask's central square covers latent pixels 2..5 of 8 in both directions.
        float[] a = GenerationBytes.Flatten(door.Latents), b = GenerationBytes.Flatten(window.Latents);
        for (int c = 0; c < 4; c++)
        {
            for (int y = 0; y < 8; y++)
            {
                for (int x = 0; x < 8; x++)
                {
                    int i = (((c * 8) + y) * 8) + x;
                    bool masked = x is >= 2 and < 6 && y is >= 2 and < 6;
                    Assert.True(masked ? a[i] != b[i] : a[i] == b[i], $"latent ({c}, {y}, {x}), masked {masked}: {a[i]} and {b[i]}");
                }
            }
        }
    }

    [Fact]
    public async Task Inpaint_WithAnOrdinaryUNet_DrawsFromTheGeneratorAsDiffusers()
    {
        // diffusers samples the image's latents, then the noise, then the masked image's latents (discarded for an ordinary
        // UNet); DDIM draws nothing more. Both encoder exports sample with the call's generator.
        using var diffusersExport = StableDiffusionInpaintPipeline.FromPipe(pipelines.ImageToImage);
        foreach (StableDiffusionInpaintPipeline pipe in new[] { pipelines.LatentInpaint, diffusersExport })
        {
            var generator = new RecordingGenerator(new TorchCpuGenerator(3));
            IScheduler ddim = SchedulerFactory.Create("DDIM", pipe.Scheduler.Config);

            using GenerationResult result = await pipe.GenerateAsync(new InpaintRequest("a red door", _picture, _mask)
            {
                Generator = generator, NumInferenceSteps = 2, Strength = 0.75, NumImagesPerPrompt = 2, Scheduler = ddim, Height = 64, Width = 64,
            }, Ct);

            Assert.Equal([(typeof(float), 4 * 8 * 8), (typeof(float), 2 * 4 * 8 * 8), (typeof(float), 4 * 8 * 8)], generator.Draws);
        }
    }

    [Fact]
    public async Task Inpaint_MaskGreyLevels_AreBinarisedAtHalf()
    {
        RgbImage dark = TestImages.Mask(inside: 127), black = TestImages.Mask(inside: 0), light = TestImages.Mask(inside: 128);
        var request = new InpaintRequest("a red door", _picture, _mask) { Seed = 5, NumInferenceSteps = 2, Height = 64, Width = 64 };

        using GenerationResult white = await pipelines.Inpaint.GenerateAsync(request, Ct);
        using GenerationResult grey128 = await pipelines.Inpaint.GenerateAsync(request with { MaskImage = light }, Ct);
        using GenerationResult grey127 = await pipelines.Inpaint.GenerateAsync(request with { MaskImage = dark }, Ct);
        using GenerationResult none = await pipelines.Inpaint.GenerateAsync(request with { MaskImage = black }, Ct);

        ResultAssert.Identical(white, grey128, "mask levels 255 and 128");
        ResultAssert.Identical(none, grey127, "mask levels 0 and 127");
        ResultAssert.Different(white, none, "a mask and none");
    }

    [Fact]
    public async Task Inpaint_OutputSize_IsTheModelsDefault_OrTheOneAskedFor()
    {
        // diffusers' inpainting pipeline makes images of the UNet's default size whatever the image's (resizing the image
        // and mask to it), unlike image-to-image, which keeps the image's size rounded down to a multiple of 8.
        RgbImage wide = TestImages.Picture(70, 66);
        RgbImage wideMask = TestImages.Mask(70, 66);

        using GenerationResult byDefault = await pipelines.Inpaint.GenerateAsync(new InpaintRequest("a red door", wide, wideMask) { Seed = 1, NumInferenceSteps = 2 }, Ct);
        using GenerationResult asked = await pipelines.Inpaint.GenerateAsync(new InpaintRequest("a red door", wide, wideMask) { Seed = 1, NumInferenceSteps = 2, Height = 48, Width = 80 }, Ct);

        int size = pipelines.Inpaint.DefaultImageSize;
        Assert.Equal((size, size), (byDefault.Images[0].Width, byDefault.Images[0].Height));
        Assert.Equal((80, 48), (asked.Images[0].Width, asked.Images[0].Height));
    }

    /// <summary>Records the element type and length of every draw.</summary>
    private sealed class RecordingGenerator(INoiseGenerator inner) : INoiseGenerator
    {
        public List<(Type Type, int Length)> Draws { get; } = [];

        public void FillStandardNormal(Span<float> destination)
        {
            Draws.Add((typeof(float), destination.Length));
            inner.FillStandardNormal(destination);
        }

        public void FillStandardNormal(Span<double> destination)
        {
            Draws.Add((typeof(double), destination.Length));
            inner.FillStandardNormal(destination);
        }

        public void FillStandardNormal(Span<Half> destination)
        {
            Draws.Add((typeof(Half), destination.Length));
            inner.FillStandardNormal(destination);
        }
    }
}
