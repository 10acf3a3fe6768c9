using System.Diagnostics;
using StableDiffusion.Pipelines;

namespace StableDiffusion.Core.Tests.Hardening.Drills;

/// <summary>Where a generation is cancelled.</summary>
public enum CancellationPoint
{
    /// <summary>The token is cancelled before the call.</summary>
    BeforeStart,

    /// <summary>While the prompt is encoded.</summary>
    PromptEncoding,

    /// <summary>While the input image is encoded.</summary>
    ImageEncoding,

    /// <summary>During a random denoising step.</summary>
    Denoising,

    /// <summary>While the latents are decoded.</summary>
    Decoding,
}

/// <summary>When, within the targeted stage, the token is cancelled.</summary>
public enum CancellationTiming
{
    /// <summary>From the stage's progress report, on the generating thread: before the stage's model call starts.</summary>
    AtStageStart,

    /// <summary>From another thread, after a random part of the stage's (or denoising step's) reference duration: usually inside a model call.</summary>
    DuringModelCall,
}

/// <summary>What one cancellation did.</summary>
/// <param name="Point">Where it was aimed.</param>
/// <param name="Timing">When within the stage (<see cref="CancellationTiming.AtStageStart"/> for <see cref="CancellationPoint.BeforeStart"/>).</param>
/// <param name="Stage">The stage running when <see cref="CancellationTokenSource.Cancel()"/> was called (null before the call).</param>
/// <param name="Outcome">What the call did: "cancelled" (an <see cref="OperationCanceledException"/>), "completed" (the cancellation
/// came after the last check), or the type of any other exception.</param>
/// <param name="Latency">From <see cref="CancellationTokenSource.Cancel()"/> to the exception reaching the caller.</param>
/// <param name="NextGenerationIdentical">Whether the generation run right after it was byte-identical to the reference.</param>
public sealed record CancellationOutcome(CancellationPoint Point, CancellationTiming Timing, GenerationStage? Stage, string Outcome, TimeSpan Latency, bool NextGenerationIdentical)
{
    /// <summary>Whether the call ended in <see cref="OperationCanceledException"/>.</summary>
    public bool Cancelled => Outcome == "cancelled";

    /// <summary>
    /// Whether the call completed because the token was cancelled after its last check: while the safety checker ran (its
    /// last check) or later. A timer thread can wake that late on a busy machine; the result is then a normal one.
    /// </summary>
    public bool CancelledAfterTheLastCheck => Outcome == "completed" && Stage is GenerationStage.SafetyChecking or GenerationStage.Completed;

    /// <summary>Whether the call behaved correctly: cancelled, or completed because the cancellation came after its last check.</summary>
    public bool Correct => Cancelled || CancelledAfterTheLastCheck;
}

/// <summary>
/// Cancels image-to-image generations at chosen or random points (from a progress callback at a stage's start, or from
/// another thread partway into a stage's model call), then checks that the pipeline still gives the reference image.
/// </summary>
public sealed class CancellationDrill
{
    private readonly StableDiffusionImg2ImgPipeline _pipeline;
    private readonly Img2ImgRequest _request;
    private readonly byte[] _reference;

    private CancellationDrill(StableDiffusionImg2ImgPipeline pipeline, Img2ImgRequest request, byte[] reference, GenerationTimings timings)
    {
        _pipeline = pipeline;
        _request = request;
        _reference = reference;
        ReferenceTimings = timings;
    }

    /// <summary>The timings of the reference run (a warm one), which place the cancellations inside their stages.</summary>
    public GenerationTimings ReferenceTimings { get; }

    /// <summary>The mean duration of one UNet call in the reference run.</summary>
    public TimeSpan UNetCall => ReferenceTimings.UNet / ReferenceTimings.UNetCalls;

    /// <summary>Runs the request twice (a warm-up, then the reference) and prepares the drill.</summary>
    /// <param name="pipeline">The pipeline.</param>
    /// <param name="request">The request every run makes (it must be seeded).</param>
    /// <param name="cancellationToken">Cancels the preparation.</param>
    public static async Task<CancellationDrill> CreateAsync(StableDiffusionImg2ImgPipeline pipeline, Img2ImgRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(request);
        using (await pipeline.GenerateAsync(request, cancellationToken).ConfigureAwait(false))
        {
        }

        using GenerationResult reference = await pipeline.GenerateAsync(request, cancellationToken).ConfigureAwait(false);
        return new CancellationDrill(pipeline, request, GenerationBytes.Of(reference), reference.Timings);
    }

