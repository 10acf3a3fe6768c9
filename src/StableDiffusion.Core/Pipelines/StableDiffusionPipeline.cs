using System.Numerics.Tensors;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StableDiffusion.Loading;
using StableDiffusion.Models;
using StableDiffusion.Pipelines.Internal;
using StableDiffusion.Safety;
using StableDiffusion.Schedulers;
using StableDiffusion.Tokenization;

namespace StableDiffusion.Pipelines;

/// <summary>
/// Text-to-image with Stable Diffusion 1.x on ONNX Runtime: the .NET counterpart of diffusers' <c>StableDiffusionPipeline</c>,
/// giving the same image for the same inputs.
/// </summary>
/// <example>
/// <code>
/// using var pipe = await StableDiffusionPipeline.FromPretrainedAsync("path/to/stable-diffusion-v1-5-onnx");
/// using var result = await pipe.GenerateAsync(new TextToImageRequest("a photo of an astronaut riding a horse on mars") { Seed = 42 });
/// result.SaveImage("astronaut.png");
/// </code>
/// </example>
/// <remarks>
/// Load once and reuse: each component's ONNX Runtime session is created once. A pipeline is safe to call from several
/// threads at once; every call has its own scheduler state and buffers. Disposing releases the sessions once calls in
/// flight have finished.
/// </remarks>
public sealed class StableDiffusionPipeline : IDisposable
{
    private readonly StableDiffusionComponents _components;
    private readonly ILogger _logger;
    private IScheduler _scheduler;
    private int _disposed;

    private StableDiffusionPipeline(StableDiffusionComponents components, ILogger logger)
    {
        _components = components;
        _logger = logger;
        _scheduler = components.Scheduler;
    }

    /// <summary>The model folder the pipeline was loaded from.</summary>
    public string ModelPath => _components.ModelPath;

    /// <summary>The scheduler every call clones (diffusers' <c>pipe.scheduler</c>). Swap it at any time, e.g.
    /// <c>pipe.Scheduler = SchedulerFactory.Create("DPM++ 2M Karras", pipe.Scheduler.Config)</c>; calls in flight keep theirs.</summary>
    public IScheduler Scheduler
    {
        get => Volatile.Read(ref _scheduler);
        set => Volatile.Write(ref _scheduler, value ?? throw new ArgumentNullException(nameof(value)));
    }

    /// <summary>The CLIP tokenizer.</summary>
    public ClipTokenizer Tokenizer => _components.Tokenizer;

    /// <summary>The text encoder.</summary>
    public TextEncoderModel TextEncoder => _components.TextEncoder;

    /// <summary>The UNet.</summary>
    public UNetModel Unet => _components.Unet;

    /// <summary>The VAE decoder.</summary>
    public VaeDecoderModel VaeDecoder => _components.VaeDecoder;

    /// <summary>The safety checker, or null when it is off or the model has none.</summary>
    public SafetyChecker? SafetyChecker => _components.SafetyChecker;

    /// <summary>The default image height and width in pixels (512 for SD 1.5).</summary>
    public int DefaultImageSize => _components.Configuration.DefaultImageSize;

    /// <summary>
    /// Loads a model: a folder in the diffusers ONNX layout, or a Hugging Face Hub repository id such as
    /// <c>onnx-community/stable-diffusion-v1-5-ONNX</c>, downloaded into (or found in) the cache Python's huggingface_hub shares.
    /// </summary>
    /// <param name="modelIdOrPath">A model folder (with model_index.json) or a Hub repository id.</param>
    /// <param name="options">Execution providers, sessions, safety checker, Hub settings and logging; defaults when null.</param>
    /// <param name="cancellationToken">Cancels the download, or loading between components.</param>
    /// <exception cref="ModelLoadException">The folder, a component or a configuration is missing or invalid.</exception>
    /// <exception cref="ExecutionProviders.ExecutionProviderException">A requested execution provider is not available.</exception>
    /// <exception cref="Hub.HubException">The model could not be downloaded (the exception type says why).</exception>
    public static async Task<StableDiffusionPipeline> FromPretrainedAsync(string modelIdOrPath, StableDiffusionPipelineOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new StableDiffusionPipelineOptions();
        ILogger logger = CreateLogger(options);
        string folder = await ModelLocator.ResolveAsync(modelIdOrPath, options, options.LoggerFactory, logger, cancellationToken).ConfigureAwait(false);
        return await Task.Factory.StartNew(() => Load(folder, options, logger, cancellationToken), cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default).ConfigureAwait(false);
    }

    /// <summary>Loads a model, blocking until it is downloaded and loaded (see <see cref="FromPretrainedAsync"/>).</summary>
    /// <param name="modelIdOrPath">A model folder (with model_index.json) or a Hub repository id.</param>
    /// <param name="options">Execution providers, sessions, safety checker, Hub settings and logging; defaults when null.</param>
    /// <param name="cancellationToken">Cancels the download, or loading between components.</param>
    public static StableDiffusionPipeline FromPretrained(string modelIdOrPath, StableDiffusionPipelineOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new StableDiffusionPipelineOptions();
        ILogger logger = CreateLogger(options);
        string folder = Directory.Exists(modelIdOrPath)
            ? modelIdOrPath
            : ModelLocator.ResolveAsync(modelIdOrPath, options, options.LoggerFactory, logger, cancellationToken).GetAwaiter().GetResult();
        return Load(folder, options, logger, cancellationToken);
    }

