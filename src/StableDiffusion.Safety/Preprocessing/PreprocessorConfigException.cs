namespace StableDiffusion.Safety;

/// <summary>
/// A <c>preprocessor_config.json</c> that cannot configure a CLIP image processor: malformed JSON, a key of the wrong type,
/// or values that contradict each other. The message names the file and the key.
/// </summary>
public sealed class PreprocessorConfigException : StableDiffusionException
{
    /// <summary>Creates the exception with a message naming the problem.</summary>
    /// <param name="message">What is wrong, where, and what to do.</param>
    public PreprocessorConfigException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the underlying error.</summary>
    /// <param name="message">What is wrong, where, and what to do.</param>
    /// <param name="innerException">The underlying error.</param>
    public PreprocessorConfigException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
