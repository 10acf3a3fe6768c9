using System.Globalization;

namespace StableDiffusion.WebApi;

/// <summary>The JSON body of <c>POST /images</c>; absent values take the pipeline's defaults (the model's size, 50 steps,
/// guidance 7.5, a random seed, the model's scheduler).</summary>
internal sealed record ImageRequest(
    string? Prompt,
    string? NegativePrompt = null,
    int? Steps = null,
    float? Guidance = null,
    ulong? Seed = null,
    int? Width = null,
    int? Height = null,
    string? Scheduler = null)
{
    /// <summary>What is wrong with the request, by JSON property name; empty when it can be run.</summary>
    public Dictionary<string, string[]> Validate(ImageApiOptions limits)
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

        CheckSize(errors, "width", Width, limits.MaxSize);
        CheckSize(errors, "height", Height, limits.MaxSize);
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