    /// <summary>Cancels one generation at <paramref name="point"/>, then runs the request again and compares it with the reference.</summary>
    /// <param name="point">Where to cancel.</param>
    /// <param name="random">Chooses the denoising step, the timing when <paramref name="timing"/> is null, and how far into the stage.</param>
    /// <param name="cancellationToken">Cancels the drill itself.</param>
    /// <param name="timing">When within the stage; random when null (ignored for <see cref="CancellationPoint.BeforeStart"/>).</param>
    public async Task<CancellationOutcome> RunOnceAsync(CancellationPoint point, Random random, CancellationToken cancellationToken, CancellationTiming? timing = null)
    {
        ArgumentNullException.ThrowIfNull(random);
        using var cancellation = new CancellationTokenSource();
        CancellationTiming when = point == CancellationPoint.BeforeStart ? CancellationTiming.AtStageStart : timing ?? (CancellationTiming)random.Next(2);
        var trigger = new Trigger(cancellation, point, random, when, this);
        if (point == CancellationPoint.BeforeStart)
        {
            trigger.Cancel();
        }

        string outcome;
        long endedAt;
        try
        {
            using GenerationResult result = await _pipeline.GenerateAsync(_request, trigger, cancellation.Token).ConfigureAwait(false);
            endedAt = Stopwatch.GetTimestamp();
            outcome = "completed";
        }
        catch (OperationCanceledException)
        {
            endedAt = Stopwatch.GetTimestamp();
            outcome = "cancelled";
        }
#pragma warning disable CA1031 // The drill records whatever else escapes: that is its finding.
        catch (Exception e)
#pragma warning restore CA1031
        {
            endedAt = Stopwatch.GetTimestamp();
            outcome = e.GetType().Name + ": " + e.Message;
        }

        trigger.Join();
        TimeSpan latency = trigger.CancelledAt is long at ? Stopwatch.GetElapsedTime(at, endedAt) : TimeSpan.Zero;
        using GenerationResult next = await _pipeline.GenerateAsync(_request, cancellationToken).ConfigureAwait(false);
        return new CancellationOutcome(point, when, trigger.StageAtCancel, outcome, latency, GenerationBytes.Of(next).AsSpan().SequenceEqual(_reference));
    }

    /// <summary>The stage and its expected duration: the cancellation lands uniformly within it.</summary>
    private (GenerationStage Stage, TimeSpan Duration) Target(CancellationPoint point) => point switch
    {
        CancellationPoint.PromptEncoding => (GenerationStage.EncodingPrompt, ReferenceTimings.PromptEncoding),
        CancellationPoint.ImageEncoding => (GenerationStage.EncodingImage, ReferenceTimings.ImageEncoding),
        CancellationPoint.Denoising => (GenerationStage.Denoising, UNetCall),
        CancellationPoint.Decoding => (GenerationStage.Decoding, ReferenceTimings.Decoding),
        _ => throw new ArgumentOutOfRangeException(nameof(point), point, "Not a stage."),
    };

    /// <summary>Watches the progress reports and cancels when the target is reached, on the spot or from a timer thread.</summary>
    private sealed class Trigger : IProgress<GenerationProgress>
    {
        private readonly CancellationTokenSource _cancellation;
        private readonly bool _armed;
        private readonly GenerationStage _stage;
        private readonly int _step;
        private readonly TimeSpan? _delay;
        private Thread? _timer;
        private bool _fired;
        private int _current = -1;
        private long _cancelledAt;

        public Trigger(CancellationTokenSource cancellation, CancellationPoint point, Random random, CancellationTiming timing, CancellationDrill drill)
        {
            _cancellation = cancellation;
            if (point == CancellationPoint.BeforeStart)
            {
                return;
            }

            _armed = true;
            (_stage, TimeSpan duration) = drill.Target(point);
            // Denoising reports after each step: cancelling at report k lands in step k + 1 (k = 0 is the loop's start).
            _step = point == CancellationPoint.Denoising ? random.Next(drill.ReferenceTimings.UNetCalls) : 0;
            _delay = timing == CancellationTiming.AtStageStart ? null : duration * random.NextDouble();
        }

        public GenerationStage? StageAtCancel { get; private set; }

        public long? CancelledAt => Volatile.Read(ref _cancelledAt) is long at and not 0 ? at : null;

        public void Report(GenerationProgress value)
        {
            Volatile.Write(ref _current, (int)value.Stage);
            if (!_armed || _fired || value.Stage != _stage || value.Step != _step)
            {
                return;
            }

            _fired = true;
            if (_delay is not TimeSpan delay)
            {
                Cancel();
                return;
            }

            _timer = new Thread(() =>
            {
                Thread.Sleep(delay);
                Cancel();
            })
            {
                IsBackground = true,
            };
            _timer.Start();
        }

        public void Cancel()
        {
            int current = Volatile.Read(ref _current);
            StageAtCancel = current < 0 ? null : (GenerationStage)current;
            Volatile.Write(ref _cancelledAt, Stopwatch.GetTimestamp());
            _cancellation.Cancel();
        }

        /// <summary>Waits for the timer thread, so that its cancellation cannot outlive the call.</summary>
        public void Join() => _timer?.Join();
    }
}
