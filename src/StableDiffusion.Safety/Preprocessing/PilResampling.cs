namespace StableDiffusion.Safety;

/// <summary>
/// Pillow's resampling filters, with the integer codes that <c>preprocessor_config.json</c> stores in <c>resample</c>
/// (<c>PIL.Image.Resampling</c>). <see cref="ClipImageProcessor"/> reproduces each of them exactly on 8-bit RGB images.
/// </summary>
public enum PilResampling
{
    /// <summary>Nearest neighbour (<c>NEAREST</c>, 0).</summary>
    Nearest = 0,

    /// <summary>Lanczos, a windowed sinc with support 3 (<c>LANCZOS</c>, 1).</summary>
    Lanczos = 1,

    /// <summary>Bilinear, a triangle filter with support 1 (<c>BILINEAR</c>, 2).</summary>
    Bilinear = 2,

    /// <summary>Bicubic convolution with a = -0.5 and support 2 (<c>BICUBIC</c>, 3): what CLIP and Stable Diffusion use.</summary>
    Bicubic = 3,

    /// <summary>Box filter with support 0.5 (<c>BOX</c>, 4).</summary>
    Box = 4,

    /// <summary>Hamming-windowed sinc with support 1 (<c>HAMMING</c>, 5).</summary>
    Hamming = 5,
}
