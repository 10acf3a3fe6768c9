using System.Runtime.InteropServices;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using StableDiffusion.Imaging;

namespace StableDiffusion.ImageSharp;

/// <summary>
/// Conversions between <see cref="RgbImage"/> (what generations return and image-to-image and inpainting requests take)
/// and SixLabors.ImageSharp images.
/// </summary>
/// <remarks>
/// This package is compiled against ImageSharp 2.1.13 but calls only members that ImageSharp 3.x and 4.x kept with the
/// same signatures: the <c>Image&lt;TPixel&gt;(width, height)</c> constructor, <c>CloneAs&lt;TPixel&gt;()</c>,
/// <c>ProcessPixelRows</c> with <c>PixelAccessor&lt;TPixel&gt;.GetRowSpan</c>, <c>Width</c> and <c>Height</c>. It never
/// calls the <c>byte[]</c> overloads of <c>Image.LoadPixelData</c> that 3.0 removed (calling them from code built against
/// 2.x is what throws <see cref="MissingMethodException"/> in an application on a newer ImageSharp). So whichever ImageSharp
/// version your application references, 2.1.13 or later, is the one that runs; the package CI builds a fresh application
/// against each version it can restore and generates an image with it.
/// </remarks>
public static class ImageSharpExtensions
{
    /// <summary>The image as a new ImageSharp image, which the caller disposes.</summary>
    /// <param name="image">A generated image, or any <see cref="RgbImage"/>.</param>
    /// <returns>An <c>Image&lt;Rgb24&gt;</c> with the same pixels.</returns>
    /// <example><code>using Image&lt;Rgb24&gt; picture = result.Images[0].ToImageSharp();</code></example>
    public static Image<Rgb24> ToImageSharp(this RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var result = new Image<Rgb24>(image.Width, image.Height);
        int stride = image.Width * RgbImage.BytesPerPixel;
        result.ProcessPixelRows(rows =>
        {
            ReadOnlySpan<byte> pixels = image.Pixels.Span;
            for (int y = 0; y < rows.Height; y++)
            {
                pixels.Slice(y * stride, stride).CopyTo(MemoryMarshal.AsBytes(rows.GetRowSpan(y)));
            }
        });
        return result;
    }

    /// <summary>
    /// An ImageSharp image of any pixel format as an <see cref="RgbImage"/> for an image-to-image or inpainting request.
    /// The ImageSharp image is not changed and stays the caller's to dispose.
    /// </summary>
    /// <param name="image">The image.</param>
    /// <param name="ignoreAlpha">Drop the alpha channel instead of refusing transparent pixels (for masks, as Pillow does).</param>
    /// <exception cref="ArgumentException">The image has transparent pixels and <paramref name="ignoreAlpha"/> is false.</exception>
    /// <example><code>var request = new Img2ImgRequest("a watercolour painting", photo.ToRgbImage());</code></example>
    public static RgbImage ToRgbImage(this Image image, bool ignoreAlpha = false)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image is Image<Rgb24> rgb)
        {
            return RgbImage.FromRgb(CopyRows(rgb, RgbImage.BytesPerPixel), rgb.Width, rgb.Height);
        }

        if (image is Image<Rgba32> rgba)
        {
            return RgbImage.FromRgba(CopyRows(rgba, 4), rgba.Width, rgba.Height, ignoreAlpha);
        }

        using Image<Rgba32> converted = image.CloneAs<Rgba32>();
        return RgbImage.FromRgba(CopyRows(converted, 4), converted.Width, converted.Height, ignoreAlpha);
    }

    private static byte[] CopyRows<TPixel>(Image<TPixel> image, int bytesPerPixel)
        where TPixel : unmanaged, IPixel<TPixel>
    {
        int stride = image.Width * bytesPerPixel;
        var bytes = new byte[stride * image.Height];
        image.ProcessPixelRows(rows =>
        {
            for (int y = 0; y < rows.Height; y++)
            {
                MemoryMarshal.AsBytes(rows.GetRowSpan(y)).CopyTo(bytes.AsSpan(y * stride, stride));
            }
        });
        return bytes;
    }
}
