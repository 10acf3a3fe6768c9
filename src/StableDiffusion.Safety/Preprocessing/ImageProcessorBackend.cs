namespace StableDiffusion.Safety;

/// <summary>
/// Which of transformers' two <c>CLIPImageProcessor</c> implementations <see cref="ClipImageProcessor"/> reproduces.
/// They differ in the 8-bit resize (fixed-point precision, by up to 2 levels on about 1% of values) and in how the
/// centre crop pads odd margins; everything else is the same.
/// </summary>
public enum ImageProcessorBackend
{
    /// <summary>
    /// The torchvision backend: transformers 5 uses it for <c>CLIPImageProcessor</c> when torchvision is installed, and
    /// the diffusers reference outputs were made with it. The resize is torch's antialiased 8-bit interpolation
    /// (<c>interpolate(..., antialias=True)</c> on uint8), Pillow's algorithm with 15-bit rather than 22-bit weights.
    /// Supports the bicubic filter (and Lanczos, which transformers replaces by bicubic on this backend).
    /// </summary>
    Torchvision = 0,

    /// <summary>
    /// The PIL backend: transformers 4 (<c>CLIPImageProcessor</c>), or transformers 5 without torchvision. The resize is
    /// Pillow's <c>Image.resize</c>, reproduced bit for bit for every Pillow filter.
    /// </summary>
    Pil = 1,
}
