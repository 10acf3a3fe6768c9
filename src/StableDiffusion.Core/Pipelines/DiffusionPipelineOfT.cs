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
