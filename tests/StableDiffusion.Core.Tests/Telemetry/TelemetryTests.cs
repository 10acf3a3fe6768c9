using System.Diagnostics;
using System.Diagnostics.Metrics;
using StableDiffusion.Core.Tests.EndToEnd.Support;
using StableDiffusion.ImageGeneration;
using StableDiffusion.Pipelines;
using StableDiffusion.Telemetry;
using Xunit;

namespace StableDiffusion.Core.Tests.Telemetry;

/// <summary>Measurements are process-wide: these tests run alone, so every one they see is theirs.</summary>
[CollectionDefinition(nameof(TelemetryCollection), DisableParallelization = true)]
public sealed class TelemetryCollection;

/// <summary>The generation span and the SDK's metrics, observed through in-memory listeners.</summary>
[Trait("Area", "Telemetry")]
[Collection(nameof(TelemetryCollection))]
public sealed class TelemetryTests(TinyPipelines pipelines)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // One UNet call per step (the default PNDM runs one more).
    private Schedulers.IScheduler Euler => Schedulers.SchedulerFactory.Create("Euler", pipelines.TextToImage.Scheduler.Config);

    [Fact]
    public async Task AGeneration_IsOneSpan_WithAnEventPerStage()
    {
        var spans = new List<Activity>();
        using ActivityListener listener = ListenToSpans(spans);

        using GenerationResult result = await pipelines.ImageToImage.GenerateAsync(
            new Img2ImgRequest("a lighthouse", EndToEnd.Support.TestImages.Picture()) { Seed = 1, NumInferenceSteps = 4, Strength = 0.5, Scheduler = Euler }, Ct);

        Activity span = Assert.Single(spans);
        Assert.Equal("generate img2img", span.DisplayName);
        Assert.Equal(["encode_prompt", "encode_image", "denoise", "decode", "safety_check"], span.Events.Select(e => e.Name));
        Assert.All(span.Events, e => Assert.True((double)e.Tags.Single(t => t.Key == "duration_ms").Value! >= 0));
        Assert.Equal("success", span.GetTagItem("stablediffusion.outcome"));
        Assert.Equal(2, span.GetTagItem("stablediffusion.steps"));
        Assert.Equal(2, span.GetTagItem("stablediffusion.unet.calls"));
        Assert.Equal(ActivityStatusCode.Unset, span.Status);
    }

    [Fact]
    public async Task ACancelledGeneration_EndsItsSpanAsAnError()
    {
        var spans = new List<Activity>();
        using ActivityListener listener = ListenToSpans(spans);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pipelines.TextToImage.GenerateAsync(new TextToImageRequest("a cat")
        {
            Seed = 1, NumInferenceSteps = 10, Width = 32, Height = 32, OnStepEnd = s => { if (s.StepIndex == 1) { cancel.Cancel(); } },
        }, cancel.Token));

        Activity span = Assert.Single(spans);
        Assert.Equal("cancelled", span.GetTagItem("stablediffusion.outcome"));
        Assert.Equal(ActivityStatusCode.Error, span.Status);
    }

    [Fact]
    public async Task Metrics_CountGenerationsStagesUNetCallsQueueWaitsAndFlaggedImages()
    {
        var measurements = new List<(string Instrument, double Value, Dictionary<string, object?> Tags)>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == StableDiffusionTelemetry.MeterName)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            lock (measurements)
            {
                measurements.Add((instrument.Name, value, new Dictionary<string, object?>(tags.ToArray())));
            }
        }

        listener.SetMeasurementEventCallback<long>((i, v, t, _) => Record(i, v, t));
        listener.SetMeasurementEventCallback<double>((i, v, t, _) => Record(i, v, t));
        listener.Start();

        using var queue = new GenerationQueue(maxConcurrentGenerations: 1, maxWaiting: 4);
        GenerationResult result;
        using (await queue.TryEnterAsync(Ct))
        {
            result = await pipelines.TextToImage.GenerateAsync(new TextToImageRequest(["a cat", "a dog"]) { Seed = 3, NumInferenceSteps = 3, Width = 32, Height = 32, Scheduler = Euler }, Ct);
        }

        using (result)
        {
            listener.Dispose();
            int flagged = result.NsfwContentDetected!.Count(f => f);
            (string Instrument, double Value, Dictionary<string, object?> Tags) generation = Assert.Single(measurements, m => m.Instrument == StableDiffusionTelemetry.GenerationsInstrument);
            Assert.Equal((1d, "text2img", "success"), (generation.Value, generation.Tags["stablediffusion.pipeline"], generation.Tags["stablediffusion.outcome"]));
            Assert.Equal(3d, Assert.Single(measurements, m => m.Instrument == StableDiffusionTelemetry.UNetCallsInstrument).Value);
            Assert.Equal(["encode_prompt", "denoise", "decode", "safety_check"],
                measurements.Where(m => m.Instrument == StableDiffusionTelemetry.StageDurationInstrument).Select(m => (string)m.Tags["stablediffusion.stage"]!));
            Assert.True(Assert.Single(measurements, m => m.Instrument == StableDiffusionTelemetry.QueueWaitInstrument).Value >= 0);
            Assert.Single(measurements, m => m.Instrument == StableDiffusionTelemetry.GenerationDurationInstrument);
            Assert.Equal(flagged, (int)measurements.Where(m => m.Instrument == StableDiffusionTelemetry.FlaggedImagesInstrument).Sum(m => m.Value));
        }
    }

    [Fact]
    public async Task WithNobodyListening_NoSpanIsCreated()
    {
        Activity? seen = null;
        // Progress reports run on the generating thread, inside the generation's span if there is one.
        var progress = new InlineProgress(_ => seen ??= Activity.Current);

        using GenerationResult result = await pipelines.TextToImage.GenerateAsync(new TextToImageRequest("a cat") { Seed = 3, NumInferenceSteps = 2, Width = 32, Height = 32 }, progress, Ct);

        Assert.Null(seen);
        Assert.False(GenerationTelemetryProbe.AnyListener());
    }

    // Records every finished span of the SDK's source.
    private static ActivityListener ListenToSpans(List<Activity> spans)
    {
        var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == StableDiffusionTelemetry.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity => { lock (spans) { spans.Add(activity); } },
        };
        ActivitySource.AddActivityListener(listener);
        return listener;
    }

    private sealed class InlineProgress(Action<GenerationProgress> report) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => report(value);
    }

    private static class GenerationTelemetryProbe
    {
        public static bool AnyListener()
        {
            using var source = new ActivitySource(StableDiffusionTelemetry.ActivitySourceName);
            return source.HasListeners();
        }
    }
}
