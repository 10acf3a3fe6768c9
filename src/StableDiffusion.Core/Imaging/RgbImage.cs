using System.Numerics.Tensors;
using StableDiffusion.Pipelines;

namespace StableDiffusion.Imaging;

/// <summary>
/// An 8-bit RGB image that belongs to no image library: its pixels, row by row from the top, three bytes (red, green,
/// blue) per pixel with no padding. Generations return these, and image-to-image and inpainting requests take them.
/// Convert to and from your image library with the StableDiffusion.ImageSharp or StableDiffusion.SkiaSharp packages,
/// or through the pixels and the tensor. Immutable, so it is safe to share between threads and requests.
/// </summary>
/// <example>
/// <code>
/// RgbImage photo = RgbImage.FromRgba(rgbaBytes, width, height);
/// using var result = await pipe.GenerateAsync(new Img2ImgRequest("a watercolour painting", photo) { Strength = 0.6 });
/// result.Images[0].SaveAsPng("painting.png", result.Parameters[0]);
/// </code>
/// </example>
public sealed class RgbImage
{
    /// <summary>The bytes per pixel of <see cref="Pixels"/>.</summary>
    public const int BytesPerPixel = 3;

    private readonly byte[] _pixels;

    private RgbImage(byte[] pixels, int width, int height)
    {
        _pixels = pixels;
        Width = width;
        Height = height;
    }

    /// <summary>The width in pixels.</summary>
    public int Width { get; }

    /// <summary>The height in pixels.</summary>
    public int Height { get; }

    /// <summary>The pixels: <see cref="Height"/> rows of <see cref="Width"/> × 3 bytes (R, G, B), top row first.</summary>
    public ReadOnlyMemory<byte> Pixels => _pixels;

    /// <summary>An image from packed RGB bytes (copied).</summary>
    /// <param name="rgb">Height rows of width × 3 bytes, top row first, no padding.</param>
    /// <param name="width">The width in pixels.</param>
    /// <param name="height">The height in pixels.</param>
    /// <exception cref="ArgumentOutOfRangeException">A side is not positive.</exception>
    /// <exception cref="ArgumentException">The byte count is not width × height × 3.</exception>
    public static RgbImage FromRgb(ReadOnlySpan<byte> rgb, int width, int height)
    {
        long length = CheckSize(width, height, BytesPerPixel, rgb.Length, nameof(rgb), "RGB");
        return new RgbImage(rgb[..(int)length].ToArray(), width, height);
    }

    /// <summary>
    /// An image from packed RGBA bytes (straight, not premultiplied, alpha). Stable Diffusion works on opaque images, so a
    /// pixel that is not fully opaque is refused unless <paramref name="ignoreAlpha"/> is set, rather than silently
    /// blended onto a colour the model never asked for.
    /// </summary>
    /// <param name="rgba">Height rows of width × 4 bytes, top row first, no padding.</param>
    /// <param name="width">The width in pixels.</param>
    /// <param name="height">The height in pixels.</param>
    /// <param name="ignoreAlpha">Drop the alpha channel instead of refusing transparency, as Pillow's <c>convert("L")</c>
    /// does for inpainting masks.</param>
    /// <exception cref="ArgumentOutOfRangeException">A side is not positive.</exception>
    /// <exception cref="ArgumentException">The byte count is not width × height × 4, or a pixel is transparent.</exception>
    public static RgbImage FromRgba(ReadOnlySpan<byte> rgba, int width, int height, bool ignoreAlpha = false)
    {
        CheckSize(width, height, 4, rgba.Length, nameof(rgba), "RGBA");
        int pixelCount = width * height;
        var rgb = new byte[pixelCount * BytesPerPixel];
        for (int p = 0; p < pixelCount; p++)
        {
            byte alpha = rgba[(p * 4) + 3];
            if (alpha != 255 && !ignoreAlpha)
            {
                throw new ArgumentException(
                    $"The image has transparent pixels (alpha {alpha} at x {p % width}, y {p / width}); Stable Diffusion works on opaque RGB images. " +
                    "Flatten it onto a background colour first, or drop the alpha channel if its colours are meaningful without it.",
                    nameof(rgba));
            }

            rgb[p * 3] = rgba[p * 4];
            rgb[(p * 3) + 1] = rgba[(p * 4) + 1];
            rgb[(p * 3) + 2] = rgba[(p * 4) + 2];
        }

        return new RgbImage(rgb, width, height);
    }

    /// <summary>
    /// An image from float values in [0, 1], NHWC as <see cref="GenerationResult.ImageTensor"/> holds them: [height, width, 3]
    /// or [1, height, width, 3]. Values are rounded to 8 bits as diffusers' <c>numpy_to_pil</c> does (<c>round(x * 255)</c>,
    /// ties to even).
    /// </summary>
    /// <param name="image">The image tensor.</param>
    /// <exception cref="ArgumentException">The shape is not one of those above, or the tensor is not dense.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A value is NaN or outside [0, 1].</exception>
    public static RgbImage FromTensor(ReadOnlyTensorSpan<float> image)
    {
        ReadOnlySpan<nint> lengths = image.Lengths;
        bool shaped = lengths.Length switch
        {
            3 => lengths[2] == BytesPerPixel,
            4 => lengths[0] == 1 && lengths[3] == BytesPerPixel,
            _ => false,
        };
        if (!shaped)
        {
            throw new ArgumentException(
                $"An image tensor is [height, width, 3] or [1, height, width, 3] (NHWC, values in [0, 1]), but this one is [{string.Join(", ", lengths.ToArray())}]. " +
                "For a batch, take one image at a time.",
                nameof(image));
        }

        int height = checked((int)lengths[^3]), width = checked((int)lengths[^2]);
        ReadOnlySpan<float> values = image.AsSpan();
        if (TensorPrimitives.Min(values) is var min && TensorPrimitives.Max(values) is var max && !(min >= 0f && max <= 1f))
        {
            throw new ArgumentOutOfRangeException(nameof(image), $"Image tensor values must be in [0, 1]; this one holds values from {min} to {max}.");
        }

        var rgb = new byte[values.Length];
        Quantize(values, rgb);
        return new RgbImage(rgb, width, height);
    }

