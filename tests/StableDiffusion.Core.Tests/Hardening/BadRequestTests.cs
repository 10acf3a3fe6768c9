using System.Numerics.Tensors;
using StableDiffusion.Core.Tests.EndToEnd.Support;
using StableDiffusion.Core.Tests.Hardening.Support;
using StableDiffusion.Imaging;
using StableDiffusion.Models;
using StableDiffusion.Pipelines;
using StableDiffusion.Randomness;
using StableDiffusion.Schedulers;
using Xunit;

namespace StableDiffusion.Core.Tests.Hardening;

/// <summary>
/// Bad text-to-image, image-to-image and inpainting requests: each is rejected with a specific exception whose message names
/// the setting and the problem, before any large allocation; none reaches ONNX Runtime as garbage or gives a wrong image.
/// </summary>
[Trait("Category", "Hardening")]
public sealed class BadRequestTests(TinyPipelines pipelines)
{
    private static readonly TextToImageRequest Text = new("a lighthouse on a cliff") { Seed = 1, NumInferenceSteps = 2, Height = 64, Width = 64 };

    private static readonly Dictionary<string, BadRequest> Corpus = new(StringComparer.Ordinal)
    {
        // Sizes.
        ["height not a multiple of 8"] = TextToImage(Text with { Height = 65 }, typeof(ArgumentException), "Height", "multiple of 8"),
        ["width not a multiple of 8"] = TextToImage(Text with { Width = 100 }, typeof(ArgumentException), "Width", "multiple of 8", "96"),
        ["height zero"] = TextToImage(Text with { Height = 0 }, typeof(ArgumentOutOfRangeException), "Height", "between 8 and 8192"),
        ["width negative"] = TextToImage(Text with { Width = -64 }, typeof(ArgumentOutOfRangeException), "Width", "between 8 and 8192"),
        ["height absurd"] = TextToImage(Text with { Height = 1_000_000 }, typeof(ArgumentOutOfRangeException), "Height", "8192"),
        ["width int.MaxValue"] = TextToImage(Text with { Width = int.MaxValue }, typeof(ArgumentOutOfRangeException), "Width", "8192"),
        ["too many values for one call"] = TextToImage(Text with { Height = 8192, Width = 8192, NumImagesPerPrompt = 8 }, typeof(ArgumentException), "too large", "fewer or smaller"),
        ["images per prompt overflowing the image count"] = TextToImage(new TextToImageRequest(["a", "b"]) { NumImagesPerPrompt = int.MaxValue, Height = 64, Width = 64 },
            typeof(ArgumentOutOfRangeException), "NumImagesPerPrompt", "4294967294 images", "at most 4096"),
        ["images per prompt zero"] = TextToImage(Text with { NumImagesPerPrompt = 0 }, typeof(ArgumentOutOfRangeException), "NumImagesPerPrompt", "at least 1"),
        ["size the UNet cannot take"] = TextToImage(Text with { Height = 72 }, typeof(ModelRunException), "unet", "64x72", "multiples of 64", "Height = 128"),
        // With the attention as exported: the CPU's MultiHeadAttention needs no [heads, N, N] matrix, so on the tiny model a
        // 4096x4096 image fits in memory and runs for hours instead of failing.
        ["size beyond the memory"] = new(async (p, ct) =>
        {
            using GenerationResult result = await p.TextToImageAsExported.GenerateAsync(Text with { Height = 4096, Width = 4096, NumInferenceSteps = 1 }, ct);
        }, typeof(ModelRunException), "unet", "out of memory"),

        // Steps, guidance, eta.
        ["steps zero"] = TextToImage(Text with { NumInferenceSteps = 0 }, typeof(ArgumentOutOfRangeException), "NumInferenceSteps", "at least 1"),
        ["steps negative"] = TextToImage(Text with { NumInferenceSteps = -5 }, typeof(ArgumentOutOfRangeException), "NumInferenceSteps"),
        ["steps beyond the training steps"] = TextToImage(Text with { NumInferenceSteps = int.MaxValue }, typeof(ArgumentOutOfRangeException), "1000", "num_train_timesteps"),
        ["guidance NaN"] = TextToImage(Text with { GuidanceScale = float.NaN }, typeof(ArgumentOutOfRangeException), "GuidanceScale", "finite"),
        ["guidance infinite"] = TextToImage(Text with { GuidanceScale = float.PositiveInfinity }, typeof(ArgumentOutOfRangeException), "GuidanceScale", "finite"),
        ["guidance rescale NaN"] = TextToImage(Text with { GuidanceRescale = float.NaN }, typeof(ArgumentOutOfRangeException), "GuidanceRescale", "finite"),
        ["guidance rescale negative"] = TextToImage(Text with { GuidanceRescale = -0.5f }, typeof(ArgumentOutOfRangeException), "GuidanceRescale"),
        ["eta negative"] = TextToImage(Text with { Eta = -1 }, typeof(ArgumentOutOfRangeException), "Eta"),
        ["eta NaN"] = TextToImage(Text with { Eta = float.NaN }, typeof(ArgumentOutOfRangeException), "Eta", "finite"),

        // Latents and embeddings.
        ["latents NaN"] = TextToImage(Text with { Latents = Filled([1, 4, 8, 8], 0.5f, (17, float.NaN)) }, typeof(ArgumentException), "Latents", "non-finite", "NaN", "17"),
        ["latents infinite"] = TextToImage(Text with { Latents = Filled([1, 4, 8, 8], 0.5f, (3, float.NegativeInfinity)) }, typeof(ArgumentException), "Latents", "non-finite"),
        ["latents of the wrong size"] = TextToImage(Text with { Latents = Filled([1, 4, 4, 4], 0f) }, typeof(ArgumentException), "Latents", "[1, 4, 4, 4]", "[1, 4, 8, 8]"),
        ["latents for fewer images than asked"] = TextToImage(Text with { NumImagesPerPrompt = 2, Latents = Filled([1, 4, 8, 8], 0f) }, typeof(ArgumentException),
            "Latents", "[2, 4, 8, 8]"),
        ["prompt embeddings of rank 2"] = TextToImage(new TextToImageRequest(Filled([77, 32], 0f)) { Height = 64, Width = 64 }, typeof(ArgumentException),
            "PromptEmbeds", "[batch, sequence, hidden]", "[77, 32]"),
        ["prompt embeddings of the wrong width"] = TextToImage(new TextToImageRequest(Filled([1, 77, 16], 0f)) { Height = 64, Width = 64 }, typeof(ArgumentException),
            "PromptEmbeds", "hidden size 16", "expects 32"),
        ["prompt embeddings of no prompt"] = TextToImage(new TextToImageRequest(Filled([0, 77, 32], 0f)) { Height = 64, Width = 64 }, typeof(ArgumentException),
            "PromptEmbeds", "[0, 77, 32]"),
        ["prompt embeddings NaN"] = TextToImage(new TextToImageRequest(Filled([1, 77, 32], 0f, (5, float.NaN))) { Height = 64, Width = 64 }, typeof(ArgumentException),
            "PromptEmbeds", "non-finite"),
        ["negative embeddings of another batch"] = TextToImage(new TextToImageRequest(Filled([1, 77, 32], 0f)) { NegativePromptEmbeds = Filled([2, 77, 32], 0f), Height = 64, Width = 64 },
            typeof(ArgumentException), "NegativePromptEmbeds", "[2, 77, 32]", "[1, 77, 32]"),
        ["negative embeddings without prompt embeddings"] = TextToImage(Text with { NegativePromptEmbeds = Filled([1, 77, 32], 0f) }, typeof(ArgumentException),
            "NegativePromptEmbeds needs PromptEmbeds"),
        ["negative embeddings and a negative prompt"] = TextToImage(new TextToImageRequest(Filled([1, 77, 32], 0f)) { NegativePromptEmbeds = Filled([1, 77, 32], 0f), NegativePrompt = "fog" },
            typeof(ArgumentException), "NegativePromptEmbeds", "not both"),
        ["prompt embeddings and prompts"] = TextToImage(new TextToImageRequest(Filled([1, 77, 32], 0f)) with { Prompts = ["a"] }, typeof(ArgumentException),
            "either Prompts or PromptEmbeds"),

        // Prompts.
        ["no prompt"] = TextToImage(new TextToImageRequest(Array.Empty<string>()), typeof(ArgumentException), "no prompt"),
        ["a null prompt"] = TextToImage(new TextToImageRequest(["a", null!]), typeof(ArgumentException), "Prompts[1] is null"),
        ["prompt with an unpaired high surrogate"] = TextToImage(Text with { Prompts = ["a rocket \uD83D over the sea"] }, typeof(ArgumentException), "unpaired UTF-16 surrogate", "U+D83D"),
        ["prompt with an unpaired low surrogate"] = TextToImage(Text with { Prompts = ["\uDC00 stars"] }, typeof(ArgumentException), "unpaired UTF-16 surrogate", "U+DC00"),
        ["negative prompt with an unpaired surrogate"] = TextToImage(Text with { NegativePrompt = "blurry \uD800" }, typeof(ArgumentException), "unpaired UTF-16 surrogate"),
        ["negative prompts fewer than prompts"] = TextToImage(new TextToImageRequest(["a", "b"]) { NegativePrompts = ["fog"], Height = 64, Width = 64 },
            typeof(ArgumentException), "NegativePrompts has 1 entries", "2 prompts"),
        ["negative prompt and negative prompts"] = TextToImage(Text with { NegativePrompt = "fog", NegativePrompts = ["fog"] }, typeof(ArgumentException), "NegativePrompt", "not both"),
        ["a null negative prompt"] = TextToImage(Text with { NegativePrompts = [null!] }, typeof(ArgumentException), "NegativePrompts contains null"),
        ["seed and generator"] = TextToImage(Text with { Generator = new TorchCpuGenerator(1) }, typeof(ArgumentException), "either Seed or Generator"),
        ["no request"] = new((p, ct) => p.TextToImage.GenerateAsync(null!, ct), typeof(ArgumentNullException), "request"),

        // The wrong pipeline for the model.
        ["inpainting model in the text-to-image pipeline"] = new(async (p, ct) =>
        {
            using var pipeline = StableDiffusionPipeline.FromPipe(p.Inpaint);
            using GenerationResult result = await pipeline.GenerateAsync(Text, ct);
        }, typeof(InvalidOperationException), "inpainting UNet", "9 input channels", "StableDiffusionInpaintPipeline"),
        ["inpainting model in the image-to-image pipeline"] = new(async (p, ct) =>
        {
            using var pipeline = StableDiffusionImg2ImgPipeline.FromPipe(p.Inpaint);
            RgbImage picture = TestImages.Picture();
            using GenerationResult result = await pipeline.GenerateAsync(new Img2ImgRequest("a lighthouse", picture) { NumInferenceSteps = 2 }, ct);
        }, typeof(InvalidOperationException), "inpainting UNet", "StableDiffusionImg2ImgPipeline"),

        // Image-to-image.
        ["strength above 1"] = ImageToImage(r => r with { Strength = 1.5 }, typeof(ArgumentOutOfRangeException), "Strength", "between 0 and 1"),
        ["strength negative"] = ImageToImage(r => r with { Strength = -0.1 }, typeof(ArgumentOutOfRangeException), "Strength", "between 0 and 1"),
        ["strength NaN"] = ImageToImage(r => r with { Strength = double.NaN }, typeof(ArgumentOutOfRangeException), "Strength"),
        ["strength leaving no step"] = ImageToImage(r => r with { Strength = 0.05, NumInferenceSteps = 10 }, typeof(ArgumentException), "Strength", "no denoising step"),
        ["strength zero"] = ImageToImage(r => r with { Strength = 0 }, typeof(ArgumentException), "Strength", "no denoising step"),
        ["image not a multiple of 8 without resizing"] = ImageToImage(r => r with { Image = TestImages.Picture(70, 66), ResizeImage = false }, typeof(ArgumentException),
            "70x66", "ResizeImage is false"),
        ["image smaller than a latent pixel"] = ImageToImage(r => r with { Image = TestImages.Picture(4, 4) }, typeof(ArgumentException), "4x4", "at least 8x8"),
        ["image wider than the limit"] = ImageToImage(r => r with { Image = TestImages.Picture(9000, 16) }, typeof(ArgumentOutOfRangeException), "Width", "8192"),
        ["no image"] = ImageToImage(r => r with { Image = null! }, typeof(ArgumentNullException), "Image"),

        // Inpainting.
        ["mask smaller than the image"] = Inpaint(r => r with { MaskImage = TestImages.Mask(32, 32) }, typeof(ArgumentException), "mask is 32x32", "image is 64x64"),
        ["inpainting height not a multiple of 8"] = Inpaint(r => r with { Height = 60 }, typeof(ArgumentException), "Height", "multiple of 8"),
        ["inpainting latents of the wrong size"] = Inpaint(r => r with { Latents = Filled([1, 4, 4, 4], 0f) }, typeof(ArgumentException), "Latents", "[1, 4, 8, 8]"),
        ["inpainting latents NaN"] = Inpaint(r => r with { Latents = Filled([1, 4, 8, 8], 0f, (0, float.NaN)) }, typeof(ArgumentException), "Latents", "non-finite"),
        ["inpainting strength above 1"] = Inpaint(r => r with { Strength = 2 }, typeof(ArgumentOutOfRangeException), "Strength"),
        ["inpainting image not a multiple of 8 without resizing"] = Inpaint(r => r with { Image = TestImages.Picture(70, 70), MaskImage = TestImages.Mask(70, 70), ResizeImage = false },
            typeof(ArgumentException), "70x70", "ResizeImage is false"),
        ["inpainting image of one pixel"] = Inpaint(r => r with { Image = TestImages.Picture(1, 1), MaskImage = TestImages.Mask(1, 1) }, typeof(ArgumentException), "at least 8x8"),
        ["no mask"] = new(async (p, ct) =>
        {
            RgbImage picture = TestImages.Picture();
            using GenerationResult result = await p.Inpaint.GenerateAsync(new InpaintRequest("a", picture, null!), ct);
        }, typeof(ArgumentNullException), "maskImage"),
    };

