using Microsoft.Extensions.Logging;
using StableDiffusion.Loading;
using StableDiffusion.Models;
using StableDiffusion.Pipelines.Internal;
using StableDiffusion.Schedulers;

namespace StableDiffusion.Pipelines;

/// <summary>
/// Image-to-image with Stable Diffusion 1.x on ONNX Runtime: the .NET counterpart of diffusers' PyTorch
/// <c>StableDiffusionImg2ImgPipeline</c> (its formulas, for every scheduler), giving the same image for the same inputs.
/// </summary>
/// <example>
/// <code>
/// using var pipe = await StableDiffusionImg2ImgPipeline.FromPretrainedAsync("onnx-community/stable-diffusion-v1-5-ONNX");
/// RgbImage photo = RgbImage.FromRgba(rgbaBytes, width, height); // or photo.ToRgbImage() with StableDiffusion.ImageSharp / .SkiaSharp
/// using var result = await pipe.GenerateAsync(new Img2ImgRequest("a watercolour painting", photo) { Strength = 0.6, Seed = 42 });
/// result.SaveImage("painting.png");
/// </code>
/// </example>
public sealed class StableDiffusionImg2ImgPipeline : DiffusionPipeline<Img2ImgRequest>
{
    private StableDiffusionImg2ImgPipeline(StableDiffusionComponents components, ILogger logger)
        : base(components, logger)
    {
    }

    /// <summary>Loads a model folder or Hub repository id (see <see cref="StableDiffusionPipeline.FromPretrainedAsync"/>).</summary>
    /// <param name="modelIdOrPath">A model folder (with model_index.json) or a Hub repository id.</param>
    /// <param name="options">Execution providers, sessions, safety checker, Hub settings and logging; defaults when null.</param>
    /// <param name="cancellationToken">Cancels the download, or loading between components.</param>
    public static Task<StableDiffusionImg2ImgPipeline> FromPretrainedAsync(string modelIdOrPath, StableDiffusionPipelineOptions? options = null, CancellationToken cancellationToken = default) =>
        LoadAsync(modelIdOrPath, options, (c, l) => new StableDiffusionImg2ImgPipeline(c, l), cancellationToken);

    /// <summary>Loads a model on the calling thread (see <see cref="FromPretrainedAsync"/>).</summary>
    /// <param name="modelIdOrPath">A model folder (with model_index.json) or a Hub repository id.</param>
    /// <param name="options">Execution providers, sessions, safety checker, Hub settings and logging; defaults when null.</param>
    /// <param name="cancellationToken">Cancels the download, or loading between components.</param>
    public static StableDiffusionImg2ImgPipeline FromPretrained(string modelIdOrPath, StableDiffusionPipelineOptions? options = null, CancellationToken cancellationToken = default) =>
        Load(modelIdOrPath, options, (c, l) => new StableDiffusionImg2ImgPipeline(c, l), cancellationToken);

    /// <summary>Loads a Stable Diffusion 1.x single-file checkpoint for image-to-image (see <see cref="StableDiffusionPipeline.FromSingleFileAsync"/>).</summary>
    /// <param name="path">The checkpoint file.</param>
    /// <param name="options">The base model, execution providers, sessions, safety checker, Hub settings and logging; defaults when null.</param>
    /// <param name="cancellationToken">Cancels the base model's download, or loading between components.</param>
    public static Task<StableDiffusionImg2ImgPipeline> FromSingleFileAsync(string path, StableDiffusionPipelineOptions? options = null, CancellationToken cancellationToken = default) =>
        LoadSingleFileAsync(path, options, (c, l) => new StableDiffusionImg2ImgPipeline(c, l), cancellationToken);

    /// <summary>Loads a single-file checkpoint on the calling thread (see <see cref="FromSingleFileAsync"/>).</summary>
    /// <param name="path">The checkpoint file.</param>
    /// <param name="options">The base model, execution providers, sessions, safety checker, Hub settings and logging; defaults when null.</param>
    /// <param name="cancellationToken">Cancels the base model's download, or loading between components.</param>
    public static StableDiffusionImg2ImgPipeline FromSingleFile(string path, StableDiffusionPipelineOptions? options = null, CancellationToken cancellationToken = default) =>
        LoadSingleFile(path, options, (c, l) => new StableDiffusionImg2ImgPipeline(c, l), cancellationToken);

