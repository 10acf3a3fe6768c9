namespace StableDiffusion.WebApi;

/// <summary>Limits and start-up behaviour of the sample, bound from the "ImageApi" configuration section.</summary>
internal sealed class ImageApiOptions
{
    public const string SectionName = "ImageApi";

    /// <summary>Load the model when the host starts, so the first request does not wait for it (and a bad model shows at once in the log).</summary>
    public bool PreloadModel { get; set; } = true;

    /// <summary>Generations that run at once; others wait. One keeps a CPU or a single GPU from being oversubscribed.</summary>
    public int MaxConcurrentGenerations { get; set; } = 1;

    /// <summary>The most denoising steps a request may ask for.</summary>
    public int MaxSteps { get; set; } = 150;

    /// <summary>The largest width or height a request may ask for, in pixels.</summary>
    public int MaxSize { get; set; } = 1024;
}