    /// <summary>Generates images from text (diffusers' <c>pipe(prompt, ...)</c>).</summary>
    /// <param name="request">Prompts and generation settings.</param>
    /// <param name="cancellationToken">Stops the generation within one model call.</param>
    /// <returns>The images, flags, tensors and timings; dispose it when done with the images.</returns>
    public Task<GenerationResult> GenerateAsync(TextToImageRequest request, CancellationToken cancellationToken = default) =>
        GenerateAsync(request, null, cancellationToken);

    /// <summary>Generates images from text, reporting progress (see <see cref="GenerateAsync(TextToImageRequest, CancellationToken)"/>).</summary>
    /// <param name="request">Prompts and generation settings.</param>
    /// <param name="progress">Receives a report per stage and per denoising step.</param>
    /// <param name="cancellationToken">Stops the generation within one model call.</param>
    /// <remarks>The work runs on a background thread, so the caller's thread (a UI thread, say) stays free.</remarks>
    public Task<GenerationResult> GenerateAsync(TextToImageRequest request, IProgress<GenerationProgress>? progress, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return Task.Factory.StartNew(() => Generate(request, progress, cancellationToken), cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>Generates images from text on the calling thread.</summary>
    /// <param name="request">Prompts and generation settings.</param>
    /// <param name="progress">Receives a report per stage and per denoising step.</param>
    /// <param name="cancellationToken">Stops the generation within one model call.</param>
    /// <exception cref="ArgumentException">The request is invalid (the message names the setting).</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public GenerationResult Generate(TextToImageRequest request, IProgress<GenerationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        using StableDiffusionComponents components = _components.AddReference();

        // 0. Default height and width to the UNet's.
        int height = request.Height ?? components.Configuration.DefaultImageSize;
        int width = request.Width ?? components.Configuration.DefaultImageSize;
        int scale = components.Configuration.VaeScaleFactor;

        // 1. Check inputs.
        int batch = RequestValidator.ValidateCommon(request, components);
        int rows = batch * request.NumImagesPerPrompt;
        RequestValidator.ValidateSize(height, width, rows, scale);
        int latentHeight = height / scale, latentWidth = width / scale;
        if (request.Latents is { } givenLatents)
        {
            RequestValidator.ValidateLatents(givenLatents, rows, 4, latentHeight, latentWidth);
        }

        // 2. Call parameters: guidance is on only above 1, as in diffusers.
        bool guided = request.GuidanceScale > 1;
        using var scope = new GenerationScope(progress, cancellationToken);

        // 3. Encode the prompts.
        scope.Report(GenerationStage.EncodingPrompt);
        EncodedPrompt prompt = scope.Stage(() => PromptEncoder.Encode(components, request, guided, scope, _logger), t => scope.PromptEncoding = t);

        // 4. Prepare the timesteps.
        IScheduler scheduler = (request.Scheduler ?? Scheduler).Clone();
        scheduler.SetTimesteps(request.NumInferenceSteps);

        // 5. Prepare the initial latents.
        (var generator, ulong? seed) = InitialNoise.CreateGenerator(request);
        float[] latents = InitialNoise.Latents(request.Latents, generator, rows * 4 * latentHeight * latentWidth, scheduler, components);

        // 6-7. Denoise.
        scope.Report(GenerationStage.Denoising, 0, scheduler.Timesteps.Count);
        scope.Stage(() =>
        {
            DenoisingLoop.Run(components, scheduler, scheduler.Timesteps, prompt, latents, latentHeight, latentWidth, request, generator, DenoisingHooks.None, scope, _logger);
            return true;
        }, t => scope.Denoising = t);

        // 8-10. Decode, check safety, make images.
        return Finish(components, latents, rows, latentHeight, latentWidth, prompt, seed, scope);
    }

    /// <summary>Releases the ONNX Runtime sessions (once calls in flight have finished).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _components.Dispose();
        }
    }

    internal static GenerationResult Finish(StableDiffusionComponents components, float[] latents, int rows, int latentHeight, int latentWidth,
        EncodedPrompt prompt, ulong? seed, GenerationScope scope)
    {
        scope.Report(GenerationStage.Decoding);
        Tensor<float> images = scope.Stage(() => ImageOutput.Decode(components, latents, rows, latentHeight, latentWidth, scope), t => scope.Decoding = t);
        scope.Report(GenerationStage.SafetyChecking);
        IReadOnlyList<bool>? flags = scope.Stage(() => ImageOutput.CheckSafety(components, images, scope), t => scope.SafetyChecking = t);
        var result = new GenerationResult(ImageOutput.ToImages(images), images, flags,
            Tensor.Create(latents, [rows, 4, latentHeight, latentWidth]), prompt.ToTensor(), seed, scope.Timings());
        scope.Report(GenerationStage.Completed);
        return result;
    }

    private static StableDiffusionPipeline Load(string folder, StableDiffusionPipelineOptions options, ILogger logger, CancellationToken cancellationToken) =>
        new(StableDiffusionComponents.Load(folder, options, logger, cancellationToken), logger);

    private static ILogger CreateLogger(StableDiffusionPipelineOptions options) =>
        options.LoggerFactory?.CreateLogger<StableDiffusionPipeline>() ?? NullLogger<StableDiffusionPipeline>.Instance;

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
}