    public static TheoryData<string> Cases() => [.. Corpus.Keys];

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task BadRequest_IsRejectedWithASpecificErrorNamingTheProblem(string name)
    {
        BadRequest bad = Corpus[name];

        Exception? error = await Record.ExceptionAsync(() => bad.Run(pipelines, TestContext.Current.CancellationToken));

        ExceptionAssert.Specific(error, bad.Exception, bad.Message);
    }

    [Fact]
    public async Task AfterEveryKindOfBadRequest_ThePipelineStillGivesTheSameImage()
    {
        StableDiffusionPipeline pipeline = pipelines.TextToImage;
        CancellationToken ct = TestContext.Current.CancellationToken;
        using GenerationResult before = await pipeline.GenerateAsync(Text, ct);
        foreach (BadRequest bad in Corpus.Values)
        {
            Assert.NotNull(await Record.ExceptionAsync(() => bad.Run(pipelines, ct)));
        }

        using GenerationResult after = await pipeline.GenerateAsync(Text, ct);
        ResultAssert.Identical(before, after, "before and after the corpus");
    }

    private static BadRequest TextToImage(TextToImageRequest request, Type exception, params string[] message) =>
        new(async (p, ct) =>
        {
            using GenerationResult result = await p.TextToImage.GenerateAsync(request, ct);
        }, exception, message);