    /// <summary>An image-to-image pipeline sharing another pipeline's loaded components and scheduler (diffusers' <c>from_pipe</c>).</summary>
    /// <param name="pipeline">The pipeline whose sessions to share.</param>
    /// <exception cref="ObjectDisposedException"><paramref name="pipeline"/> was disposed.</exception>
    public static StableDiffusionImg2ImgPipeline FromPipe(DiffusionPipeline pipeline)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        return new StableDiffusionImg2ImgPipeline(ShareComponents(pipeline), CreateLogger<StableDiffusionImg2ImgPipeline>(pipeline.Components.Options)) { Scheduler = pipeline.Scheduler };
    }

    /// <inheritdoc />
    /// <remarks>Changes an image as the prompt says, on the calling thread.</remarks>
    /// <exception cref="ModelLoadException">The model has no VAE encoder.</exception>
    public override GenerationResult Generate(Img2ImgRequest request, IProgress<GenerationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        using StableDiffusionComponents components = AcquireComponents();
        using IDisposable loraWeights = components.UseLora(request.LoraScale);
        int scale = components.Configuration.VaeScaleFactor;

        // 1. Check inputs, and preprocess the image (diffusers' VaeImageProcessor: a multiple of 8, [-1, 1]).
        components.RequireLatentUNet(nameof(StableDiffusionImg2ImgPipeline));
        int batch = RequestValidator.ValidateCommon(request, components);
        StrengthSchedule.Validate(request.Strength);
        ArgumentNullException.ThrowIfNull(request.Image, nameof(request.Image));
        (int height, int width) = ImagePreprocessor.TargetSize(request.Image, null, null, scale, nameof(request.Image));
        int rows = batch * request.NumImagesPerPrompt;
        RequestValidator.ValidateSize(height, width, rows, scale);
        float[] image = ImagePreprocessor.Image(request.Image, height, width, request.ResizeImage, nameof(request.Image));
        _ = components.VaeEncoder;
        var shape = new LatentShape(rows, components.LatentChannels, height / scale, width / scale);

        // 2. Call parameters.
        bool guided = request.GuidanceScale > 1;
        RequestValidator.ValidateStaticShape(components, height, width, rows, guided);
        using var scope = new GenerationScope("img2img", components, progress, cancellationToken);

        // 3. Encode the prompts.
        EncodedPrompt prompt = PromptEncoder.Encode(components, request, guided, scope, Logger);

        // 4. Timesteps: the last int(steps * strength) of the schedule.
        IScheduler scheduler = (request.Scheduler ?? Scheduler).Clone();
        scheduler.SetTimesteps(request.NumInferenceSteps);
        IReadOnlyList<float> timesteps = StrengthSchedule.Apply(scheduler, request.NumInferenceSteps, request.Strength);

        // 5. Latents: the image's, noised to the first timestep.
        (INoiseGenerator generator, ulong? seed) = InitialNoise.CreateGenerator(request);
        float[] imageLatents = ImageLatents.Repeat(ImageLatents.Encode(components, image, height, width, generator, scope, Logger), rows);
        float[] noise = InitialNoise.Draw(generator, imageLatents.Length, components);
        var latents = new float[imageLatents.Length];
        nint[] lengths = shape.ToLengths();
        scheduler.AddNoise(new(imageLatents, lengths), new(noise, lengths), timesteps[0], new(latents, lengths));

        // 6-7. Denoise.
        DenoisingLoop.Run(components, scheduler, timesteps, prompt, latents, shape, request, generator, DenoisingHooks.None, scope, Logger);

        // 8-10. Decode, check safety, make images.
        var parameters = ImageParameters.Describe(request, scheduler, seed, width, height, request.Strength, components.ModelName, rows, components.TextualInversionHashes);
        return ImageOutput.Finish(components, latents, shape, prompt, seed, parameters, scope, Logger);
    }
}
