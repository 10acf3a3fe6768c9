using System.Text.Json;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.Pipelines;

/// <summary>What every pipeline case of a reference (text-to-image, image-to-image, inpainting) says, as a request and as checks.</summary>
internal static class ReferenceCases
{
    // Relative to max(1, max |t|), as the scheduler parity rule, but ten times tighter: 1e-3 at t = 999, 16 float32 ulps.
    private const double TimestepTolerance = 1e-6;

    /// <summary>The fields every pipeline case may carry: diffusers' call arguments and the outcome's flags.</summary>
    public static readonly string[] CallFields =
        ["name", "prompt", "negative_prompt", "seed", "steps", "scheduler", "guidance", "num_images_per_prompt", "eta", "guidance_rescale", "torch_nsfw", "stochastic"];

    /// <summary>diffusers' <c>prompt</c>: one string, or a list.</summary>
    public static IReadOnlyList<string> Prompts(JsonElement c) => Strings(c.GetProperty("prompt"));

    /// <summary>The settings every pipeline call takes, from the case, with the case's scheduler.</summary>
    public static T WithCallSettings<T>(T request, ReferenceSet set, JsonElement c, Action<StepEndContext>? onStepEnd)
        where T : DiffusionRequest
    {
        DiffusionRequest configured = request with
        {
            Seed = c.GetProperty("seed").GetUInt64(),
            NumInferenceSteps = c.GetProperty("steps").GetInt32(),
            GuidanceScale = c.GetProperty("guidance").GetSingle(),
            GuidanceRescale = c.TryGetProperty("guidance_rescale", out JsonElement rescale) ? rescale.GetSingle() : 0f,
            Eta = c.TryGetProperty("eta", out JsonElement eta) ? eta.GetSingle() : 0f,
            NumImagesPerPrompt = c.GetProperty("num_images_per_prompt").GetInt32(),
            Scheduler = ReferenceSchedulers.Create(set, c.GetProperty("scheduler").GetString()!),
            OnStepEnd = onStepEnd,
        };

        // diffusers' negative_prompt: one string for every prompt, or a list with one per prompt.
        if (c.TryGetProperty("negative_prompt", out JsonElement negative) && negative.ValueKind != JsonValueKind.Null)
        {
            configured = negative.ValueKind == JsonValueKind.Array
                ? configured with { NegativePrompts = Strings(negative) }
                : configured with { NegativePrompt = negative.GetString() };
        }

        return (T)configured;
    }

    /// <summary>
    /// The output size diffusers' inpainting pipeline used: the case's, else its default, the UNet's sample size times the
    /// VAE's scale factor from the PyTorch model's configs (<c>torch_model</c>; the published reference names none, and its
    /// PyTorch weights are those of the tiny model in the diffusers layout), or <paramref name="configModel"/>'s when given
    /// (a single file's base model). ONNX exports carry no such config.
    /// </summary>
    public static (int Height, int Width) DiffusersDefaultSize(ReferenceSet set, JsonElement c, string? configModel = null)
    {
        string torchModel = configModel ?? set.ResolvePath(c.TryGetProperty("torch_model", out JsonElement model) ? model.GetString()! : "../tiny-sd");
        using JsonDocument unet = JsonDocument.Parse(File.ReadAllText(Path.Combine(torchModel, "unet", "config.json")));
        using JsonDocument vae = JsonDocument.Parse(File.ReadAllText(Path.Combine(torchModel, "vae", "config.json")));
        int size = unet.RootElement.GetProperty("sample_size").GetInt32() << (vae.RootElement.GetProperty("block_out_channels").GetArrayLength() - 1);
        return (c.TryGetProperty("height", out JsonElement h) ? h.GetInt32() : size, c.TryGetProperty("width", out JsonElement w) ? w.GetInt32() : size);
    }

    /// <summary>
    /// The timesteps the UNet saw, those diffusers' loop saw: the same count, each within a few float32 ulps. Timesteps
    /// derived from sigmas (Karras spacing, KDPM2's interpolated steps) go through torch's vectorised float32 pow/log/exp,
    /// which are not correctly rounded (torch 2.11's sigma table differs from the correctly rounded one at 6 of 1000 entries,
    /// torch 1.13's elsewhere), so bit equality would test one torch build, not the schedule.
    /// </summary>
    public static void AssertTimesteps(JsonElement expected, IReadOnlyList<float> seen, string what)
    {
        float[] reference = [.. expected.EnumerateArray().Select(t => t.GetSingle())];
        Assert.True(reference.Length == seen.Count, $"{what}: diffusers ran {reference.Length} UNet steps ({string.Join(", ", reference)}), the pipeline {seen.Count} ({string.Join(", ", seen)}).");
        ArrayAssert.CloseRelative(reference, [.. seen], TimestepTolerance, $"{what}: timesteps");
    }

    /// <summary>The images within 1e-4 of diffusers' and the same NSFW flag per image.</summary>
    public static void AssertMatches(ReferenceSet set, string imagesArray, JsonElement c, GenerationResult result, string what)
    {
        ArrayAssert.Close(set.Array(imagesArray).ToSingle(), result.ImageTensor.AsSpan(), 1e-4, $"{what}: images");
        Assert.Equal(c.GetProperty("torch_nsfw").EnumerateArray().Select(f => f.GetBoolean()), result.NsfwContentDetected!);
    }

    private static string[] Strings(JsonElement value) => value.ValueKind == JsonValueKind.Array
        ? [.. value.EnumerateArray().Select(p => p.GetString()!)]
        : [value.GetString()!];
}
