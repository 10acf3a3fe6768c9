using System.Numerics.Tensors;
using StableDiffusion.Imaging;

namespace StableDiffusion.Pipelines;

/// <summary>
/// The arguments of an image-to-image generation (diffusers' <c>StableDiffusionImg2ImgPipeline.__call__</c>):
/// <c>new Img2ImgRequest("a watercolour painting", photo) { Strength = 0.6f, Seed = 42 }</c>.
/// </summary>
public sealed record Img2ImgRequest : DiffusionRequest
{
    /// <summary>A request for one prompt.</summary>
    /// <param name="prompt">The prompt.</param>
    /// <param name="image">The image to change.</param>
    public Img2ImgRequest(string prompt, RgbImage image)
        : base([prompt ?? throw new ArgumentNullException(nameof(prompt))])
    {
        Image = image ?? throw new ArgumentNullException(nameof(image));
    }

    /// <summary>A request for several prompts, each changing the same image.</summary>
    /// <param name="prompts">The prompts.</param>
    /// <param name="image">The image to change.</param>
    public Img2ImgRequest(IReadOnlyList<string> prompts, RgbImage image)
        : base(prompts ?? throw new ArgumentNullException(nameof(prompts)))
    {
        Image = image ?? throw new ArgumentNullException(nameof(image));
    }

    /// <summary>A request driven by precomputed prompt embeddings [batch, 77, hidden].</summary>
    /// <param name="promptEmbeds">The prompt embeddings.</param>
    /// <param name="image">The image to change.</param>
    public Img2ImgRequest(Tensor<float> promptEmbeds, RgbImage image)
        : base((IReadOnlyList<string>?)null)
    {
        PromptEmbeds = promptEmbeds ?? throw new ArgumentNullException(nameof(promptEmbeds));
        Image = image ?? throw new ArgumentNullException(nameof(image));
    }

    /// <summary>The image to change; any size (resized down to a multiple of 8, as diffusers' image processor does).</summary>
    public RgbImage Image { get; init; }

    /// <summary>How much to change the image, in [0, 1] (default 0.8): <c>int(steps * strength)</c> of the steps run,
    /// starting from the image noised to that step's level; 1 ignores the image's content.</summary>
    public double Strength { get; init; } = 0.8;

    /// <summary>Whether an image whose sides are not multiples of 8 is resized down to them (default); when false it is
    /// rejected instead.</summary>
    public bool ResizeImage { get; init; } = true;
}
