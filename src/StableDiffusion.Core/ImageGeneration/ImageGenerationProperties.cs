namespace StableDiffusion.ImageGeneration;

/// <summary>
/// The keys <see cref="StableDiffusionImageGenerator"/> reads from <c>ImageGenerationOptions.AdditionalProperties</c>:
/// diffusers' argument names. Values may be numbers of any type, strings that parse as such (invariant culture), or
/// <see cref="System.Text.Json.JsonElement"/>s; other keys are left for other generators in the chain.
/// </summary>
public static class ImageGenerationProperties
{
    /// <summary>The seed (an integer of 0 or more; -1 or absent: random), as <c>torch.Generator("cpu").manual_seed(seed)</c>.</summary>
    public const string Seed = "seed";

    /// <summary>The number of denoising steps (default 50).</summary>
    public const string NumInferenceSteps = "num_inference_steps";

    /// <summary>The classifier-free guidance scale (default 7.5).</summary>
    public const string GuidanceScale = "guidance_scale";

    /// <summary>The negative prompt.</summary>
    public const string NegativePrompt = "negative_prompt";

    /// <summary>The scheduler: a name <see cref="Schedulers.SchedulerFactory"/> knows ("DPM++ 2M Karras", "EulerDiscreteScheduler") or an <see cref="Schedulers.IScheduler"/>.</summary>
    public const string Scheduler = "scheduler";

    /// <summary>With an original image: how much to change it, from 0 (keep) to 1 (replace); default 0.8 for image-to-image, 1 for inpainting.</summary>
    public const string Strength = "strength";

    /// <summary>With an original image: the inpainting mask (white repaints, black keeps), as an <see cref="Imaging.RgbImage"/>,
    /// a <c>DataContent</c> or encoded bytes; it may instead be an original image named <c>"mask"</c>.</summary>
    public const string MaskImage = "mask_image";

    /// <summary>An <see cref="IProgress{T}"/> of <see cref="Pipelines.GenerationProgress"/> that receives the generation's progress.</summary>
    public const string Progress = "progress";
}
