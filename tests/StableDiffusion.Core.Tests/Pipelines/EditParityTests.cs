using System.Numerics.Tensors;
using System.Text.Json;
using StableDiffusion.Imaging;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.Pipelines;

/// <summary>Every image-to-image and inpainting case of every reference, through the public API: same images, flags and timesteps as diffusers.</summary>
[Trait("Category", "Parity")]
[Trait("Area", "Edit")]
public sealed class EditParityTests
{
    private static readonly string[] SectionFields = ["note", "cases", "variants_check"];
    private static readonly string[] CaseFields =
        [.. ReferenceCases.CallFields, "kind", "strength", "image", "mask", "unet", "timesteps_run", "model", "torch_model", "torch_unet", "height", "width"];

    public static IEnumerable<TheoryDataRow<string>> Cases() => Reference.CaseNames("edit");

    public static IEnumerable<TheoryDataRow<string>> VariantsChecks() =>
        Reference.IsAvailable
            ? [.. Reference.Sets.Where(s => s.Root.TryGetProperty("edit", out JsonElement e) && e.TryGetProperty("variants_check", out _)).Select(s => new TheoryDataRow<string>(s.Label))]
            : Reference.CaseNames("edit");

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Case_MatchesDiffusers(string id)
    {
        (ReferenceSet set, JsonElement c) = Reference.Case("edit", id);
        Reference.RequireKnownFields(set.Root.GetProperty("edit"), $"{set.Label}: edit", SectionFields);
        Reference.RequireKnownFields(c, id, CaseFields);
        var seen = new List<float>();

        using GenerationResult result = await RunAsync(set, c, set.ResolvePath(c.GetProperty("model").GetString()!), step => seen.Add(step.Timestep));

        ReferenceCases.AssertTimesteps(c.GetProperty("timesteps_run"), seen, id);
        ReferenceCases.AssertMatches(set, $"edit/{c.GetProperty("name").GetString()}/torch_images", c, result, id);
    }

    [Theory]
    [MemberData(nameof(VariantsChecks))]
    public async Task VariantsModel_WithTheReferenceLatents_MatchesDiffusers(string label)
    {
        Reference.Require();
        ReferenceSet set = Reference.Sets.Single(s => s.Label == label);
        JsonElement check = set.Root.GetProperty("edit").GetProperty("variants_check");
        Reference.RequireKnownFields(check, $"{label}: edit.variants_check", "model", "torch_model", "note", "prompt", "scheduler", "steps", "init_latents", "torch_images");
        string modelPath = set.ResolvePath(check.GetProperty("model").GetString()!);
        using var pipe = await StableDiffusionPipeline.FromPretrainedAsync(modelPath, cancellationToken: TestContext.Current.CancellationToken);
        NpyArray latents = set.Array(check.GetProperty("init_latents").GetString()!);

        using GenerationResult result = await pipe.GenerateAsync(new TextToImageRequest(check.GetProperty("prompt").GetString()!)
        {
            Scheduler = ReferenceSchedulers.Create(set, check.GetProperty("scheduler").GetString()!),
            NumInferenceSteps = check.GetProperty("steps").GetInt32(),
            Latents = Tensor.Create(latents.ToSingle(), latents.Shape.Select(d => (nint)d).ToArray()),
            Height = latents.Shape[2] * 8,
            Width = latents.Shape[3] * 8,
        }, TestContext.Current.CancellationToken);

        ArrayAssert.Close(set.Array(check.GetProperty("torch_images").GetString()!).ToSingle(), result.ImageTensor.AsSpan(), 1e-4, $"{label}: variants: images");
    }

    /// <summary>
    /// Runs an edit case of a reference on the model at <paramref name="modelPath"/> through the public API: a model folder,
    /// or a single-file checkpoint (with its base model in <paramref name="options"/>).
    /// </summary>
    internal static async Task<GenerationResult> RunAsync(ReferenceSet set, JsonElement c, string modelPath, Action<StepEndContext>? onStepEnd,
        StableDiffusionPipelineOptions? options = null)
    {
        RgbImage image = ReferenceImage(set, c.GetProperty("image").GetString()!);
        IReadOnlyList<string> prompts = ReferenceCases.Prompts(c);
        double strength = c.GetProperty("strength").GetDouble();
        CancellationToken ct = TestContext.Current.CancellationToken;
        switch (c.GetProperty("kind").GetString())
        {
            case "img2img":
            {
                using var pipe = File.Exists(modelPath)
                    ? await StableDiffusionImg2ImgPipeline.FromSingleFileAsync(modelPath, options, ct)
                    : await StableDiffusionImg2ImgPipeline.FromPretrainedAsync(modelPath, options, ct);
                var request = ReferenceCases.WithCallSettings(new Img2ImgRequest(prompts, image) { Strength = strength }, set, c, onStepEnd);
                return await pipe.GenerateAsync(request, ct);
            }

            case "inpaint":
            {
                RgbImage mask = ReferenceMask(set, c.GetProperty("mask").GetString()!);
                using var pipe = File.Exists(modelPath)
                    ? await StableDiffusionInpaintPipeline.FromSingleFileAsync(modelPath, options, ct)
                    : await StableDiffusionInpaintPipeline.FromPretrainedAsync(modelPath, options, ct);
                if (c.TryGetProperty("unet", out JsonElement channels))
                {
                    Assert.Equal(channels.GetInt32(), pipe.UNet.InChannels ?? 4);
                }

                (int height, int width) = ReferenceCases.DiffusersDefaultSize(set, c, File.Exists(modelPath) ? options?.BaseModel : null);
                var request = ReferenceCases.WithCallSettings(new InpaintRequest(prompts, image, mask) { Strength = strength, Height = height, Width = width }, set, c, onStepEnd);
                return await pipe.GenerateAsync(request, ct);
            }

            default:
                throw new InvalidOperationException($"Unknown edit case kind '{c.GetProperty("kind").GetString()}' in case {c.GetProperty("name").GetString()}.");
        }
    }

    internal static RgbImage ReferenceImage(ReferenceSet set, string name)
    {
        NpyArray array = set.Array(name);
        return RgbImage.FromRgb(array.ToBytes(), array.Shape[1], array.Shape[0]);
    }

    // A grey mask as equal R, G and B: its luma is its grey level exactly.
    internal static RgbImage ReferenceMask(ReferenceSet set, string name)
    {
        NpyArray array = set.Array(name);
        return RgbImage.FromRgb([.. array.ToBytes().SelectMany(level => new[] { level, level, level })], array.Shape[1], array.Shape[0]);
    }
}
