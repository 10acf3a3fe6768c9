using System.Runtime.InteropServices;
using SkiaSharp;
using StableDiffusion.Imaging;

namespace StableDiffusion.SkiaSharp;

/// <summary>
/// Conversions between <see cref="RgbImage"/> (what generations return and image-to-image and inpainting requests take)
/// and SkiaSharp's <see cref="SKBitmap"/> and <see cref="SKImage"/>.
/// </summary>
public static class SkiaSharpExtensions
{
    /// <summary>The image as a new opaque RGBA bitmap, which the caller disposes.</summary>
    /// <param name="image">A generated image, or any <see cref="RgbImage"/>.</param>
    public static SKBitmap ToSKBitmap(this RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var bitmap = new SKBitmap(new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        try
        {
            ExpandToRgba(image.Pixels.Span, PixelBytes(bitmap));
            bitmap.NotifyPixelsChanged();
            return bitmap;
        }
        catch
        {
            bitmap.Dispose();
            throw;
        }
    }

    /// <summary>The image as a new immutable opaque <see cref="SKImage"/>, which the caller disposes.</summary>
    /// <param name="image">A generated image, or any <see cref="RgbImage"/>.</param>
    public static SKImage ToSKImage(this RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        using SKBitmap bitmap = image.ToSKBitmap();
        return SKImage.FromBitmap(bitmap);
    }

    /// <summary>A bitmap of any colour type as an <see cref="RgbImage"/> for an image-to-image or inpainting request.
    /// The bitmap is not changed and stays the caller's to dispose.</summary>
    /// <param name="bitmap">The bitmap.</param>
    /// <param name="ignoreAlpha">Drop the alpha channel instead of refusing transparent pixels (for masks, as Pillow does).</param>
    /// <exception cref="ArgumentException">The bitmap has transparent pixels and <paramref name="ignoreAlpha"/> is false,
    /// or it has no pixels.</exception>
    public static RgbImage ToRgbImage(this SKBitmap bitmap, bool ignoreAlpha = false)
    {
        ArgumentNullException.ThrowIfNull(bitmap);
        using SKImage image = SKImage.FromBitmap(bitmap) ?? throw new ArgumentException("The bitmap has no pixels.", nameof(bitmap));
        return image.ToRgbImage(ignoreAlpha);
    }

    /// <summary>An image of any colour type as an <see cref="RgbImage"/> for an image-to-image or inpainting request
    /// (its pixels are read as unpremultiplied sRGB RGBA first).</summary>
    /// <param name="image">The image.</param>
    /// <param name="ignoreAlpha">Drop the alpha channel instead of refusing transparent pixels (for masks, as Pillow does).</param>
    /// <exception cref="ArgumentException">The image has transparent pixels and <paramref name="ignoreAlpha"/> is false.</exception>
    public static RgbImage ToRgbImage(this SKImage image, bool ignoreAlpha = false)
    {
        ArgumentNullException.ThrowIfNull(image);
        var info = new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var rgba = new byte[info.BytesSize];
        GCHandle pin = GCHandle.Alloc(rgba, GCHandleType.Pinned);
        try
        {
            if (!image.ReadPixels(info, pin.AddrOfPinnedObject(), info.RowBytes, 0, 0))
            {
                throw new ArgumentException($"SkiaSharp could not read the {image.Width}x{image.Height} image's pixels as RGBA.", nameof(image));
            }
        }
        finally
        {
            pin.Free();
        }

        return RgbImage.FromRgba(rgba, image.Width, image.Height, ignoreAlpha);
    }

    /// <summary>Writes packed RGB into opaque RGBA.</summary>
    internal static void ExpandToRgba(ReadOnlySpan<byte> rgb, Span<byte> rgba)
    {
        for (int p = 0, q = 0; p < rgb.Length; p += 3, q += 4)
        {
            rgba[q] = rgb[p];
            rgba[q + 1] = rgb[p + 1];
            rgba[q + 2] = rgb[p + 2];
            rgba[q + 3] = 255;
        }
    }

    private static Span<byte> PixelBytes(SKBitmap bitmap) => bitmap.GetPixelSpan();
}
