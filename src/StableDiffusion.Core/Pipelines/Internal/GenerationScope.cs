using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.Imaging;
using StableDiffusion.Loading;
using StableDiffusion.Models;
using StableDiffusion.Telemetry;

namespace StableDiffusion.Pipelines.Internal;

/// <summary>
/// One generation's run options, clocks, progress and telemetry. Cancelling the token sets <see cref="RunOptions.Terminate"/>,
/// so a running graph stops within the call; the scope turns the resulting ONNX Runtime error into
/// <see cref="OperationCanceledException"/>. The span (<see cref="GenerationTelemetry.Source"/>) exists only while someone
/// listens, and every instrument is checked for listeners before its tags are made.
/// </summary>
internal sealed class GenerationScope : IDisposable
{
    // ONNX Runtime's run option that frees the unused chunks of the CPU arena when a run ends.
    private const string ArenaShrinkageKey = "memory.enable_memory_arena_shrinkage";
    private readonly CancellationTokenRegistration _registration;
    private readonly CancellationTokenRegistration _stepRegistration;
    private readonly long _start = Stopwatch.GetTimestamp();
    private readonly IProgress<GenerationProgress>? _progress;
    private readonly string _pipeline;
    private readonly Activity? _activity;
    private readonly RunOptions _stepRunOptions;
    private long _unetTicks;
    private long _schedulerTicks;
    private bool _completed;

    /// <param name="pipeline">The pipeline's name in spans and metrics (<c>text2img</c>, <c>img2img</c>, <c>inpaint</c>).</param>
    /// <param name="components">The loaded model: its name, and whether runs shrink the memory arenas.</param>
    /// <param name="progress">Receives progress reports, if any.</param>
    /// <param name="cancellationToken">Stops the generation.</param>
    public GenerationScope(string pipeline, StableDiffusionComponents components, IProgress<GenerationProgress>? progress, CancellationToken cancellationToken)
    {
        _pipeline = pipeline;
        _progress = progress;
        CancellationToken = cancellationToken;
        _activity = GenerationTelemetry.Source.StartActivity($"generate {pipeline}");
        _activity?.SetTag(GenerationTelemetry.PipelineTag, pipeline);
        _activity?.SetTag("stablediffusion.model", components.ModelName);

        // The denoising steps before the last run without shrinking (the next step needs the same memory); every model's
        // last run of the generation shrinks its arena when the option is on.
        _stepRunOptions = new RunOptions();
        _stepRegistration = cancellationToken.UnsafeRegister(static state => ((RunOptions)state!).Terminate = true, _stepRunOptions);
        if (ShrinksArenas(components.Options))
        {
            RunOptions = new RunOptions();
            RunOptions.AddRunConfigEntry(ArenaShrinkageKey, "cpu:0");
            _registration = cancellationToken.UnsafeRegister(static state => ((RunOptions)state!).Terminate = true, RunOptions);
        }
        else
        {
            RunOptions = _stepRunOptions;
        }
    }

    /// <summary>The run options of every model run but the denoising steps before the last.</summary>
    public RunOptions RunOptions { get; }

    public CancellationToken CancellationToken { get; }

    /// <summary>The generation's span, when someone listens.</summary>
    public Activity? Activity => _activity;

    /// <summary>Whether progress reports have a receiver (previews are made only then).</summary>
    public bool ReportsProgress => _progress is not null;

    public TimeSpan Elapsed => Stopwatch.GetElapsedTime(_start);

    public TimeSpan PromptEncoding { get; set; }

    public TimeSpan ImageEncoding { get; set; }

    public TimeSpan Denoising { get; set; }

    public TimeSpan Decoding { get; set; }

    public TimeSpan SafetyChecking { get; set; }

    public int UNetCalls { get; private set; }

    public void Report(GenerationStage stage, int step = 0, int totalSteps = 0, RgbImage? preview = null) =>
        _progress?.Report(new GenerationProgress(stage, step, totalSteps, Elapsed) { Preview = preview });

    /// <summary>
    /// Runs one stage, timing it (in <paramref name="record"/>, the span's events and the stage histogram), mapping a
    /// terminated run to cancellation and any other ONNX Runtime failure to <paramref name="failure"/>'s exception (a
    /// <see cref="Models.ModelRunException"/> naming the model and its inputs).
    /// </summary>
    public T Stage<T>(GenerationStage stage, Func<T> work, Action<TimeSpan> record, Func<OnnxRuntimeException, Exception>? failure = null)
    {
        CancellationToken.ThrowIfCancellationRequested();
        long start = Stopwatch.GetTimestamp();
        try
        {
            return work();
        }
        catch (OnnxRuntimeException) when (CancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException("The generation was cancelled.", CancellationToken);
        }
        catch (OnnxRuntimeException error) when (failure is not null)
        {
            throw failure(error);
        }
        finally
        {
            TimeSpan elapsed = Stopwatch.GetElapsedTime(start);
            record(elapsed);
            RecordStage(stage, elapsed);
        }
    }

