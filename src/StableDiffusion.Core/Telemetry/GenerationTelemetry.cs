using System.Diagnostics;
using System.Diagnostics.Metrics;
using StableDiffusion.Pipelines;

namespace StableDiffusion.Telemetry;

/// <summary>The SDK's activity source and instruments (names in <see cref="StableDiffusionTelemetry"/>).</summary>
internal static class GenerationTelemetry
{
    public const string PipelineTag = "stablediffusion.pipeline";
    public const string OutcomeTag = "stablediffusion.outcome";
    public const string StageTag = "stablediffusion.stage";

    private static readonly string? Version = typeof(GenerationTelemetry).Assembly.GetName().Version?.ToString();

    public static readonly ActivitySource Source = new(StableDiffusionTelemetry.ActivitySourceName, Version);

    public static readonly Meter Meter = new(StableDiffusionTelemetry.MeterName, Version);

    public static readonly Counter<long> Generations = Meter.CreateCounter<long>(StableDiffusionTelemetry.GenerationsInstrument, "{generation}",
        "Generations finished, by pipeline and outcome.");

    public static readonly Histogram<double> GenerationDuration = Meter.CreateHistogram<double>(StableDiffusionTelemetry.GenerationDurationInstrument, "s",
        "How long whole generations took.");

    public static readonly Histogram<double> StageDuration = Meter.CreateHistogram<double>(StableDiffusionTelemetry.StageDurationInstrument, "s",
        "How long each stage of a generation took.");

    public static readonly Counter<long> UNetCalls = Meter.CreateCounter<long>(StableDiffusionTelemetry.UNetCallsInstrument, "{call}",
        "UNet evaluations.");

    public static readonly Histogram<double> QueueWait = Meter.CreateHistogram<double>(StableDiffusionTelemetry.QueueWaitInstrument, "s",
        "How long generations waited for a slot.");

    public static readonly Counter<long> FlaggedImages = Meter.CreateCounter<long>(StableDiffusionTelemetry.FlaggedImagesInstrument, "{image}",
        "Images the safety checker flagged (and blacked out).");

    /// <summary>The stage's name in spans and metrics.</summary>
    public static string StageName(GenerationStage stage) => stage switch
    {
        GenerationStage.EncodingPrompt => "encode_prompt",
        GenerationStage.EncodingImage => "encode_image",
        GenerationStage.Denoising => "denoise",
        GenerationStage.Decoding => "decode",
        GenerationStage.SafetyChecking => "safety_check",
        _ => "complete",
    };
}
