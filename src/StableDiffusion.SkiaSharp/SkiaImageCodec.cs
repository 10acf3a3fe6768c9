using System.Runtime.InteropServices;
using SkiaSharp;
using StableDiffusion.Imaging;

namespace StableDiffusion.SkiaSharp;

/// <summary>
/// Decodes image files (PNG, JPEG, WebP, GIF, BMP, ...) into <see cref="RgbImage"/>s through SkiaSharp, with size limits
/// checked on the file's header before any pixel is decoded, and encodes images as JPEG or WebP. For PNG with the
/// generation's settings, use <see cref="RgbImage.SaveAsPng(string, Pipelines.GenerationParameters?)"/>.
/// </summary>
/// <remarks>
/// Meant for files a user uploads or names: a small file can declare an enormous image (a "decompression bomb"), so the
/// dimensions from the header are checked against <see cref="ImageDecodeLimits"/> first, and a file that is not an image,
/// is truncated or is corrupt fails with an <see cref="InvalidDataException"/> that says which. Pixels come upright: an
/// EXIF orientation (a phone photo taken sideways) is applied, as diffusers' <c>load_image</c> does.
/// </remarks>
public static class SkiaImageCodec
{
    /// <summary>Decodes an image file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="limits">The largest image accepted; <see cref="ImageDecodeLimits.Default"/> when null.</param>
    /// <param name="ignoreAlpha">Drop the alpha channel instead of refusing transparent pixels (for masks, as Pillow does).</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not an image SkiaSharp can read, is larger than the limits, or is truncated or corrupt.</exception>
    /// <exception cref="ArgumentException">The image has transparent pixels and <paramref name="ignoreAlpha"/> is false.</exception>
    public static RgbImage Decode(string path, ImageDecodeLimits? limits = null, bool ignoreAlpha = false)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        return Decode(file, limits, ignoreAlpha);
    }

    /// <summary>Decodes an image from a stream (read from its current position; the stream stays open).</summary>
    /// <param name="stream">The encoded image.</param>
    /// <param name="limits">The largest image accepted; <see cref="ImageDecodeLimits.Default"/> when null.</param>
    /// <param name="ignoreAlpha">Drop the alpha channel instead of refusing transparent pixels (for masks, as Pillow does).</param>
    /// <exception cref="InvalidDataException">The data is not an image SkiaSharp can read, is larger than the limits, or is truncated or corrupt.</exception>
    /// <exception cref="ArgumentException">The image has transparent pixels and <paramref name="ignoreAlpha"/> is false.</exception>
    public static RgbImage Decode(Stream stream, ImageDecodeLimits? limits = null, bool ignoreAlpha = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        limits ??= ImageDecodeLimits.Default;
        using var managed = new SKManagedStream(stream, disposeManagedStream: false);
        using SKCodec? codec = SKCodec.Create(managed, out SKCodecResult opened);
        if (codec is null)
        {
            throw new InvalidDataException($"This is not an image that can be read (PNG, JPEG, WebP, GIF or BMP); SkiaSharp says: {opened}.");
        }

        int width = codec.Info.Width, height = codec.Info.Height;
        SKEncodedOrigin origin = codec.EncodedOrigin;
        bool turned = origin >= SKEncodedOrigin.LeftTop;
        limits.Check(turned ? height : width, turned ? width : height);
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var rgba = new byte[info.BytesSize];
        SKCodecResult decoded;
        GCHandle pin = GCHandle.Alloc(rgba, GCHandleType.Pinned);
        try
        {
            decoded = codec.GetPixels(info, pin.AddrOfPinnedObject());
        }
        finally
        {
            pin.Free();
        }

        if (decoded != SKCodecResult.Success)
        {
            throw new InvalidDataException(decoded == SKCodecResult.IncompleteInput
                ? $"The {width}x{height} image is truncated: the file ends before its last pixels."
                : $"The {width}x{height} image cannot be decoded; SkiaSharp says: {decoded}.");
        }

        if (origin == SKEncodedOrigin.TopLeft)
        {
            return RgbImage.FromRgba(rgba, width, height, ignoreAlpha);
        }

        (byte[] upright, int uprightWidth, int uprightHeight) = ApplyOrigin(rgba, width, height, origin);
        return RgbImage.FromRgba(upright, uprightWidth, uprightHeight, ignoreAlpha);
    }

    /// <summary>
    /// Turns stored pixels the way the file's EXIF orientation says they are shown, as diffusers' <c>load_image</c> does
    /// (Pillow's <c>exif_transpose</c>), so a phone photo is not generated on sideways. SkiaSharp decodes the stored
    /// order only; this is an exact remap of whole pixels (no resampling), so it is done here rather than on a canvas.
    /// </summary>
    private static (byte[] Rgba, int Width, int Height) ApplyOrigin(byte[] rgba, int width, int height, SKEncodedOrigin origin)
    {
        bool turned = origin >= SKEncodedOrigin.LeftTop;
        int outWidth = turned ? height : width, outHeight = turned ? width : height;
        var result = new byte[rgba.Length];
        ReadOnlySpan<uint> source = MemoryMarshal.Cast<byte, uint>(rgba);
        Span<uint> target = MemoryMarshal.Cast<byte, uint>(result.AsSpan());
        for (int y = 0; y < outHeight; y++)
        {
            for (int x = 0; x < outWidth; x++)
            {
                // The stored pixel shown at (x, y): the origin names where the stored first row and column appear.
                (int sx, int sy) = origin switch
                {
                    SKEncodedOrigin.TopRight => (width - 1 - x, y),
                    SKEncodedOrigin.BottomRight => (width - 1 - x, height - 1 - y),
                    SKEncodedOrigin.BottomLeft => (x, height - 1 - y),
                    SKEncodedOrigin.LeftTop => (y, x),
                    SKEncodedOrigin.RightTop => (y, height - 1 - x),
                    SKEncodedOrigin.RightBottom => (width - 1 - y, height - 1 - x),
                    _ => (width - 1 - y, x), // LeftBottom, the last of the eight.
                };
                target[(y * outWidth) + x] = source[(sy * width) + sx];
            }
        }

        return (result, outWidth, outHeight);
    }

    /// <summary>Encodes an image as JPEG or WebP (or PNG without settings).</summary>
    /// <param name="image">The image.</param>
    /// <param name="format"><see cref="SKEncodedImageFormat.Jpeg"/>, <see cref="SKEncodedImageFormat.Webp"/> or <see cref="SKEncodedImageFormat.Png"/>.</param>
    /// <param name="quality">From 0 to 100 for the lossy formats (default 90); WebP at 100 is lossless.</param>
    /// <returns>The encoded file's bytes.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The quality is outside [0, 100].</exception>
    /// <exception cref="NotSupportedException">This SkiaSharp build cannot encode <paramref name="format"/>.</exception>
    public static byte[] Encode(RgbImage image, SKEncodedImageFormat format, int quality = 90)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentOutOfRangeException.ThrowIfLessThan(quality, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(quality, 100);
        using SKImage skia = image.ToSKImage();
        using SKData? data = skia.Encode(format, quality);
        return data?.ToArray() ?? throw new NotSupportedException($"This SkiaSharp build cannot encode {format} images.");
    }
}
