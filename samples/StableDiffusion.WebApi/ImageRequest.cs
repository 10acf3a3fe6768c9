using System.Globalization;
using SkiaSharp;

namespace StableDiffusion.WebApi;

/// <summary>The JSON body of <c>POST /images</c> and <c>POST /images/stream</c>, and the fields of <c>POST /images/edit</c>;
/// absent values take the pipeline's defaults (the model's size, 50 steps, guidance 7.5, a random seed, the model's
/// scheduler, PNG). With <see cref="InitImage"/> it is image-to-image.</summary>
internal sealed record ImageRequest(
    string? Prompt,
    string? NegativePrompt = null,
    int? Steps = null,
    float? Guidance = null,
    long? Seed = null,
    int? Width = null,
    int? Height = null,
    string? Scheduler = null,
    string? InitImage = null,
    double? Strength = null,
    string? Format = null)
{
    /// <summary>The JSON field names (camelCase), for rejecting unknown ones by name.</summary>
    public static readonly IReadOnlyList<string> Fields =
        ["prompt", "negativePrompt", "steps", "guidance", "seed", "width", "height", "scheduler", "initImage", "strength", "format"];

    /// <summary>The response formats, by <see cref="Format"/>: the media type and SkiaSharp's encoder (null: the SDK's PNG with parameters).</summary>
    public static readonly IReadOnlyDictionary<string, (string MediaType, SKEncodedImageFormat? Encoder)> Formats =
        new Dictionary<string, (string, SKEncodedImageFormat?)>(StringComparer.OrdinalIgnoreCase)
        {
            ["png"] = ("image/png", null),
            ["jpeg"] = ("image/jpeg", SKEncodedImageFormat.Jpeg),
            ["webp"] = ("image/webp", SKEncodedImageFormat.Webp),
        };

    /// <summary>The seed to use: null (random) when absent or -1, as web UIs take it.</summary>
    public ulong? SeedValue => Seed is long seed and >= 0 ? (ulong)seed : null;

    /// <summary>The number of denoising steps.</summary>
    public int StepsValue => Steps ?? 50;

    /// <summary>The guidance scale.</summary>
    public float GuidanceValue => Guidance ?? 7.5f;

    /// <summary>What is wrong with the request, by field name; empty when it can be run.</summary>
    /// <param name="limits">The configured limits.</param>
    /// <param name="edit">Whether the image to change comes as a file (<c>POST /images/edit</c>) rather than <see cref="InitImage"/>.</param>
    public Dictionary<string, string[]> Validate(ImageApiOptions limits, bool edit = false)
    {
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        if (string.IsNullOrWhiteSpace(Prompt))
        {
            errors["prompt"] = ["A prompt is required."];
        }

        if (Steps is int steps && (steps < 1 || steps > limits.MaxSteps))
        {
            errors["steps"] = [Invariant($"Steps must be from 1 to {limits.MaxSteps}, not {steps}.")];
        }

        if (Guidance is float guidance && !float.IsFinite(guidance))
        {
            errors["guidance"] = ["Guidance must be a finite number."];
        }

        if (Seed < -1)
        {
            errors["seed"] = [Invariant($"The seed must be 0 or more, or -1 for a random one, not {Seed}.")];
        }

        CheckSize(errors, "width", Width, limits.MaxSize);
        CheckSize(errors, "height", Height, limits.MaxSize);
        if (Strength is double strength && !(strength is >= 0 and <= 1))
        {
            errors["strength"] = [Invariant($"The strength must be from 0 (keep the image) to 1 (replace it), not {strength}.")];
        }

        bool changesAnImage = edit || InitImage is not null;
        if (!changesAnImage && Strength is not null)
        {
            errors["strength"] = ["The strength applies to image-to-image: send the image to change as initImage (base64), or use POST /images/edit."];
        }

        if (changesAnImage && (Width is not null || Height is not null))
        {
            errors[edit ? "image" : "initImage"] = ["Width and height do not apply to image-to-image: the output has the image's size, rounded down to a multiple of 8."];
        }

        if (Format is { } format && !Formats.ContainsKey(format))
        {
            errors["format"] = [$"The format must be png, jpeg or webp, not '{format}'."];
        }

        return errors;
    }

    private static void CheckSize(Dictionary<string, string[]> errors, string name, int? value, int maxSize)
    {
        if (value is int size && (size <= 0 || size % 8 != 0 || size > maxSize))
        {
            errors[name] = [Invariant($"The {name} must be a multiple of 8 from 8 to {maxSize} pixels, not {size}.")];
        }
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
