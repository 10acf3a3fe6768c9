using StableDiffusion.Imaging;
using StableDiffusion.Safety;

namespace StableDiffusion.Pipelines.Internal;

/// <summary>
/// diffusers' <c>VaeImageProcessor.preprocess</c> for the input image (RGB, resized with Pillow's Lanczos to a multiple of 8,
/// scaled to [-1, 1]) and its mask processor for inpainting masks (grayscale, resized, binarised at 0.5).
/// </summary>
internal static class ImagePreprocessor
{
    /// <summary>The output size: the one asked for, else the image's size rounded down to a multiple of <paramref name="scale"/>.</summary>
    public static (int Height, int Width) TargetSize(RgbImage image, int? height, int? width, int scale, string name)
    {
        int h = height ?? image.Height - (image.Height % scale);
        int w = width ?? image.Width - (image.Width % scale);
        // An image smaller than one latent pixel holds nothing to start from, whatever size it would be resized to.
        if (image.Height < scale || image.Width < scale || h < scale || w < scale)
        {
            throw new ArgumentException($"The {Describe(name)} is {image.Width}x{image.Height} pixels; it must be at least {scale}x{scale}.", name);
        }

        return (h, w);
    }

    /// <summary>The image as normalised NCHW floats [1, 3, height, width] in [-1, 1], resized if needed and allowed.</summary>
    public static float[] Image(RgbImage image, int height, int width, bool allowResize, string name)
    {
        ReadOnlySpan<byte> rgb = Resize(image.Pixels, image.Height, image.Width, height, width, 3, allowResize, name).Span;
        int plane = height * width;
        var nchw = new float[3 * plane];
        for (int p = 0; p < plane; p++)
        {
            for (int c = 0; c < 3; c++)
            {
                // numpy: uint8 -> float32 / 255, then 2x - 1, all in single precision.
                float unit = rgb[(p * 3) + c] / 255f;
                nchw[(c * plane) + p] = (2f * unit) - 1f;
            }
        }

        return nchw;
    }

    /// <summary>The mask as [height * width] values, 1 where it repaints (at least 50% white) and 0 where it keeps.</summary>
    public static float[] Mask(RgbImage mask, int height, int width, bool allowResize, string name)
    {
        byte[] luma = Resize(Luma(mask.Pixels.Span), mask.Height, mask.Width, height, width, 1, allowResize, name).ToArray();
        var binary = new float[luma.Length];
        for (int i = 0; i < luma.Length; i++)
        {
            binary[i] = luma[i] / 255f < 0.5f ? 0f : 1f;
        }

        return binary;
    }

    /// <summary>torch's nearest-neighbour <c>interpolate</c> of a [height, width] mask down to the latent size.</summary>
    public static float[] DownsampleNearest(float[] mask, int height, int width, int outHeight, int outWidth)
    {
        var result = new float[outHeight * outWidth];
        float scaleY = (float)height / outHeight, scaleX = (float)width / outWidth;
        for (int y = 0; y < outHeight; y++)
        {
            int sy = Math.Min((int)MathF.Floor(y * scaleY), height - 1);
            for (int x = 0; x < outWidth; x++)
            {
                int sx = Math.Min((int)MathF.Floor(x * scaleX), width - 1);
                result[(y * outWidth) + x] = mask[(sy * width) + sx];
            }
        }

        return result;
    }

    // Pillow's convert("L"): ITU-R 601-2 luma in 16-bit fixed point (grey pixels keep their level exactly).
    private static byte[] Luma(ReadOnlySpan<byte> rgb)
    {
        var luma = new byte[rgb.Length / 3];
        for (int p = 0; p < luma.Length; p++)
        {
            luma[p] = (byte)(((rgb[3 * p] * 19595) + (rgb[(3 * p) + 1] * 38470) + (rgb[(3 * p) + 2] * 7471) + 0x8000) >> 16);
        }

        return luma;
    }

    private static ReadOnlyMemory<byte> Resize(ReadOnlyMemory<byte> pixels, int inHeight, int inWidth, int outHeight, int outWidth, int channels, bool allowResize, string name)
    {
        if (inHeight == outHeight && inWidth == outWidth)
        {
            return pixels;
        }

        if (!allowResize)
        {
            throw new ArgumentException(
                $"The {Describe(name)} is {inWidth}x{inHeight} but the output is {outWidth}x{outHeight} and ResizeImage is false; resize or crop it to the output size first, or allow resizing.", name);
        }

        // Pillow's Lanczos, exactly (the resampler is written for RGB; a grey image goes through it as three equal channels).
        ReadOnlySpan<byte> rgb = channels == 3 ? pixels.Span : Expand(pixels.Span);
        var resized = new byte[outHeight * outWidth * 3];
        new Uint8Resize(inHeight, inWidth, outHeight, outWidth, PilResampling.Lanczos, ImageProcessorBackend.Pil).ResizeRegion(rgb, 0, outHeight, 0, outWidth, resized);
        return channels == 3 ? resized : Collapse(resized);
    }

    private static byte[] Expand(ReadOnlySpan<byte> gray)
    {
        var rgb = new byte[gray.Length * 3];
        for (int i = 0; i < gray.Length; i++)
        {
            rgb[3 * i] = rgb[(3 * i) + 1] = rgb[(3 * i) + 2] = gray[i];
        }

        return rgb;
    }

    /// <summary>The user's word for a request property: "image" for Image, "mask" for MaskImage.</summary>
    public static string Describe(string name) => name == nameof(InpaintRequest.MaskImage) ? "mask" : "image";

    private static byte[] Collapse(byte[] rgb)
    {
        var gray = new byte[rgb.Length / 3];
        for (int i = 0; i < gray.Length; i++)
        {
            gray[i] = rgb[3 * i];
        }

        return gray;
    }
}
