using System.Numerics.Tensors;
using Microsoft.Extensions.Logging;
using StableDiffusion.Loading;
using StableDiffusion.Models;
using StableDiffusion.Pipelines.Internal;
using StableDiffusion.Schedulers;

namespace StableDiffusion.Pipelines;

/// <summary>
/// Text-to-image with Stable Diffusion 1.x on ONNX Runtime: the .NET counterpart of diffusers' <c>StableDiffusionPipeline</c>,
/// giving the same image for the same inputs.
/// </summary>
/// <example>
/// <code>
/// using var pipe = await StableDiffusionPipeline.FromPretrainedAsync("onnx-community/stable-diffusion-v1-5-ONNX");
/// using var result = await pipe.GenerateAsync(new TextToImageRequest("a photo of an astronaut riding a horse on mars") { Seed = 42 });
/// result.SaveImage("astronaut.png");
/// </code>
/// </example>
/// <remarks>Load once and reuse: each component's ONNX Runtime session is created once. Safe to call from several threads at once.</remarks>
public sealed class StableDiffusionPipeline : DiffusionPipeline
{
    private StableDiffusionPipeline(StableDiffusionComponents components, ILogger logger)
        : base(components, logger)
    {
    }

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
    public static Task<StableDiffusionPipeline> FromPretrainedAsync(string modelIdOrPath, StableDiffusionPipelineOptions? options = null, CancellationToken cancellationToken = default) =>
        LoadAsync(modelIdOrPath, options, (c, l) => new StableDiffusionPipeline(c, l), cancellationToken);

    /// <summary>Loads a model, blocking until it is downloaded and loaded (see <see cref="FromPretrainedAsync"/>).</summary>
    /// <param name="modelIdOrPath">A model folder (with model_index.json) or a Hub repository id.</param>
    /// <param name="options">Execution providers, sessions, safety checker, Hub settings and logging; defaults when null.</param>
    /// <param name="cancellationToken">Cancels the download, or loading between components.</param>
    public static StableDiffusionPipeline FromPretrained(string modelIdOrPath, StableDiffusionPipelineOptions? options = null, CancellationToken cancellationToken = default) =>
        Load(modelIdOrPath, options, (c, l) => new StableDiffusionPipeline(c, l), cancellationToken);

    /// <summary>A text-to-image pipeline sharing another pipeline's loaded components and scheduler (diffusers' <c>from_pipe</c>).</summary>
    /// <param name="pipeline">The pipeline whose sessions to share.</param>
    /// <exception cref="ObjectDisposedException"><paramref name="pipeline"/> was disposed.</exception>
    public static StableDiffusionPipeline FromPipe(DiffusionPipeline pipeline)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        return new StableDiffusionPipeline(ShareComponents(pipeline), CreateLogger<StableDiffusionPipeline>(pipeline.Components.Options)) { Scheduler = pipeline.Scheduler };
    }

    /// <summary>Generates images from text (diffusers' <c>pipe(prompt, ...)</c>) on a background thread.</summary>
    /// <param name="request">Prompts and generation settings.</param>
    /// <param name="cancellationToken">Stops the generation within one model call.</param>
    /// <returns>The images, flags, tensors and timings; dispose it when done with the images.</returns>
    public Task<GenerationResult> GenerateAsync(TextToImageRequest request, CancellationToken cancellationToken = default) =>
        GenerateAsync(request, null, cancellationToken);

    /// <summary>Generates images from text on a background thread, reporting progress.</summary>
    /// <param name="request">Prompts and generation settings.</param>
    /// <param name="progress">Receives a report per stage and per denoising step.</param>
    /// <param name="cancellationToken">Stops the generation within one model call.</param>
    public Task<GenerationResult> GenerateAsync(TextToImageRequest request, IProgress<GenerationProgress>? progress, CancellationToken cancellationToken = default) =>
        RunAsync(() => Generate(request, progress, cancellationToken), cancellationToken);

    /// <summary>Generates images from text on the calling thread.</summary>
    /// <param name="request">Prompts and generation settings.</param>
    /// <param name="progress">Receives a report per stage and per denoising step.</param>
    /// <param name="cancellationToken">Stops the generation within one model call.</param>
    /// <exception cref="ArgumentException">The request is invalid (the message names the setting).</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    /// <exception cref="ModelRunException">ONNX Runtime failed running a model: a size the UNet cannot take, not enough memory,
    /// or model parts that do not fit together (the message names the component and what to try).</exception>
    public GenerationResult Generate(TextToImageRequest request, IProgress<GenerationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        using StableDiffusionComponents components = AcquireComponents();

        // 0. Default height and width to the UNet's.
        int height = request.Height ?? components.Configuration.DefaultImageSize;
        int width = request.Width ?? components.Configuration.DefaultImageSize;
        int scale = components.Configuration.VaeScaleFactor;

        // 1. Check inputs.
        components.RequireLatentUNet(nameof(StableDiffusionPipeline));
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
        RequestValidator.ValidateStaticShape(components, height, width, rows, guided);
        using var scope = new GenerationScope(progress, cancellationToken);

        // 3. Encode the prompts.
        EncodedPrompt prompt = PromptEncoder.Encode(components, request, guided, scope, Logger);

        // 4. Prepare the timesteps.
        IScheduler scheduler = (request.Scheduler ?? Scheduler).Clone();
        scheduler.SetTimesteps(request.NumInferenceSteps);

        // 5. Prepare the initial latents.
        (INoiseGenerator generator, ulong? seed) = InitialNoise.CreateGenerator(request);
        float[] latents = InitialNoise.Latents(request.Latents, generator, rows * 4 * latentHeight * latentWidth, scheduler, components);

        // 6-7. Denoise.
        DenoisingLoop.Run(components, scheduler, scheduler.Timesteps, prompt, latents, latentHeight, latentWidth, request, generator, DenoisingHooks.None, scope, Logger);

        // 8-10. Decode, check safety, make images.
        return ImageOutput.Finish(components, latents, rows, latentHeight, latentWidth, prompt, seed, scope);
    }
}
