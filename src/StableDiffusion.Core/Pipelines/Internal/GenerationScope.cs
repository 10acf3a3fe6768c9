using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using StableDiffusion.Models;

namespace StableDiffusion.Pipelines.Internal;

/// <summary>
/// One generation's run options and clocks. Cancelling the token sets <see cref="RunOptions.Terminate"/>, so a running
/// graph stops within the call; the scope turns the resulting ONNX Runtime error into <see cref="OperationCanceledException"/>.
/// </summary>
internal sealed class GenerationScope : IDisposable
{
    private readonly CancellationTokenRegistration _registration;
    private readonly long _start = Stopwatch.GetTimestamp();
    private readonly IProgress<GenerationProgress>? _progress;
    private long _unetTicks;
    private long _schedulerTicks;

    public GenerationScope(IProgress<GenerationProgress>? progress, CancellationToken cancellationToken)
    {
        _progress = progress;
        CancellationToken = cancellationToken;
        RunOptions = new RunOptions();
        _registration = cancellationToken.UnsafeRegister(static state => ((RunOptions)state!).Terminate = true, RunOptions);
    }

    public RunOptions RunOptions { get; }

    public CancellationToken CancellationToken { get; }

    public TimeSpan Elapsed => Stopwatch.GetElapsedTime(_start);

    public TimeSpan PromptEncoding { get; set; }

    public TimeSpan ImageEncoding { get; set; }

    public TimeSpan Denoising { get; set; }

    public TimeSpan Decoding { get; set; }

    public TimeSpan SafetyChecking { get; set; }

    public int UNetCalls { get; private set; }

    public void Report(GenerationStage stage, int step = 0, int totalSteps = 0) =>
        _progress?.Report(new GenerationProgress(stage, step, totalSteps, Elapsed));

    /// <summary>
    /// Runs one stage, timing it, mapping a terminated run to cancellation and any other ONNX Runtime failure to
    /// <paramref name="failure"/>'s exception (a <see cref="Models.ModelRunException"/> naming the model and its inputs).
    /// </summary>
    public T Stage<T>(Func<T> work, Action<TimeSpan> record, Func<OnnxRuntimeException, Exception>? failure = null)
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
            record(Stopwatch.GetElapsedTime(start));
        }
    }

    /// <summary>Runs one UNet call, timed; called within the denoising <see cref="Stage{T}"/>, which maps a terminated run to cancellation.</summary>
    public void RunUNet(UNetInvocation unet, in UNetStep step)
    {
        long start = Stopwatch.GetTimestamp();
        try
        {
            unet.Run(step, RunOptions);
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

    public void Dispose()
    {
        // Unregister first: the callback must not touch RunOptions after it is released.
        _registration.Dispose();
        RunOptions.Dispose();
    }
}
