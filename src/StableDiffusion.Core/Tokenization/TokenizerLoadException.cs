namespace StableDiffusion.Tokenization;

/// <summary>
/// A tokenizer folder could not be loaded: a file is missing or malformed, or the vocabulary, the merges and the special
/// tokens disagree. The message names the file and what is wrong with it.
/// </summary>
public sealed class TokenizerLoadException : StableDiffusionException
{
    /// <summary>Creates the exception with a generic message.</summary>
    public TokenizerLoadException()
        : base("The tokenizer could not be loaded.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What was wrong.</param>
    public TokenizerLoadException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    /// <param name="message">What was wrong.</param>
    /// <param name="innerException">The error that revealed it.</param>
    public TokenizerLoadException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for a file.</summary>
    /// <param name="filePath">The file (or folder) that could not be used.</param>
    /// <param name="problem">What was wrong with it.</param>
    /// <param name="innerException">The error that revealed it, if any.</param>
    public TokenizerLoadException(string filePath, string problem, Exception? innerException = null)
        : base($"{filePath}: {problem}", innerException)
    {
        FilePath = filePath;
    }

    /// <summary>The file (or folder) that could not be used, when one is to blame.</summary>
    public string? FilePath { get; }
}
