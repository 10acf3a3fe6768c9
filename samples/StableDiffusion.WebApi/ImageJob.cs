using StableDiffusion.Imaging;
using StableDiffusion.Pipelines;
using StableDiffusion.Previews;
using StableDiffusion.Schedulers;

namespace StableDiffusion.WebApi;

/// <summary>A request read and validated: its settings, and the image (and mask) to change when it edits one.</summary>
internal sealed record ImageJob(ImageRequest Settings, RgbImage? Image = null, RgbImage? Mask = null)
{
    /// <summary>The output size: the image's (rounded down to multiples of 8) when editing, else the request's or the model's.</summary>
    public (int Width, int Height) Size(StableDiffusionPipeline pipe) => Image is { } image
        ? (image.Width / 8 * 8, image.Height / 8 * 8)
        : (Settings.Width ?? pipe.DefaultImageSize, Settings.Height ?? pipe.DefaultImageSize);

    /// <summary>Runs the job on the loaded pipeline: text-to-image, image-to-image, or inpainting with a mask; the editing
    /// pipelines share the text pipeline's sessions (making one costs nothing; disposing it releases only its hold).</summary>
    public async Task<GenerationResult> RunAsync(StableDiffusionPipeline pipe, IProgress<GenerationProgress> progress, LatentPreview? preview, int previewInterval,
        CancellationToken cancellationToken)
    {
        ImageRequest s = Settings;
        IScheduler? scheduler = s.Scheduler is { } name ? SchedulerFactory.Create(name, pipe.Scheduler.Config) : null;
        if (Image is null)
        {
            return await pipe.GenerateAsync(Common(new TextToImageRequest(s.Prompt!) { Width = s.Width, Height = s.Height }), progress, cancellationToken).ConfigureAwait(false);
        }

        if (Mask is null)
        {
            using var img2img = StableDiffusionImg2ImgPipeline.FromPipe(pipe);
            return await img2img.GenerateAsync(Common(new Img2ImgRequest(s.Prompt!, Image) { Strength = s.Strength ?? 0.8 }), progress, cancellationToken).ConfigureAwait(false);
        }

        using var inpaint = StableDiffusionInpaintPipeline.FromPipe(pipe);
        (int width, int height) = Size(pipe);
        return await inpaint.GenerateAsync(Common(new InpaintRequest(s.Prompt!, Image, Mask) { Strength = s.Strength ?? 1.0, Width = width, Height = height }),
            progress, cancellationToken).ConfigureAwait(false);

        T Common<T>(T request)
            where T : DiffusionRequest => (T)((DiffusionRequest)request with
            {
                NegativePrompt = s.NegativePrompt,
                NumInferenceSteps = s.StepsValue,
                GuidanceScale = s.GuidanceValue,
                Seed = s.SeedValue,
                Scheduler = scheduler,
                Preview = preview,
                PreviewInterval = previewInterval,
            });
    }
}
