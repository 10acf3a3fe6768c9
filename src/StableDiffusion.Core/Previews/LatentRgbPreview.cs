using System.Numerics.Tensors;
using StableDiffusion.Imaging;

namespace StableDiffusion.Previews;

/// <summary>
/// A preview at the latents' own size (an eighth of the image's) from a fixed linear map of the latent channels to RGB:
/// a few multiply-adds per pixel, with the colours and layout of the final image but none of its detail.
/// </summary>
public sealed class LatentRgbPreview : LatentPreview
{
    private readonly float[] _factors;
    private readonly int _channels;

    /// <summary>A map from <paramref name="channels"/> latent channels to RGB in [-1, 1].</summary>
    /// <param name="factors">Row-major [channels, 3]: each latent channel's contribution to red, green and blue.</param>
    /// <param name="channels">The latent channels.</param>
    public LatentRgbPreview(ReadOnlySpan<float> factors, int channels)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(channels, 1);
        if (factors.Length != channels * 3)
        {
            throw new ArgumentException($"The factors must be [channels, 3] = {channels * 3} values, not {factors.Length}.", nameof(factors));
        }

        _factors = factors.ToArray();
        _channels = channels;
    }

    /// <summary>
    /// The map for SD 1.x latents (4 channels): the least-squares fit of decoded colours to latents that web UIs use for
    /// their cheap previews.
    /// </summary>
    public static LatentRgbPreview StableDiffusion1 { get; } = new(
    [
        0.3512f, 0.2297f, 0.3227f,
        0.3250f, 0.4974f, 0.2350f,
        -0.2829f, 0.1762f, 0.2721f,
        -0.2120f, -0.2616f, -0.7177f,
    ], 4);

    /// <inheritdoc />
    public override RgbImage Render(ReadOnlySpan<float> latents, int channels, int height, int width)
    {
        if (channels != _channels || latents.Length != channels * height * width)
        {
            throw new ArgumentException($"The preview maps {_channels} latent channels; the latents are [{channels}, {height}, {width}] with {latents.Length} values.", nameof(latents));
        }

        int plane = height * width;
        var rgb = new float[plane * 3];
        var scratch = new float[plane];
        for (int c = 0; c < 3; c++)
        {
            Array.Clear(scratch);
            for (int k = 0; k < channels; k++)
            {
                // scratch += latents[k] * factor[k, c]
                TensorPrimitives.MultiplyAdd(latents.Slice(k * plane, plane), _factors[(k * 3) + c], scratch, scratch);
            }

            for (int p = 0; p < plane; p++)
            {
                rgb[(p * 3) + c] = scratch[p];
            }
        }

        // [-1, 1] to [0, 1], then to bytes as the final images are made.
        TensorPrimitives.Multiply(rgb, 0.5f, rgb);
        TensorPrimitives.Add(rgb, 0.5f, rgb);
        TensorPrimitives.Clamp(rgb, 0f, 1f, rgb);
        var bytes = new byte[rgb.Length];
        RgbImage.Quantize(rgb, bytes);
        return RgbImage.Wrap(bytes, width, height);
    }
}
