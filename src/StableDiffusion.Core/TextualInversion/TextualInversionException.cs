using StableDiffusion.Models;

namespace StableDiffusion.TextualInversion;

/// <summary>
/// A textual inversion embedding cannot be used: the file holds no embedding, its vectors do not have the text encoder's
/// width, or its token is already in the vocabulary. The message says which, and what to do.
/// </summary>
public sealed class TextualInversionException : ModelLoadException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong, where, and what to do.</param>
    /// <param name="path">The embedding file.</param>
    public TextualInversionException(string message, string? path = null) : base(message, path)
    {
    }

    /// <summary>Creates the exception with the underlying error.</summary>
    /// <param name="message">What is wrong, where, and what to do.</param>
    /// <param name="path">The embedding file.</param>
    /// <param name="innerException">The underlying error.</param>
    public TextualInversionException(string message, string? path, Exception? innerException) : base(message, path, innerException)
    {
    }
}
