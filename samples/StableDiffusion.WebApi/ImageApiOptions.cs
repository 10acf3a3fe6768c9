namespace StableDiffusion.WebApi;

/// <summary>Limits and start-up behaviour of the sample, bound from the "ImageApi" configuration section.</summary>
internal sealed class ImageApiOptions
{
    public const string SectionName = "ImageApi";

    /// <summary>Load the model when the host starts, so the first request does not wait for it (and a bad model shows at once in the log).</summary>
    public bool PreloadModel { get; set; } = true;

    /// <summary>Generations that run at once. One keeps a CPU or a single GPU from being oversubscribed.</summary>
    public int MaxConcurrentGenerations { get; set; } = 1;

    /// <summary>Requests that may wait for a generation slot; more get 429 with Retry-After.</summary>
    public int MaxQueueLength { get; set; } = 8;

    /// <summary>The most denoising steps a request may ask for.</summary>
    public int MaxSteps { get; set; } = 150;

    /// <summary>The largest width or height a request may ask for, in pixels.</summary>
    public int MaxSize { get; set; } = 1024;

    /// <summary>The largest request body, in bytes (Kestrel's limit; larger bodies get 413).</summary>
    public long MaxRequestBodyBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>
    /// The memory one generation may need by <c>GenerationMemoryEstimator</c>'s estimate, in bytes; a request over it gets
    /// 422 naming the largest size that fits (8 GiB: 1024x1024 on SD 1.x needs about 20 GB).
    /// </summary>
    public long MemoryBudgetBytes { get; set; } = 8L * 1024 * 1024 * 1024;

    /// <summary>Characters of a prompt written to the log; the rest is replaced by its length.</summary>
    public int LoggedPromptLength { get; set; } = 100;

    /// <summary>A preview every this many steps in <c>POST /images/stream</c>.</summary>
    public int PreviewInterval { get; set; } = 1;

    /// <summary>A folder with the tiny autoencoder (diffusers' AutoencoderTiny, such as madebyollin/taesd) for full-size
    /// previews; null for the cheap latent-to-RGB previews at an eighth of the size.</summary>
    public string? TinyAutoencoder { get; set; }
}
