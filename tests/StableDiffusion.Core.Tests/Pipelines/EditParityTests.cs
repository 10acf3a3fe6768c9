using System.Numerics.Tensors;
using System.Text.Json;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.Pipelines;

/// <summary>Every image-to-image and inpainting case of reference.json, through the public API: same images, flags and timesteps as diffusers.</summary>
[Trait("Category", "Parity")]
[Trait("Area", "Edit")]
public sealed class EditParityTests
{
    public static IEnumerable<TheoryDataRow<string>> Cases() => Reference.CaseNames("edit");

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Case_MatchesDiffusers(string name)
    {
        Reference.Require();
        JsonElement c = Reference.Case("edit", name);
        string modelPath = Reference.ResolvePath(c.GetProperty("model").GetString()!);
        using Image<Rgb24> image = ReferenceImage(c.GetProperty("image").GetString()!);
        var seen = new List<float>();
        Action<StepEndContext> record = step => seen.Add(step.Timestep);
        string prompt = c.GetProperty("prompt").GetString()!;
        ulong seed = c.GetProperty("seed").GetUInt64();
        int steps = c.GetProperty("steps").GetInt32();
        float guidance = c.GetProperty("guidance").GetSingle();
        double strength = c.GetProperty("strength").GetDouble();
        int imagesPerPrompt = c.GetProperty("num_images_per_prompt").GetInt32();
        var scheduler = ReferenceSchedulers.Create(c.GetProperty("scheduler").GetString()!);
        CancellationToken ct = TestContext.Current.CancellationToken;

        GenerationResult result;
        switch (c.GetProperty("kind").GetString())
        {
            case "img2img":
            {
                using var pipe = await StableDiffusionImg2ImgPipeline.FromPretrainedAsync(modelPath, cancellationToken: ct);
                result = await pipe.GenerateAsync(new ImageToImageRequest(prompt, image)
                {
                    Strength = strength, Seed = seed, NumInferenceSteps = steps, GuidanceScale = guidance,
                    NumImagesPerPrompt = imagesPerPrompt, Scheduler = scheduler, OnStepEnd = record,
                }, ct);
                break;
            }

            case "inpaint":
            {
                using Image<L8> mask = ReferenceMask(c.GetProperty("mask").GetString()!);
                using var pipe = await StableDiffusionInpaintPipeline.FromPretrainedAsync(modelPath, cancellationToken: ct);
                Assert.Equal(c.GetProperty("unet").GetInt32(), pipe.Unet.InChannels ?? 4);
                result = await pipe.GenerateAsync(new InpaintRequest(prompt, image, mask)
                {
                    Strength = strength, Seed = seed, NumInferenceSteps = steps, GuidanceScale = guidance,
                    NumImagesPerPrompt = imagesPerPrompt, Scheduler = scheduler, OnStepEnd = record,
                }, ct);
                break;
            }

            default:
                throw new InvalidOperationException($"Unknown edit case kind '{c.GetProperty("kind").GetString()}' in case {name}.");
        }

        using (result)
        {
            Assert.Equal(c.GetProperty("timesteps_run").EnumerateArray().Select(t => t.GetSingle()), seen);
            ArrayAssert.Close(Reference.Array($"edit/{name}/torch_images").ToSingle(), result.ImageTensor.AsSpan(), 1e-4, $"{name}: images");
            Assert.Equal(c.GetProperty("torch_nsfw").EnumerateArray().Select(f => f.GetBoolean()), result.NsfwContentDetected!);
        }
    }

    [Fact]
    public async Task VariantsModel_WithTheReferenceLatents_MatchesDiffusers()
    {
        Reference.Require();
        JsonElement check = Reference.Root.GetProperty("edit").GetProperty("variants_check");
        string modelPath = Reference.ResolvePath(check.GetProperty("model").GetString()!);
        using var pipe = await StableDiffusionPipeline.FromPretrainedAsync(modelPath, cancellationToken: TestContext.Current.CancellationToken);
        NpyArray latents = Reference.Array(check.GetProperty("init_latents").GetString()!);

        using GenerationResult result = await pipe.GenerateAsync(new TextToImageRequest(check.GetProperty("prompt").GetString()!)
        {
            Scheduler = ReferenceSchedulers.Create(check.GetProperty("scheduler").GetString()!),
            NumInferenceSteps = check.GetProperty("steps").GetInt32(),
            Latents = Tensor.Create(latents.ToSingle(), latents.Shape.Select(d => (nint)d).ToArray()),
            Height = latents.Shape[2] * 8,
            Width = latents.Shape[3] * 8,
        }, TestContext.Current.CancellationToken);

        ArrayAssert.Close(Reference.Array(check.GetProperty("torch_images").GetString()!).ToSingle(), result.ImageTensor.AsSpan(), 1e-4, "variants: images");
    }

    internal static Image<Rgb24> ReferenceImage(string name)
    {
        NpyArray array = Reference.Array(name);
        return Image.LoadPixelData<Rgb24>(array.ToBytes(), array.Shape[1], array.Shape[0]);
    }

    internal static Image<L8> ReferenceMask(string name)
    {
        NpyArray array = Reference.Array(name);
        return Image.LoadPixelData<L8>(array.ToBytes(), array.Shape[1], array.Shape[0]);
    }
}
