using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using StableDiffusion.Pipelines;

namespace StableDiffusion.DependencyInjection;

/// <summary>
/// Loads the registered pipeline once, on first use, and shares it (a pipeline is safe to use from several threads).
/// Inject it where loading must not block a thread: <c>var pipe = await provider.GetPipelineAsync(ct)</c>.
/// </summary>
public sealed class StableDiffusionPipelineProvider : IDisposable
{
    private readonly StableDiffusionOptions _options;
    private readonly ILoggerFactory? _loggerFactory;
    private readonly Lock _lock = new();
    private Task<StableDiffusionPipeline>? _loading;
    private bool _disposed;

    /// <summary>Creates the provider (the container does this).</summary>
    /// <param name="options">The configured options.</param>
    /// <param name="loggerFactory">The container's logger factory, if any.</param>
    public StableDiffusionPipelineProvider(IOptions<StableDiffusionOptions> options, ILoggerFactory? loggerFactory = null)
        : this((options ?? throw new ArgumentNullException(nameof(options))).Value, loggerFactory)
    {
    }

    /// <summary>Creates the provider of a keyed model (named options).</summary>
    internal StableDiffusionPipelineProvider(StableDiffusionOptions options, ILoggerFactory? loggerFactory)
    {
        _options = options;
        _loggerFactory = loggerFactory;
    }

    /// <summary>The configured model: a folder or a Hub repository id.</summary>
    public string Model => _options.Model;

    /// <summary>Whether the pipeline has loaded (a readiness check: true once a load succeeded).</summary>
    public bool IsLoaded => Volatile.Read(ref _loading) is { IsCompletedSuccessfully: true };

    /// <summary>The pipeline, loading it on the first call. A failed load is retried by the next call.</summary>
    /// <param name="cancellationToken">Stops waiting (the load itself goes on for other callers).</param>
    public Task<StableDiffusionPipeline> GetPipelineAsync(CancellationToken cancellationToken = default)
    {
        Task<StableDiffusionPipeline> loading;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_loading is null || _loading.IsFaulted || _loading.IsCanceled)
            {
                if (string.IsNullOrWhiteSpace(_options.Model))
                {
                    throw new InvalidOperationException(
                        $"No model is configured: set {nameof(StableDiffusionOptions)}.{nameof(StableDiffusionOptions.Model)} (a model folder or Hub repository id) in AddStableDiffusion or the \"StableDiffusion\" configuration section.");
                }

                StableDiffusionPipelineOptions pipelineOptions = _options.Pipeline with { LoggerFactory = _options.Pipeline.LoggerFactory ?? _loggerFactory };
                _loading = StableDiffusionPipeline.FromPretrainedAsync(_options.Model, pipelineOptions, CancellationToken.None);
            }

            loading = _loading;
        }

        return loading.WaitAsync(cancellationToken);
    }

    /// <summary>The pipeline, loading it on the first call and blocking until it is loaded.</summary>
    public StableDiffusionPipeline GetPipeline() => GetPipelineAsync().GetAwaiter().GetResult();

    /// <summary>Disposes the pipeline if it was loaded.</summary>
    public void Dispose()
    {
        Task<StableDiffusionPipeline>? loading;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            loading = _loading;
        }

        if (loading is { IsCompletedSuccessfully: true })
        {
            loading.Result.Dispose();
        }
        else
        {
            // Dispose a pipeline that finishes loading after the host shut down.
            loading?.ContinueWith(static t => t.Result.Dispose(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
        }
    }
}
