using System.Globalization;
using StableDiffusion.Schedulers;

namespace StableDiffusion.Pipelines.Internal;

/// <summary>The settings of each image of a call, in the web UI form <see cref="GenerationResult.Parameters"/> gives.</summary>
internal static class ImageParameters
{
    /// <summary>
    /// The parameters of every image, computed when first asked for (naming the scheduler tries the web UI names). Images
    /// of a batch share one seed's noise stream, so each also records its batch size and position, as web UIs do.
    /// </summary>
    /// <remarks>
    /// Of <paramref name="textualInversions"/> (the loaded tokens and their files' short hashes), each image records those
    /// its prompts use, as web UIs do.
    /// </remarks>
    public static Func<IReadOnlyList<GenerationParameters>> Describe(DiffusionRequest request, IScheduler scheduler, ulong? seed,
        int width, int height, double? strength, string model, int imageCount, IReadOnlyDictionary<string, string> textualInversions) => () =>
    {
        var common = new GenerationParameters
        {
            Prompt = string.Empty,
            NumInferenceSteps = request.NumInferenceSteps,
            Sampler = SchedulerFactory.NameOf(scheduler),
            GuidanceScale = request.GuidanceScale,
            Seed = seed,
            Width = width,
            Height = height,
            Model = model,
            Strength = strength,
            ClipSkip = request.ClipSkip,
        };
        var parameters = new GenerationParameters[imageCount];
        for (int i = 0; i < imageCount; i++)
        {
            int prompt = i / request.NumImagesPerPrompt;
            string text = request.Prompts.Count > prompt ? request.Prompts[prompt] : string.Empty;
            string? negative = request.NegativePrompts is { } negatives ? negatives[prompt] : request.NegativePrompt;
            parameters[i] = common with
            {
                Prompt = text,
                NegativePrompt = negative,
                TextualInversionHashes = textualInversions
                    .Where(t => text.Contains(t.Key, StringComparison.OrdinalIgnoreCase) || negative?.Contains(t.Key, StringComparison.OrdinalIgnoreCase) == true)
                    .ToDictionary(t => t.Key, t => t.Value, StringComparer.Ordinal),
                Extra = imageCount == 1 ? common.Extra : new Dictionary<string, string>
                {
                    ["Batch size"] = imageCount.ToString(CultureInfo.InvariantCulture),
                    ["Batch pos"] = i.ToString(CultureInfo.InvariantCulture),
                },
            };
        }

        return parameters;
    };
}