    /// <summary>Runs one UNet call, timed; called within the denoising <see cref="Stage{T}"/>, which maps a terminated run to cancellation.</summary>
    public void RunUNet(UNetInvocation unet, in UNetStep step)
    {
        long start = Stopwatch.GetTimestamp();
        try
        {
            unet.Run(step, step.Index == step.Count - 1 ? RunOptions : _stepRunOptions);
        }
        finally
        {
            _unetTicks += Stopwatch.GetTimestamp() - start;
            UNetCalls++;
        }
    }

    /// <summary>Adds the time since <paramref name="start"/> to the scheduler's share.</summary>
    public void AddSchedulerTime(long start) => _schedulerTicks += Stopwatch.GetTimestamp() - start;

    public GenerationTimings Timings() => new(PromptEncoding, ImageEncoding, Denoising,
        Stopwatch.GetElapsedTime(0, _unetTicks), Stopwatch.GetElapsedTime(0, _schedulerTicks), UNetCalls, Decoding, SafetyChecking, Elapsed);

    /// <summary>Marks the generation successful, counts its flagged images and reports the final progress with the result.</summary>
    public void Complete(GenerationResult result)
    {
        _completed = true;
        int flagged = result.NsfwContentDetected?.Count(static f => f) ?? 0;
        if (flagged > 0 && GenerationTelemetry.FlaggedImages.Enabled)
        {
            GenerationTelemetry.FlaggedImages.Add(flagged, new KeyValuePair<string, object?>(GenerationTelemetry.PipelineTag, _pipeline));
        }

        _activity?.SetTag("stablediffusion.images", result.Images.Count);
        _activity?.SetTag("stablediffusion.images.flagged", flagged);
        _progress?.Report(new GenerationProgress(GenerationStage.Completed, UNetCalls, UNetCalls, Elapsed) { Result = result });
    }

    public void Dispose()
    {
        // Unregister first: the callbacks must not touch the run options after they are released.
        _registration.Dispose();
        _stepRegistration.Dispose();
        if (!ReferenceEquals(RunOptions, _stepRunOptions))
        {
            RunOptions.Dispose();
        }

        _stepRunOptions.Dispose();
        RecordGeneration();
    }

    private static bool ShrinksArenas(StableDiffusionPipelineOptions options) =>
        // The run option names the CPU arena; a session without one would fail the run.
        options.ShrinkMemoryArenas && options.Session.EnableMemoryArena && options.ComponentSessions.Values.All(static s => s.EnableMemoryArena);

    private void RecordStage(GenerationStage stage, TimeSpan elapsed)
    {
        if (_activity is null && !GenerationTelemetry.StageDuration.Enabled)
        {
            return;
        }

        string name = GenerationTelemetry.StageName(stage);
        _activity?.AddEvent(new ActivityEvent(name, tags: new ActivityTagsCollection { ["duration_ms"] = elapsed.TotalMilliseconds }));
        if (GenerationTelemetry.StageDuration.Enabled)
        {
            GenerationTelemetry.StageDuration.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>(GenerationTelemetry.StageTag, name));
        }
    }

    private void RecordGeneration()
    {
        string outcome = _completed ? "success" : CancellationToken.IsCancellationRequested ? "cancelled" : "error";
        var pipeline = new KeyValuePair<string, object?>(GenerationTelemetry.PipelineTag, _pipeline);
        if (GenerationTelemetry.Generations.Enabled)
        {
            GenerationTelemetry.Generations.Add(1, pipeline, new KeyValuePair<string, object?>(GenerationTelemetry.OutcomeTag, outcome));
        }

        if (GenerationTelemetry.GenerationDuration.Enabled)
        {
            GenerationTelemetry.GenerationDuration.Record(Elapsed.TotalSeconds, pipeline, new KeyValuePair<string, object?>(GenerationTelemetry.OutcomeTag, outcome));
        }

        if (UNetCalls > 0 && GenerationTelemetry.UNetCalls.Enabled)
        {
            GenerationTelemetry.UNetCalls.Add(UNetCalls, pipeline);
        }

        if (_activity is not null)
        {
            _activity.SetTag(GenerationTelemetry.OutcomeTag, outcome);
            _activity.SetTag("stablediffusion.unet.calls", UNetCalls);
            if (!_completed)
            {
                _activity.SetStatus(ActivityStatusCode.Error, outcome == "cancelled" ? "The generation was cancelled." : "The generation failed.");
            }

            _activity.Dispose();
        }
    }
}
