using System.Numerics.Tensors;
using Microsoft.Extensions.Logging;
using StableDiffusion.Loading;
using StableDiffusion.Models;
using StableDiffusion.Pipelines.Internal;
using StableDiffusion.Schedulers;

namespace StableDiffusion.Pipelines;

/// <summary>
/// Inpainting with Stable Diffusion 1.x on ONNX Runtime: the .NET counterpart of diffusers' PyTorch
/// <c>StableDiffusionInpaintPipeline</c>, for inpainting UNets (9 input channels, such as stable-diffusion-inpainting) and for
/// ordinary ones (4 channels, keeping the unmasked region by blending it back at every step), giving the same image for
/// the same inputs.
/// </summary>
/// <example>
/// <code>
/// using var pipe = await StableDiffusionInpaintPipeline.FromPretrainedAsync("path/to/stable-diffusion-inpainting-onnx");
/// // RgbImage photo, mask: from pixels (RgbImage.FromRgb), or converted with StableDiffusion.ImageSharp / .SkiaSharp.
/// using var result = await pipe.GenerateAsync(new InpaintRequest("a red sofa", photo, mask) { Seed = 42 });
/// result.SaveImage("sofa.png");
/// </code>
/// </example>
public sealed class StableDiffusionInpaintPipeline : DiffusionPipeline<InpaintRequest>
{
    private StableDiffusionInpaintPipeline(StableDiffusionComponents components, ILogger logger)
        : base(components, logger)
    {
    }

    /// <summary>Loads a model folder or Hub repository id (see <see cref="StableDiffusionPipeline.FromPretrainedAsync"/>).</summary>
    /// <param name="modelIdOrPath">A model folder (with model_index.json) or a Hub repository id.</param>
    /// <param name="options">Execution providers, sessions, safety checker, Hub settings and logging; defaults when null.</param>
    /// <param name="cancellationToken">Cancels the download, or loading between components.</param>
    public static Task<StableDiffusionInpaintPipeline> FromPretrainedAsync(string modelIdOrPath, StableDiffusionPipelineOptions? options = null, CancellationToken cancellationToken = default) =>
        LoadAsync(modelIdOrPath, options, (c, l) => new StableDiffusionInpaintPipeline(c, l), cancellationToken);

    /// <summary>Loads a model on the calling thread (see <see cref="FromPretrainedAsync"/>).</summary>
    /// <param name="modelIdOrPath">A model folder (with model_index.json) or a Hub repository id.</param>
    /// <param name="options">Execution providers, sessions, safety checker, Hub settings and logging; defaults when null.</param>
    /// <param name="cancellationToken">Cancels the download, or loading between components.</param>
    public static StableDiffusionInpaintPipeline FromPretrained(string modelIdOrPath, StableDiffusionPipelineOptions? options = null, CancellationToken cancellationToken = default) =>
        Load(modelIdOrPath, options, (c, l) => new StableDiffusionInpaintPipeline(c, l), cancellationToken);

    /// <summary>Loads a Stable Diffusion 1.x single-file checkpoint for inpainting (see <see cref="StableDiffusionPipeline.FromSingleFileAsync"/>).</summary>
    /// <param name="path">The checkpoint file.</param>
    /// <param name="options">The base model, execution providers, sessions, safety checker, Hub settings and logging; defaults when null.</param>
    /// <param name="cancellationToken">Cancels the base model's download, or loading between components.</param>
    public static Task<StableDiffusionInpaintPipeline> FromSingleFileAsync(string path, StableDiffusionPipelineOptions? options = null, CancellationToken cancellationToken = default) =>
        LoadSingleFileAsync(path, options, (c, l) => new StableDiffusionInpaintPipeline(c, l), cancellationToken);

    /// <summary>Loads a single-file checkpoint on the calling thread (see <see cref="FromSingleFileAsync"/>).</summary>
    /// <param name="path">The checkpoint file.</param>
    /// <param name="options">The base model, execution providers, sessions, safety checker, Hub settings and logging; defaults when null.</param>
    /// <param name="cancellationToken">Cancels the base model's download, or loading between components.</param>
    public static StableDiffusionInpaintPipeline FromSingleFile(string path, StableDiffusionPipelineOptions? options = null, CancellationToken cancellationToken = default) =>
        LoadSingleFile(path, options, (c, l) => new StableDiffusionInpaintPipeline(c, l), cancellationToken);

