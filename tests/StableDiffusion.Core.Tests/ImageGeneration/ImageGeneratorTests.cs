#pragma warning disable MEAI001 // IImageGenerator is experimental in Microsoft.Extensions.AI.Abstractions 10.x.

using System.Drawing;
using System.Text.Json;
using Microsoft.Extensions.AI;
using StableDiffusion.Core.Tests.EndToEnd.Support;
using StableDiffusion.Core.Tests.Hardening.Drills;
using StableDiffusion.ImageGeneration;
using StableDiffusion.Imaging;
using StableDiffusion.Pipelines;
using StableDiffusion.Schedulers;
using Xunit;

namespace StableDiffusion.Core.Tests.ImageGeneration;

/// <summary><see cref="StableDiffusionImageGenerator"/>: Microsoft.Extensions.AI requests give what the pipelines give.</summary>
[Trait("Area", "ImageGenerator")]
public sealed class ImageGeneratorTests(TinyPipelines pipelines)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task APrompt_IsTextToImage_WithOptionsAndPropertiesMapped()
    {
        using var generator = new StableDiffusionImageGenerator(pipelines.TextToImage);
        var options = new ImageGenerationOptions
        {
            Count = 2,
            ImageSize = new Size(48, 32),
            AdditionalProperties = new()
            {
                [ImageGenerationProperties.Seed] = 7,
                [ImageGenerationProperties.NumInferenceSteps] = JsonDocument.Parse("3").RootElement,
                [ImageGenerationProperties.GuidanceScale] = "6.5",
                [ImageGenerationProperties.NegativePrompt] = "blurry",
                [ImageGenerationProperties.Scheduler] = "Euler a",
            },
        };

        ImageGenerationResponse response = await generator.GenerateImagesAsync("a lighthouse", options, Ct);

        using GenerationResult direct = await pipelines.TextToImage.GenerateAsync(new TextToImageRequest("a lighthouse")
        {
            NumImagesPerPrompt = 2, Width = 48, Height = 32, Seed = 7, NumInferenceSteps = 3, GuidanceScale = 6.5f, NegativePrompt = "blurry",
            Scheduler = SchedulerFactory.Create("Euler a", pipelines.TextToImage.Scheduler.Config),
        }, Ct);
        var result = Assert.IsType<GenerationResult>(response.RawRepresentation);
        Assert.Equal(GenerationBytes.Flatten(direct.ImageTensor), GenerationBytes.Flatten(result.ImageTensor));
        Assert.Equal(2, response.Contents.Count);
        for (int i = 0; i < 2; i++)
        {
            DataContent image = Assert.IsType<DataContent>(response.Contents[i]);
            Assert.Equal("image/png", image.MediaType);
            Assert.Equal(direct.Images[i].ToPng(direct.Parameters[i]), image.Data.ToArray());
            Assert.Equal(7UL, image.AdditionalProperties![StableDiffusionImageGenerator.SeedProperty]);
            Assert.Equal(direct.NsfwContentDetected![i], image.AdditionalProperties[StableDiffusionImageGenerator.NsfwContentDetectedProperty]);
        }
    }

    [Fact]
    public async Task AnOriginalImage_IsImageToImage_WithTheStrength()
    {
        RgbImage picture = TestImages.Picture();
        using var generator = new StableDiffusionImageGenerator(pipelines.TextToImage);

        ImageGenerationResponse response = await generator.EditImagesAsync([StableDiffusionImageGenerator.ToContent(picture)], "a watercolour",
            new ImageGenerationOptions { AdditionalProperties = new() { ["seed"] = 3L, ["num_inference_steps"] = 4, ["strength"] = 0.5 } }, Ct);

        using GenerationResult direct = await pipelines.ImageToImage.GenerateAsync(new Img2ImgRequest("a watercolour", picture) { Seed = 3, NumInferenceSteps = 4, Strength = 0.5 }, Ct);
        Assert.Equal(GenerationBytes.Flatten(direct.ImageTensor), GenerationBytes.Flatten(Assert.IsType<GenerationResult>(response.RawRepresentation).ImageTensor));
    }

    [Fact]
    public async Task AMask_IsInpainting_FromThePropertiesOrANamedImage()
    {
        RgbImage picture = TestImages.Picture(), mask = TestImages.Mask();
        using var generator = new StableDiffusionImageGenerator(pipelines.TextToImage,
            new StableDiffusionImageGeneratorOptions { ImageDecoder = (bytes, _) => DecodeTestPng(bytes, picture, mask) });
        using var inpaint = StableDiffusionInpaintPipeline.FromPipe(pipelines.TextToImage);
        using GenerationResult direct = await inpaint.GenerateAsync(new InpaintRequest("a red sofa", picture, mask) { Seed = 5, NumInferenceSteps = 3, Width = 64, Height = 64 }, Ct);

        ImageGenerationResponse byProperty = await generator.EditImagesAsync([StableDiffusionImageGenerator.ToContent(picture)], "a red sofa",
            new ImageGenerationOptions { AdditionalProperties = new() { ["seed"] = 5, ["num_inference_steps"] = 3, [ImageGenerationProperties.MaskImage] = mask } }, Ct);
        // Encoded images go through the configured decoder.
        ImageGenerationResponse byName = await generator.EditImagesAsync(
            [new DataContent(picture.ToPng(), "image/png"), new DataContent(mask.ToPng(), "image/png") { Name = "mask" }], "a red sofa",
            new ImageGenerationOptions { AdditionalProperties = new() { ["seed"] = 5, ["num_inference_steps"] = 3 } }, Ct);

        float[] expected = GenerationBytes.Flatten(direct.ImageTensor);
        Assert.Equal(expected, GenerationBytes.Flatten(Assert.IsType<GenerationResult>(byProperty.RawRepresentation).ImageTensor));
        Assert.Equal(expected, GenerationBytes.Flatten(Assert.IsType<GenerationResult>(byName.RawRepresentation).ImageTensor));
    }

    [Fact]
    public async Task BadRequests_SayWhatToChange()
    {
        using var generator = new StableDiffusionImageGenerator(pipelines.TextToImage);
        byte[] png = TestImages.Picture().ToPng();

        ArgumentException noPrompt = await Assert.ThrowsAsync<ArgumentException>(() => generator.GenerateAsync(new ImageGenerationRequest(" "), null, Ct));
        Assert.StartsWith("The request has no prompt", noPrompt.Message, StringComparison.Ordinal);

        ArgumentException noDecoder = await Assert.ThrowsAsync<ArgumentException>(() => generator.EditImageAsync(png, "a.png", "a cat", null, Ct));
        Assert.StartsWith("The original image is encoded (image/png) and no decoder is configured", noDecoder.Message, StringComparison.Ordinal);

        NotSupportedException uri = await Assert.ThrowsAsync<NotSupportedException>(() => generator.GenerateImagesAsync("a cat",
            new ImageGenerationOptions { ResponseFormat = ImageGenerationResponseFormat.Uri }, Ct));
        Assert.Contains("ResponseFormat Uri cannot be served", uri.Message, StringComparison.Ordinal);

        ArgumentException steps = await Assert.ThrowsAsync<ArgumentException>(() => generator.GenerateImagesAsync("a cat",
            new ImageGenerationOptions { AdditionalProperties = new() { ["num_inference_steps"] = "many" } }, Ct));
        Assert.StartsWith("'num_inference_steps' must be an integer, not String 'many'.", steps.Message, StringComparison.Ordinal);

        ArgumentException strength = await Assert.ThrowsAsync<ArgumentException>(() => generator.GenerateImagesAsync("a cat",
            new ImageGenerationOptions { AdditionalProperties = new() { ["strength"] = 0.5 } }, Ct));
        Assert.StartsWith("'strength' applies to editing", strength.Message, StringComparison.Ordinal);

        ArgumentException maskOnly = await Assert.ThrowsAsync<ArgumentException>(() => generator.GenerateImagesAsync("a cat",
            new ImageGenerationOptions { AdditionalProperties = new() { [ImageGenerationProperties.MaskImage] = TestImages.Mask() } }, Ct));
        Assert.StartsWith("A mask was given without an image to repaint", maskOnly.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Metadata_NamesTheProviderAndModel()
    {
        using var generator = new StableDiffusionImageGenerator(pipelines.TextToImage);

        var metadata = generator.GetService<ImageGeneratorMetadata>()!;

        Assert.Equal(("StableDiffusion", pipelines.TextToImage.ModelPath), (metadata.ProviderName, metadata.DefaultModelId));
        Assert.Same(generator, generator.GetService<IImageGenerator>());
    }

    // The tests' "decoder" recognises the two PNGs it was built from: decoding itself belongs to the image-library packages.
    private static RgbImage DecodeTestPng(ReadOnlyMemory<byte> bytes, RgbImage picture, RgbImage mask) =>
        bytes.Span.SequenceEqual(picture.ToPng()) ? picture : bytes.Span.SequenceEqual(mask.ToPng()) ? mask : throw new InvalidDataException("Unknown test image.");
}
