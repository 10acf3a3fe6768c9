using System.Globalization;

namespace StableDiffusion.SkiaSharp;

/// <summary>
/// The largest image <see cref="SkiaImageCodec"/> decodes, checked on the file's header before decoding: a few kilobytes
/// of PNG or JPEG can declare gigapixels.
/// </summary>
public sealed record ImageDecodeLimits
{
    /// <summary>8192 pixels a side (the largest image Stable Diffusion here generates) and 32 megapixels.</summary>
    public static ImageDecodeLimits Default { get; } = new();

    /// <summary>The largest width in pixels (default 8192).</summary>
    public int MaxWidth { get; init; } = 8192;

    /// <summary>The largest height in pixels (default 8192).</summary>
    public int MaxHeight { get; init; } = 8192;

    /// <summary>The largest width × height (default 32 megapixels: 128 MiB decoded).</summary>
    public long MaxPixels { get; init; } = 32L * 1024 * 1024;

    /// <summary>Throws unless a <paramref name="width"/> × <paramref name="height"/> image is within the limits.</summary>
    /// <param name="width">The width in pixels.</param>
    /// <param name="height">The height in pixels.</param>
    /// <exception cref="InvalidDataException">The image is empty or larger than a limit (the message names it).</exception>
    public void Check(int width, int height)
    {
        if (width < 1 || height < 1)
        {
            throw new InvalidDataException(Invariant($"The image is {width}x{height} pixels: it has no pixels."));
        }

        if (width > MaxWidth || height > MaxHeight)
        {
            throw new InvalidDataException(Invariant($"The image is {width}x{height} pixels; at most {MaxWidth}x{MaxHeight} is accepted. Scale it down first."));
        }

        if ((long)width * height > MaxPixels)
        {
            throw new InvalidDataException(Invariant(
                $"The image is {width}x{height}, {(long)width * height:N0} pixels; at most {MaxPixels:N0} pixels are accepted. Scale it down first."));
        }
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
