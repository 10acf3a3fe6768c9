using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;

namespace StableDiffusion.Cli;

/// <summary>Writes PNGs with their generation parameters, atomically, and reads the parameters back.</summary>
internal static class PngMetadata
{
    /// <summary>Reads the <c>parameters</c> text chunk of a PNG.</summary>
    /// <exception cref="CliUsageException">The file is missing, not a PNG, or has no parameters.</exception>
    public static GenerationParameters Read(string path)
    {
        if (!File.Exists(path))
        {
            throw new CliUsageException($"--from-png: '{path}' does not exist.");
        }

        IImageInfo info;
        try
        {
            info = Image.Identify(path) ?? throw new CliUsageException($"--from-png: '{path}' is not an image.");
        }
        catch (UnknownImageFormatException)
        {
            throw new CliUsageException($"--from-png: '{path}' is not a PNG.");
        }

        // PngTextData is a struct: FirstOrDefault would give an empty one, not null.
        PngTextData? chunk = info.Metadata.GetPngMetadata().TextData
            .Where(t => t.Keyword == GenerationParameters.ChunkKeyword).Select(t => (PngTextData?)t).FirstOrDefault();
        if (chunk is not { } text)
        {
            throw new CliUsageException($"--from-png: '{path}' has no \"{GenerationParameters.ChunkKeyword}\" text chunk (it was not written by a Stable Diffusion tool).");
        }

        try
        {
            return GenerationParameters.Parse(text.Value);
        }
        catch (FormatException ex)
        {
            throw new CliUsageException($"--from-png: the parameters in '{path}' cannot be read: {ex.Message}");
        }
    }

    /// <summary>
    /// Saves <paramref name="image"/> as PNG with <paramref name="parameters"/>, through a temporary file renamed into place,
    /// so a reader never sees a half-written file and an existing file is replaced only when asked.
    /// </summary>
    public static void Write(Image<Rgb24> image, GenerationParameters parameters, string path, bool overwrite)
    {
        image.Metadata.GetPngMetadata().TextData.Add(new PngTextData(GenerationParameters.ChunkKeyword, parameters.Format(), string.Empty, string.Empty));
        string folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(folder);
        string temporary = Path.Combine(folder, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            image.SaveAsPng(temporary);
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
