using Microsoft.Extensions.Logging;

namespace StableDiffusion.Pipelines.Internal;

/// <summary>What a generation tells the application's logger.</summary>
internal static partial class GenerationLog
{
    /// <summary>Logs the result: a warning for every image the safety checker blacked out, then a summary at Debug.</summary>
    public static void Finished(ILogger logger, GenerationResult result)
    {
        if (result.NsfwContentDetected is { } flags)
        {
            for (int i = 0; i < flags.Count; i++)
            {
                if (flags[i])
                {
                    BlackedOut(logger, i + 1, flags.Count, result.Seed);
                }
            }
        }

        if (logger.IsEnabled(LogLevel.Debug))
        {
            GenerationTimings t = result.Timings;
            Summary(logger, result.Images.Count, result.Images[0].Width, result.Images[0].Height, result.Seed, t.Total.TotalMilliseconds, t.UNetCalls,
                t.PromptEncoding.TotalMilliseconds, t.ImageEncoding.TotalMilliseconds, t.Denoising.TotalMilliseconds, t.Decoding.TotalMilliseconds,
                t.SafetyChecking.TotalMilliseconds);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Image {Index} of {Count} (seed {Seed}) was blacked out: the safety checker flagged it as NSFW, as diffusers does.")]
    private static partial void BlackedOut(ILogger logger, int index, int count, ulong? seed);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Generated {Count} image(s) of {Width}x{Height} (seed {Seed}) in {TotalMs:0} ms: {UNetCalls} UNet calls; " +
        "prompt encoding {PromptMs:0} ms, image encoding {ImageMs:0} ms, denoising {DenoisingMs:0} ms, decoding {DecodingMs:0} ms, safety checking {SafetyMs:0} ms.")]
    private static partial void Summary(ILogger logger, int count, int width, int height, ulong? seed, double totalMs, int unetCalls,
        double promptMs, double imageMs, double denoisingMs, double decodingMs, double safetyMs);
}
