namespace StableDiffusion.Telemetry;

/// <summary>
/// The names under which the SDK reports what it does, for OpenTelemetry or any <see cref="System.Diagnostics.ActivityListener"/>
/// and <see cref="System.Diagnostics.Metrics.MeterListener"/>: one span per generation with an event per stage, and
/// counters and histograms of generations, stages, UNet calls, queue waits and flagged images (docs/telemetry.md lists
/// them). With nobody listening, nothing is recorded and nothing is allocated.
/// </summary>
/// <example>
/// <code>
/// builder.Services.AddOpenTelemetry()
///     .WithTracing(t =&gt; t.AddSource(StableDiffusionTelemetry.ActivitySourceName))
///     .WithMetrics(m =&gt; m.AddMeter(StableDiffusionTelemetry.MeterName));
/// </code>
/// </example>
public static class StableDiffusionTelemetry
{
    /// <summary>The name of the <see cref="System.Diagnostics.ActivitySource"/> of generation spans.</summary>
    public const string ActivitySourceName = "StableDiffusion";

    /// <summary>The name of the <see cref="System.Diagnostics.Metrics.Meter"/> of the SDK's instruments.</summary>
    public const string MeterName = "StableDiffusion";

    /// <summary>Counter of finished generations (<c>{generation}</c>), tagged <c>stablediffusion.pipeline</c> and <c>stablediffusion.outcome</c> (success, cancelled, error).</summary>
    public const string GenerationsInstrument = "stablediffusion.generations";

    /// <summary>Histogram of whole generations' durations in seconds, tagged <c>stablediffusion.pipeline</c> and <c>stablediffusion.outcome</c>.</summary>
    public const string GenerationDurationInstrument = "stablediffusion.generation.duration";

    /// <summary>Histogram of stage durations in seconds, tagged <c>stablediffusion.stage</c> (encode_prompt, encode_image, denoise, decode, safety_check).</summary>
    public const string StageDurationInstrument = "stablediffusion.stage.duration";

    /// <summary>Counter of UNet evaluations (<c>{call}</c>), tagged <c>stablediffusion.pipeline</c>.</summary>
    public const string UNetCallsInstrument = "stablediffusion.unet.calls";

    /// <summary>Histogram of the seconds a generation waited in a <see cref="ImageGeneration.GenerationQueue"/> before it ran.</summary>
    public const string QueueWaitInstrument = "stablediffusion.queue.wait";

    /// <summary>Counter of images the safety checker flagged (<c>{image}</c>), tagged <c>stablediffusion.pipeline</c>.</summary>
    public const string FlaggedImagesInstrument = "stablediffusion.images.flagged";
}