    /// <summary>The image as float values in [0, 1], NHWC [1, height, width, 3], as diffusers' <c>output_type="np"</c> has it.</summary>
    public Tensor<float> ToTensor()
    {
        var values = new float[_pixels.Length];
        TensorPrimitives.ConvertTruncating<byte, float>(_pixels, values);
        TensorPrimitives.Divide(values, 255f, values);
        return Tensor.Create(values, [1, Height, Width, BytesPerPixel]);
    }

    /// <summary>The image as a PNG file's bytes.</summary>
    /// <param name="parameters">Settings to store in the PNG's <c>parameters</c> text chunk, as Stable Diffusion web UIs
    /// write and read them; none when null.</param>
    public byte[] ToPng(GenerationParameters? parameters = null)
    {
        using var buffer = new MemoryStream();
        PngEncoder.Write(buffer, this, parameters);
        return buffer.ToArray();
    }

    /// <summary>Writes the image as PNG to a stream (at its current position; the stream stays open).</summary>
    /// <param name="stream">A writable stream.</param>
    /// <param name="parameters">Settings for the <c>parameters</c> text chunk; none when null.</param>
    public void SaveAsPng(Stream stream, GenerationParameters? parameters = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        PngEncoder.Write(stream, this, parameters);
    }

    /// <summary>Writes the image as PNG to a stream (at its current position; the stream stays open).</summary>
    /// <param name="stream">A writable stream.</param>
    /// <param name="parameters">Settings for the <c>parameters</c> text chunk; none when null.</param>
    /// <param name="cancellationToken">Cancels the write.</param>
    public Task SaveAsPngAsync(Stream stream, GenerationParameters? parameters = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return stream.WriteAsync(ToPng(parameters), cancellationToken).AsTask();
    }

    /// <summary>
    /// Saves the image as a PNG file. The file is written under a temporary name beside it and then renamed into place,
    /// so a reader never sees half a file; an existing file is replaced.
    /// </summary>
    /// <param name="path">The file to write; its folder is created if needed.</param>
    /// <param name="parameters">Settings for the <c>parameters</c> text chunk; none when null.</param>
    /// <exception cref="IOException">The file cannot be written (for instance, the path is a folder).</exception>
    public void SaveAsPng(string path, GenerationParameters? parameters = null)
    {
        string temporary = TemporaryPathFor(path);
        try
        {
            using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                PngEncoder.Write(file, this, parameters);
            }

            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    /// <summary>Saves the image as a PNG file; see <see cref="SaveAsPng(string, GenerationParameters?)"/>.</summary>
    /// <param name="path">The file to write; its folder is created if needed.</param>
    /// <param name="parameters">Settings for the <c>parameters</c> text chunk; none when null.</param>
    /// <param name="cancellationToken">Cancels the write; the target is then left as it was.</param>
    /// <exception cref="IOException">The file cannot be written (for instance, the path is a folder).</exception>
    public async Task SaveAsPngAsync(string path, GenerationParameters? parameters = null, CancellationToken cancellationToken = default)
    {
        string temporary = TemporaryPathFor(path);
        try
        {
            await File.WriteAllBytesAsync(temporary, ToPng(parameters), cancellationToken).ConfigureAwait(false);
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    /// <summary>diffusers' <c>numpy_to_pil</c>: <c>round(x * 255)</c> with ties to even, for values in [0, 1].</summary>
    internal static void Quantize(ReadOnlySpan<float> values, Span<byte> bytes)
    {
        const int ChunkLength = 1024;
        Span<float> scaled = stackalloc float[ChunkLength];
        for (int offset = 0; offset < values.Length; offset += ChunkLength)
        {
            int n = Math.Min(ChunkLength, values.Length - offset);
            TensorPrimitives.Multiply(values.Slice(offset, n), 255f, scaled[..n]);
            TensorPrimitives.Round(scaled[..n], scaled[..n]);
            TensorPrimitives.ConvertTruncating<float, byte>(scaled[..n], bytes.Slice(offset, n));
        }
    }

    /// <summary>An image over pixels this assembly made and no one else holds (no copy).</summary>
    internal static RgbImage Wrap(byte[] rgb, int width, int height) => new(rgb, width, height);

    private static long CheckSize(int width, int height, int channels, int length, string name, string layout)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        long expected = (long)width * height * channels;
        if (expected > Array.MaxLength || length != expected)
        {
            throw new ArgumentException(
                $"A {width}x{height} {layout} image has {expected} bytes ({channels} per pixel, no row padding), but {length} were given.", name);
        }

        return expected;
    }

    private static string TemporaryPathFor(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            throw new IOException($"'{path}' is a folder; give the path of the PNG file to write.");
        }

        string folder = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(folder);
        return Path.Combine(folder, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
    }
}