    private static BadRequest ImageToImage(Func<Img2ImgRequest, Img2ImgRequest> change, Type exception, params string[] message) =>
        new(async (p, ct) =>
        {
            RgbImage picture = TestImages.Picture();
            Img2ImgRequest request = change(new Img2ImgRequest("a lighthouse", picture) { Seed = 1, NumInferenceSteps = 4 });
            using GenerationResult result = await p.ImageToImage.GenerateAsync(request, ct);
        }, exception, message);

    private static BadRequest Inpaint(Func<InpaintRequest, InpaintRequest> change, Type exception, params string[] message) =>
        new(async (p, ct) =>
        {
            RgbImage picture = TestImages.Picture();
            RgbImage mask = TestImages.Mask();
            InpaintRequest request = change(new InpaintRequest("a lighthouse", picture, mask) { Seed = 1, NumInferenceSteps = 4, Height = 64, Width = 64 });
            using GenerationResult result = await p.Inpaint.GenerateAsync(request, ct);
        }, exception, message);

    private static Tensor<float> Filled(nint[] shape, float value, params (int Index, float Value)[] changes)
    {
        var values = new float[shape.Aggregate((nint)1, (a, b) => a * b)];
        Array.Fill(values, value);
        foreach ((int index, float changed) in changes)
        {
            values[index] = changed;
        }

        return Tensor.Create(values, shape);
    }

    /// <summary>A bad request: how to make it, and the error that must come out.</summary>
    /// <param name="Run">Makes the request on the shared pipelines.</param>
    /// <param name="Exception">The exact exception type expected.</param>
    /// <param name="Message">What the message must name.</param>
    private sealed record BadRequest(Func<TinyPipelines, CancellationToken, Task> Run, Type Exception, params string[] Message);
}
