using System.Numerics.Tensors;

namespace StableDiffusion.Pipelines;

/// <summary>
/// The arguments of a text-to-image generation (diffusers' <c>StableDiffusionPipeline.__call__</c>):
/// <c>new TextToImageRequest("a photo of an astronaut riding a horse on mars") { Seed = 42 }</c>.
/// </summary>
public sealed record TextToImageRequest : DiffusionRequest
{
    /// <summary>A request for one prompt.</summary>
    /// <param name="prompt">The prompt.</param>
    public TextToImageRequest(string prompt)
        : base([prompt ?? throw new ArgumentNullException(nameof(prompt))])
    {
    }

    /// <summary>A request for several prompts, generated as one batch.</summary>
    /// <param name="prompts">The prompts.</param>
    public TextToImageRequest(IReadOnlyList<string> prompts)
        : base(prompts ?? throw new ArgumentNullException(nameof(prompts)))
    {
    }

    /// <summary>A request driven by precomputed prompt embeddings [batch, 77, hidden] instead of prompts.</summary>
    /// <param name="promptEmbeds">The prompt embeddings.</param>
    public TextToImageRequest(Tensor<float> promptEmbeds)
        : base((IReadOnlyList<string>?)null)
    {
        PromptEmbeds = promptEmbeds ?? throw new ArgumentNullException(nameof(promptEmbeds));
    }

    /// <summary>The image height in pixels, a multiple of 8 (default: the UNet's sample size times 8, 512 for SD 1.5).</summary>
    public int? Height { get; init; }

    /// <summary>The image width in pixels, a multiple of 8 (default: as <see cref="Height"/>).</summary>
    public int? Width { get; init; }

    /// <summary>Initial latents [batch * images per prompt, 4, height / 8, width / 8] instead of seeded noise; they are still
    /// multiplied by the scheduler's initial noise sigma, as in diffusers.</summary>
    public Tensor<float>? Latents { get; init; }
}
