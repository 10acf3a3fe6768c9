using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using StableDiffusion.Loading;

namespace StableDiffusion.Pipelines;

/// <summary>A pipeline that takes <typeparamref name="TRequest"/>: the calls every Stable Diffusion pipeline offers.</summary>
/// <typeparam name="TRequest">The pipeline's request type.</typeparam>
public abstract class DiffusionPipeline<TRequest> : DiffusionPipeline
    where TRequest : DiffusionRequest
{
    private protected DiffusionPipeline(StableDiffusionComponents components, ILogger logger)
        : base(components, logger)
    {
    }

    /// <summary>Runs the pipeline on a background thread (diffusers' <c>pipe(...)</c>).</summary>
    /// <param name="request">Prompts and generation settings.</param>
    /// <param name="cancellationToken">Stops the generation within one model call.</param>
    /// <returns>The images with their settings, flags, tensors and timings.</returns>
    public Task<GenerationResult> GenerateAsync(TRequest request, CancellationToken cancellationToken = default) =>
        GenerateAsync(request, null, cancellationToken);

    /// <summary>Runs the pipeline on a background thread, reporting progress; the caller's thread (a UI thread, say) stays free.</summary>
    /// <param name="request">Prompts and generation settings.</param>
    /// <param name="progress">Receives a report per stage and per denoising step.</param>
    /// <param name="cancellationToken">Stops the generation within one model call.</param>
    /// <returns>The images with their settings, flags, tensors and timings.</returns>
    public Task<GenerationResult> GenerateAsync(TRequest request, IProgress<GenerationProgress>? progress, CancellationToken cancellationToken = default) =>
        RunAsync(() => Generate(request, progress, cancellationToken), cancellationToken);

    /// <summary>
    /// Runs the pipeline on a background thread and streams its progress: a report per stage and per denoising step (with
    /// its preview when the request asks for previews), ending with the <see cref="GenerationStage.Completed"/> report whose
    /// <see cref="GenerationProgress.Result"/> is the result. A consumer that falls behind skips stale reports, never the
    /// last; one that stops enumerating stops the generation within one model call.
    /// </summary>
    /// <param name="request">Prompts and generation settings.</param>
    /// <param name="cancellationToken">Stops the generation within one model call.</param>
    /// <returns>The progress reports, the last carrying the result.</returns>
    public async IAsyncEnumerable<GenerationProgress> GenerateStreamingAsync(TRequest request, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        // Dropping the oldest keeps a slow reader on recent previews; the final report is written last, so it is never dropped.
        var channel = Channel.CreateBounded<GenerationProgress>(new BoundedChannelOptions(16)
        {
            FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true, SingleWriter = true,
        });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task<GenerationResult> generation = GenerateAsync(request, new ChannelProgress(channel.Writer), stop.Token);
        _ = generation.ContinueWith(static (_, writer) => ((ChannelWriter<GenerationProgress>)writer!).TryComplete(), channel.Writer,
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        try
        {
            await foreach (GenerationProgress progress in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                yield return progress;
            }

            // Surfaces a failure or cancellation with its own exception.
            await generation.ConfigureAwait(false);
        }
        finally
        {
            if (!generation.IsCompleted)
            {
                await stop.CancelAsync().ConfigureAwait(false);
                await ((Task)generation).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    /// <summary>Runs the pipeline on the calling thread.</summary>
    /// <param name="request">Prompts and generation settings.</param>
    /// <param name="progress">Receives a report per stage and per denoising step.</param>
    /// <param name="cancellationToken">Stops the generation within one model call.</param>
    /// <returns>The images with their settings, flags, tensors and timings.</returns>
    /// <exception cref="ArgumentException">The request is invalid (the message names the setting).</exception>
    /// <exception cref="Models.ModelRunException">A model failed on the request's inputs (the message names the component).</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    /// <exception cref="ObjectDisposedException">The pipeline was disposed.</exception>
    public abstract GenerationResult Generate(TRequest request, IProgress<GenerationProgress>? progress = null, CancellationToken cancellationToken = default);
}

/// <summary>Writes reports into a channel on the generating thread (<see cref="Progress{T}"/> would post them to a context).</summary>
file sealed class ChannelProgress(ChannelWriter<GenerationProgress> writer) : IProgress<GenerationProgress>
{
    public void Report(GenerationProgress value) => writer.TryWrite(value);
}
