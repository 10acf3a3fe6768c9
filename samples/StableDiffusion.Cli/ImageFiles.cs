using SkiaSharp;
using StableDiffusion.Imaging;
using StableDiffusion.Pipelines;
using StableDiffusion.SkiaSharp;

namespace StableDiffusion.Cli;

/// <summary>
/// The files the tool reads and writes: input images decoded through SkiaSharp (sizes checked on the header before
/// decoding), outputs written by extension (PNG with its parameters, JPEG, WebP) atomically, and the parameters of a PNG.
/// </summary>
internal static class ImageFiles
{
    /// <summary>The extensions <c>--output</c> takes.</summary>
    public static readonly string[] OutputExtensions = [".png", ".jpg", ".jpeg", ".webp"];

    /// <summary>The largest input image, the SDK's largest output: Stable Diffusion works at the input's size.</summary>
    private static readonly ImageDecodeLimits InputLimits = new() { MaxWidth = 8192, MaxHeight = 8192, MaxPixels = 8192L * 8192 };

    /// <summary>Reads the <c>parameters</c> text chunk of a PNG.</summary>
    /// <exception cref="CliUsageException">The file is missing, not a PNG, or has no usable parameters.</exception>
    public static GenerationParameters ReadParameters(string path)
    {
        if (!File.Exists(path))
        {
            throw new CliUsageException($"--from-png: '{path}' does not exist.");
        }

        GenerationParameters? parameters;
        try
        {
            parameters = GenerationParameters.FromPng(path);
        }
        catch (InvalidDataException ex)
        {
            throw new CliUsageException($"--from-png: '{path}' cannot be read. {ex.Message}");
        }
        catch (FormatException ex)
        {
            throw new CliUsageException($"--from-png: the parameters in '{path}' cannot be read: {ex.Message}");
        }

        return parameters ?? throw new CliUsageException(
            $"--from-png: '{path}' has no \"{GenerationParameters.PngKeyword}\" text chunk (it was not written by a Stable Diffusion tool).");
    }

    /// <summary>Decodes an input image; a mask's alpha channel is dropped, as Pillow does, an image's must be opaque.</summary>
    /// <exception cref="CliUsageException">The file is missing, unreadable, too large or transparent.</exception>
    public static RgbImage Load(string path, string option, bool isMask)
    {
        try
        {
            return SkiaImageCodec.Decode(path, InputLimits, ignoreAlpha: isMask);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new CliUsageException($"{option}: '{path}' does not exist.");
        }
        catch (UnauthorizedAccessException)
        {
            throw new CliUsageException($"{option}: '{path}' cannot be read (permission denied, or it is a folder).");
        }
        catch (InvalidDataException ex)
        {
            throw new CliUsageException($"{option}: '{path}' is not an image this tool can read: {ex.Message}");
        }
        catch (ArgumentException)
        {
            throw new CliUsageException(
                $"{option}: '{path}' has transparent pixels; Stable Diffusion works on opaque images. Flatten it onto a background colour first (for example, export it as JPEG).");
        }
    }

    /// <summary>Checks the output path before anything is loaded: a known extension, and not a folder.</summary>
    /// <exception cref="CliUsageException">The path cannot be written as an image.</exception>
    public static void ValidateOutput(string path)
    {
        if (Directory.Exists(path))
        {
            throw new CliUsageException($"--output: '{path}' is a folder; give the file to write, e.g. {Path.Combine(path, "image.png")}.");
        }

        string extension = Path.GetExtension(path);
        if (!OutputExtensions.Contains(extension, StringComparer.OrdinalIgnoreCase))
        {
            throw new CliUsageException(
                $"--output: '{path}' has {(extension.Length == 0 ? "no extension" : $"the extension {extension}")}; sdnet writes .png (with the settings in it), .jpg and .webp.");
        }
    }

    /// <summary>
    /// Writes an image in the format its extension names, through a temporary file renamed into place, so a reader never
    /// sees a half-written file and an existing file is replaced only when asked. Only PNGs carry the parameters.
    /// </summary>
    public static void Write(RgbImage image, GenerationParameters parameters, string path, bool overwrite)
    {
        byte[] bytes = Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".jpg" or ".jpeg" => SkiaImageCodec.Encode(image, SKEncodedImageFormat.Jpeg, quality: 95),
            ".webp" => SkiaImageCodec.Encode(image, SKEncodedImageFormat.Webp, quality: 95),
            _ => image.ToPng(parameters),
        };
        string folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(folder);
        string temporary = Path.Combine(folder, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            File.WriteAllBytes(temporary, bytes);
            File.Move(temporary, path, overwrite);
        }
        catch (IOException) when (!overwrite && File.Exists(path))
        {
            throw new CliUsageException($"'{path}' already exists; pass --overwrite to replace it or choose another --output.");
        }
        finally
        {
            File.Delete(temporary);
        }
    }
}
