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
public sealed class StableDiffusionPipeline : DiffusionPipeline<TextToImageRequest>
{
    private StableDiffusionPipeline(StableDiffusionComponents components, ILogger logger)
        : base(components, logger)
    {
    }

    /// <summary>
    /// Loads a model: a folder in the diffusers layout (each component's graph built from its <c>config.json</c> over its
    /// safetensors weights, see <see cref="StableDiffusionPipelineOptions.ComputePrecision"/> and
    /// <see cref="StableDiffusionPipelineOptions.Variant"/>) or in its ONNX layout (<c>model.onnx</c> per component), or a Hugging Face Hub repository id such as
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

    /// <summary>
    /// Loads a Stable Diffusion 1.x checkpoint in one file (<c>.safetensors</c>, or a <c>.ckpt</c> read without running its
    /// pickle), in the original (CompVis) key layout, float16 or float32, inpainting checkpoints included: diffusers'
    /// <c>from_single_file</c>. What the file lacks (configurations, tokenizer, scheduler, feature extractor, safety checker)
    /// comes from <see cref="StableDiffusionPipelineOptions.BaseModel"/>; the safety checker stays on unless
    /// <see cref="StableDiffusionPipelineOptions.EnableSafetyChecker"/> is false. The weights stay in the file.
    /// </summary>
    /// <param name="path">The checkpoint file.</param>
    /// <param name="options">The base model, execution providers, sessions, safety checker, Hub settings and logging; defaults when null.</param>
    /// <param name="cancellationToken">Cancels the base model's download, or loading between components.</param>
    /// <exception cref="UnsupportedCheckpointException">The file is not an SD 1.x checkpoint (an SDXL or SD 2.x checkpoint, a LoRA,
    /// a VAE alone, ...): the message and <see cref="UnsupportedCheckpointException.Kind"/> say what it looks like.</exception>
    /// <exception cref="ModelLoadException">The file is missing, damaged or incomplete, or the base model cannot be used.</exception>
    /// <exception cref="Weights.UnsafePickleException">A <c>.ckpt</c> file's pickle names code, which is never run.</exception>
    /// <exception cref="Hub.HubException">The base model could not be downloaded.</exception>
    public static Task<StableDiffusionPipeline> FromSingleFileAsync(string path, StableDiffusionPipelineOptions? options = null, CancellationToken cancellationToken = default) =>
        LoadSingleFileAsync(path, options, (c, l) => new StableDiffusionPipeline(c, l), cancellationToken);

    /// <summary>Loads a single-file checkpoint, blocking until it is loaded (see <see cref="FromSingleFileAsync"/>).</summary>
    /// <param name="path">The checkpoint file.</param>
    /// <param name="options">The base model, execution providers, sessions, safety checker, Hub settings and logging; defaults when null.</param>
    /// <param name="cancellationToken">Cancels the base model's download, or loading between components.</param>
    public static StableDiffusionPipeline FromSingleFile(string path, StableDiffusionPipelineOptions? options = null, CancellationToken cancellationToken = default) =>
        LoadSingleFile(path, options, (c, l) => new StableDiffusionPipeline(c, l), cancellationToken);

    /// <summary>A text-to-image pipeline sharing another pipeline's loaded components and scheduler (diffusers' <c>from_pipe</c>).</summary>
    /// <param name="pipeline">The pipeline whose sessions to share.</param>
    /// <exception cref="ObjectDisposedException"><paramref name="pipeline"/> was disposed.</exception>
    public static StableDiffusionPipeline FromPipe(DiffusionPipeline pipeline)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        return new StableDiffusionPipeline(ShareComponents(pipeline), CreateLogger<StableDiffusionPipeline>(pipeline.Components.Options)) { Scheduler = pipeline.Scheduler };
    }

    /// <inheritdoc />
    /// <remarks>Generates images from text on the calling thread.</remarks>
    public override GenerationResult Generate(TextToImageRequest request, IProgress<GenerationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        using StableDiffusionComponents components = AcquireComponents();
        using IDisposable loraWeights = components.UseLora(request.LoraScale);

        // 0. Default height and width to the UNet's.
        int height = request.Height ?? components.Configuration.DefaultImageSize;
        int width = request.Width ?? components.Configuration.DefaultImageSize;
        int scale = components.Configuration.VaeScaleFactor;

        // 1. Check inputs.
        components.RequireLatentUNet(nameof(StableDiffusionPipeline));
        int batch = RequestValidator.ValidateCommon(request, components);
        int rows = batch * request.NumImagesPerPrompt;
        RequestValidator.ValidateSize(height, width, rows, scale);
        var shape = new LatentShape(rows, components.LatentChannels, height / scale, width / scale);
        if (request.Latents is { } givenLatents)
        {
            RequestValidator.ValidateLatents(givenLatents, shape);
        }

        // 2. Call parameters: guidance is on only above 1, as in diffusers.
        bool guided = request.GuidanceScale > 1;
        RequestValidator.ValidateStaticShape(components, height, width, rows, guided);
        using var scope = new GenerationScope("text2img", components, progress, cancellationToken);

        // 3. Encode the prompts.
        EncodedPrompt prompt = PromptEncoder.Encode(components, request, guided, scope, Logger);

        // 4. Prepare the timesteps.
        IScheduler scheduler = (request.Scheduler ?? Scheduler).Clone();
        scheduler.SetTimesteps(request.NumInferenceSteps);

        // 5. Prepare the initial latents.
        (INoiseGenerator generator, ulong? seed) = InitialNoise.CreateGenerator(request);
        float[] latents = InitialNoise.Latents(request.Latents, generator, shape.ElementCount, scheduler, components);

        // 6-7. Denoise.
        DenoisingLoop.Run(components, scheduler, scheduler.Timesteps, prompt, latents, shape, request, generator, DenoisingHooks.None, scope, Logger);

        // 8-10. Decode, check safety, make images.
        var parameters = ImageParameters.Describe(request, scheduler, seed, width, height, strength: null, components.ModelName, rows, components.TextualInversionHashes);
        return ImageOutput.Finish(components, latents, shape, prompt, seed, parameters, scope, Logger);
    }
}
