using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using StableDiffusion.Core.Tests.EndToEnd.Support;
using StableDiffusion.Pipelines;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.EndToEnd;

/// <summary>What the library tells an application's ILogger: load times per component, a warning per blacked-out image, a summary per generation.</summary>
[Trait("Area", "Logging")]
public sealed class LoggingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Loading_LogsEachComponentWithItsTime()
    {
        Fixtures.Require();
        using var logs = new FakeLoggerProvider();
        using var loggerFactory = LoggerFactory.Create(builder => builder.AddProvider(logs));

        using StableDiffusionPipeline pipe = await StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel,
            new StableDiffusionPipelineOptions { LoggerFactory = loggerFactory }, Ct);

        // The UNet loads beside the other components, so its line may come anywhere among theirs.
        string[] loaded = [.. logs.Collector.GetSnapshot().Where(r => r.Message.StartsWith("Component ", StringComparison.Ordinal)).Select(r => r.Message)];
        Assert.Equal(4, loaded.Length);
        foreach (string component in new[] { "text_encoder", "unet", "vae_decoder", "safety_checker" })
        {
            Assert.Single(loaded, message => System.Text.RegularExpressions.Regex.IsMatch(message, $"^Component {component} loaded in \\d+ ms on CPU\\.$"));
        }
    }

    [Fact]
    public async Task AFlaggedImage_IsAWarning_AndEveryGenerationASummaryAtDebug()
    {
        Reference.Require();
        using var logs = new FakeLoggerProvider();
        using var loggerFactory = LoggerFactory.Create(builder => builder.AddProvider(logs).SetMinimumLevel(LogLevel.Debug));
        using StableDiffusionPipeline pipe = await StableDiffusionPipeline.FromPretrainedAsync(Fixtures.TinyModel,
            new StableDiffusionPipelineOptions { LoggerFactory = loggerFactory }, Ct);
        TextToImageRequest flagged = FlaggedRequest.Create();

        using GenerationResult result = await pipe.GenerateAsync(flagged, Ct);

        Assert.Equal([true], result.NsfwContentDetected!);
        FakeLogRecord warning = Assert.Single(logs.Collector.GetSnapshot(), r => r.Level == LogLevel.Warning);
        Assert.Equal($"Image 1 of 1 (seed {flagged.Seed}) was blacked out: the safety checker flagged it as NSFW, as diffusers does.", warning.Message);
        FakeLogRecord summary = Assert.Single(logs.Collector.GetSnapshot(), r => r.Level == LogLevel.Debug && r.Message.StartsWith("Generated ", StringComparison.Ordinal));
        Assert.Matches($@"^Generated 1 image\(s\) of 64x64 \(seed {flagged.Seed}\) in \d+ ms: {result.Timings.UNetCalls} UNet calls; prompt encoding \d+ ms, ", summary.Message);
    }
}
