using System.Numerics.Tensors;
using StableDiffusion.Imaging;

namespace StableDiffusion.Pipelines;

/// <summary>
/// The arguments of an inpainting generation (diffusers' <c>StableDiffusionInpaintPipeline.__call__</c>): the image, and a
/// mask whose white pixels are repainted and black pixels kept.
/// </summary>
public sealed record InpaintRequest : DiffusionRequest
{
    /// <summary>A request for one prompt.</summary>
    /// <param name="prompt">What to paint into the masked region.</param>
    /// <param name="image">The image.</param>
    /// <param name="maskImage">The mask: white repaints, black keeps; its luma (Pillow's <c>convert("L")</c>) is binarised at 50%, as diffusers does.</param>
    public InpaintRequest(string prompt, RgbImage image, RgbImage maskImage)
        : base([prompt ?? throw new ArgumentNullException(nameof(prompt))])
    {
        Image = image ?? throw new ArgumentNullException(nameof(image));
        MaskImage = maskImage ?? throw new ArgumentNullException(nameof(maskImage));
    }

    /// <summary>A request for several prompts over the same image and mask.</summary>
    /// <param name="prompts">The prompts.</param>
    /// <param name="image">The image.</param>
    /// <param name="maskImage">The mask.</param>
    public InpaintRequest(IReadOnlyList<string> prompts, RgbImage image, RgbImage maskImage)
        : base(prompts ?? throw new ArgumentNullException(nameof(prompts)))
    {
        Image = image ?? throw new ArgumentNullException(nameof(image));
        MaskImage = maskImage ?? throw new ArgumentNullException(nameof(maskImage));
    }

    /// <summary>A request driven by precomputed prompt embeddings [batch, 77, hidden].</summary>
    /// <param name="promptEmbeds">The prompt embeddings.</param>
    /// <param name="image">The image.</param>
    /// <param name="maskImage">The mask.</param>
    public InpaintRequest(Tensor<float> promptEmbeds, RgbImage image, RgbImage maskImage)
        : base((IReadOnlyList<string>?)null)
    {
        PromptEmbeds = promptEmbeds ?? throw new ArgumentNullException(nameof(promptEmbeds));
        Image = image ?? throw new ArgumentNullException(nameof(image));
        MaskImage = maskImage ?? throw new ArgumentNullException(nameof(maskImage));
    }

    /// <summary>The image to repaint.</summary>
    public RgbImage Image { get; init; }

    /// <summary>The mask, of the same size as the image: white (&gt;= 50% grey) repaints, black keeps.</summary>
    public RgbImage MaskImage { get; init; }

    /// <summary>How much to change the masked region, in [0, 1] (default 1: start from pure noise there).</summary>
    public double Strength { get; init; } = 1.0;

    /// <summary>
    /// The output height, a multiple of 8 (default: the model's default size, 512 for SD 1.5, as in diffusers; the image
    /// and mask are resized to it, so set it to the image's height to keep the image's proportions).
    /// </summary>
    public int? Height { get; init; }

    /// <summary>The output width, a multiple of 8 (default: the model's default size, 512 for SD 1.5, as in diffusers).</summary>
    public int? Width { get; init; }

    /// <summary>Whether the image and mask may be resized to the output size (default); when false a size that needs resizing is rejected.</summary>
    public bool ResizeImage { get; init; } = true;

    /// <summary>Initial noise [batch * images per prompt, 4, height / 8, width / 8] instead of seeded noise.</summary>
    public Tensor<float>? Latents { get; init; }
}
