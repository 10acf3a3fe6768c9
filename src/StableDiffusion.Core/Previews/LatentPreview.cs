using StableDiffusion.Imaging;

namespace StableDiffusion.Previews;

/// <summary>
/// Turns the latents of a denoising step into a preview image, for <see cref="Pipelines.DiffusionRequest.Preview"/>:
/// <see cref="LatentRgbPreview.StableDiffusion1"/> (a linear map, nearly free, at the latents' size) or a
/// <see cref="TinyAutoencoderPreview"/> (TAESD: a small decoder, full size, close to the final image).
/// </summary>
public abstract class LatentPreview
{
    /// <summary>Renders one image's latents as the scheduler holds them (the VAE's scaled space), [channels, height, width].</summary>
    /// <param name="latents">The latents of one image, channel-major.</param>
    /// <param name="channels">The latent channels (4 for SD 1.x).</param>
    /// <param name="height">The latent height (the image's / 8).</param>
    /// <param name="width">The latent width.</param>
    /// <returns>The preview.</returns>
    public abstract RgbImage Render(ReadOnlySpan<float> latents, int channels, int height, int width);
}