    /// <summary>An inpainting pipeline sharing another pipeline's loaded components and scheduler (diffusers' <c>from_pipe</c>).</summary>
    /// <param name="pipeline">The pipeline whose sessions to share.</param>
    /// <exception cref="ObjectDisposedException"><paramref name="pipeline"/> was disposed.</exception>
    public static StableDiffusionInpaintPipeline FromPipe(DiffusionPipeline pipeline)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        return new StableDiffusionInpaintPipeline(ShareComponents(pipeline), CreateLogger<StableDiffusionInpaintPipeline>(pipeline.Components.Options)) { Scheduler = pipeline.Scheduler };
    }

    /// <inheritdoc />
    /// <remarks>Repaints the masked region of an image, on the calling thread.</remarks>
    /// <exception cref="ModelLoadException">The model has no VAE encoder.</exception>
    public override GenerationResult Generate(InpaintRequest request, IProgress<GenerationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        using StableDiffusionComponents components = AcquireComponents();
        using IDisposable loraWeights = components.UseLora(request.LoraScale);
        int scale = components.Configuration.VaeScaleFactor;
        int channels = components.UNetInChannels, latentChannels = components.LatentChannels;
        bool inpaintingUNet = channels == InpaintUNetInput.Channels(latentChannels);
        if (channels != latentChannels && !inpaintingUNet)
        {
            throw new InvalidOperationException(
                $"The UNet of '{components.ModelPath}' has {channels} input channels; inpainting needs {latentChannels} (latents) or {InpaintUNetInput.Channels(latentChannels)} (latents, mask, masked image).");
        }

        // 0-1. Default the size to the UNet's (as diffusers does: the image and mask are resized to it), check inputs, preprocess
        // the image and mask (diffusers' image and mask processors).
        int batch = RequestValidator.ValidateCommon(request, components);
        StrengthSchedule.Validate(request.Strength);
        ArgumentNullException.ThrowIfNull(request.Image, nameof(request.Image));
        ArgumentNullException.ThrowIfNull(request.MaskImage, nameof(request.MaskImage));
        if (request.MaskImage.Width != request.Image.Width || request.MaskImage.Height != request.Image.Height)
        {
            throw new ArgumentException(
                $"The mask is {request.MaskImage.Width}x{request.MaskImage.Height} pixels but the image is {request.Image.Width}x{request.Image.Height}; they must be the same size.",
                nameof(request.MaskImage));
        }

        (int height, int width) = ImagePreprocessor.TargetSize(request.Image, request.Height ?? components.Configuration.DefaultImageSize,
            request.Width ?? components.Configuration.DefaultImageSize, scale, nameof(request.Image));
        int rows = batch * request.NumImagesPerPrompt;
        RequestValidator.ValidateSize(height, width, rows, scale);
        var shape = new LatentShape(rows, latentChannels, height / scale, width / scale);
        if (request.Latents is { } givenLatents)
        {
            RequestValidator.ValidateLatents(givenLatents, shape);
        }

        float[] image = ImagePreprocessor.Image(request.Image, height, width, request.ResizeImage, nameof(request.Image));
        float[] mask = ImagePreprocessor.Mask(request.MaskImage, height, width, request.ResizeImage, nameof(request.MaskImage));
        _ = components.VaeEncoder;

        // 2. Call parameters.
        bool guided = request.GuidanceScale > 1;
        RequestValidator.ValidateStaticShape(components, height, width, rows, guided);
        using var scope = new GenerationScope("inpaint", components, progress, cancellationToken);

        // 3. Encode the prompts.
        EncodedPrompt prompt = PromptEncoder.Encode(components, request, guided, scope, Logger);

        // 4. Timesteps: the last int(steps * strength) of the schedule.
        IScheduler scheduler = (request.Scheduler ?? Scheduler).Clone();
        scheduler.SetTimesteps(request.NumInferenceSteps);
        IReadOnlyList<float> timesteps = StrengthSchedule.Apply(scheduler, request.NumInferenceSteps, request.Strength);
        bool fullStrength = request.Strength == 1.0;

        // 5. Latents (diffusers' prepare_latents): pure noise at full strength, else the image's latents noised; an ordinary
        // UNet also needs the image's latents to blend the kept region back.
        (INoiseGenerator generator, ulong? seed) = InitialNoise.CreateGenerator(request);
        int latentLength = shape.ElementCount;
        nint[] lengths = shape.ToLengths();
        float[]? imageLatents = !inpaintingUNet || (request.Latents is null && !fullStrength)
            ? ImageLatents.Repeat(ImageLatents.Encode(components, image, height, width, generator, scope, Logger), rows)
            : null;
        float[] noise;
        if (request.Latents is { } given)
        {
            noise = new float[latentLength];
            given.FlattenTo(noise);
        }
        else
        {
            noise = InitialNoise.Draw(generator, latentLength, components);
        }

        // Given latents, like full strength, start from the noise alone.
        var latents = new float[latentLength];
        if (request.Latents is null && !fullStrength)
        {
            scheduler.AddNoise(new(imageLatents!, lengths), new(noise, lengths), timesteps[0], new(latents, lengths));
        }
        else
        {
            TensorPrimitives.Multiply(noise, scheduler.InitNoiseSigma, latents);
        }

        // 6. The mask at latent size, and the masked image's latents (the masked pixels set to 0, mid-grey).
        float[] maskLatents = ImageLatents.Repeat(ImagePreprocessor.DownsampleNearest(mask, height, width, shape.Height, shape.Width), rows);
        DenoisingHooks hooks;
        if (inpaintingUNet)
        {
            float[] maskedImage = MaskImage(image, mask);
            float[] maskedImageLatents = ImageLatents.Repeat(ImageLatents.Encode(components, maskedImage, height, width, generator, scope, Logger), rows);
            hooks = new InpaintUNetInput(maskLatents, maskedImageLatents, shape);
        }
        else
        {
            // diffusers also encodes the masked image for ordinary UNets and discards it: only its draw from the generator
            // matters for parity, and it is as long as the image's (same encoder, same size).
            ImageLatents.SkipEncode(components, imageLatents!.Length / rows, generator);
            hooks = new InpaintBlending(scheduler, imageLatents!, noise, maskLatents, shape);
        }

        // 7. Denoise.
        DenoisingLoop.Run(components, scheduler, timesteps, prompt, latents, shape, request, generator, hooks, scope, Logger);

        // 8-10. Decode, check safety, make images.
        var parameters = ImageParameters.Describe(request, scheduler, seed, width, height, request.Strength, components.ModelName, rows, components.TextualInversionHashes);
        return ImageOutput.Finish(components, latents, shape, prompt, seed, parameters, scope, Logger);
    }

    // init_image * (mask < 0.5): the repainted pixels become 0.
    private static float[] MaskImage(float[] image, float[] mask)
    {
        var masked = new float[image.Length];
        int plane = mask.Length;
        for (int c = 0; c < 3; c++)
        {
            for (int p = 0; p < plane; p++)
            {
                masked[(c * plane) + p] = mask[p] < 0.5f ? image[(c * plane) + p] : 0f;
            }
        }

        return masked;
    }
}
