namespace StableDiffusion.ExecutionProviders;

/// <summary>An execution provider is not available in the installed ONNX Runtime native package, or failed to start.</summary>
public sealed class ExecutionProviderException : StableDiffusionException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What failed and what to do.</param>
    public ExecutionProviderException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with the underlying error.</summary>
    /// <param name="message">What failed and what to do.</param>
    /// <param name="innerException">The underlying ONNX Runtime error.</param>
    public ExecutionProviderException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
