namespace StableDiffusion.Models;

/// <summary>
/// A model folder or one of its files cannot be used: a component is missing, a file is corrupt, a graph has unexpected
/// inputs or element types, or a configuration file is malformed. The message names the file and what was expected.
/// </summary>
/// <remarks>Derived types name failures a caller may want to tell apart, such as <see cref="Weights.UnsafePickleException"/>
/// and <see cref="Weights.SafetensorsFormatException"/>.</remarks>
public class ModelLoadException : StableDiffusionException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong, where, and what to do.</param>
    /// <param name="path">The file or folder at fault, if known.</param>
    public ModelLoadException(string message, string? path = null) : base(message)
    {
        Path = path;
    }

    /// <summary>Creates the exception with the underlying error.</summary>
    /// <param name="message">What is wrong, where, and what to do.</param>
    /// <param name="path">The file or folder at fault, if known.</param>
    /// <param name="innerException">The underlying error, if any.</param>
    public ModelLoadException(string message, string? path, Exception? innerException) : base(message, innerException)
    {
        Path = path;
    }

    /// <summary>The file or folder at fault, if known.</summary>
    public string? Path { get; }
}
