namespace StableDiffusion.Safety;

/// <summary>
/// An ONNX graph that is not a usable Stable Diffusion safety checker: it cannot be loaded, its inputs and outputs are
/// not those diffusers exports (<c>clip_input</c>, <c>images</c> in; <c>out_images</c>, <c>has_nsfw_concepts</c> out) nor
/// the verdict alone (<c>clip_input</c> in, <c>has_nsfw_concepts</c> out), or it fails or answers unexpectedly when
/// run. The message names the file and what was expected.
/// </summary>
public sealed class SafetyCheckerModelException : StableDiffusionException
{
    /// <summary>Creates the exception with a message naming the problem.</summary>
    /// <param name="message">What is wrong, where, and what to do.</param>
    public SafetyCheckerModelException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the underlying error.</summary>
    /// <param name="message">What is wrong, where, and what to do.</param>
    /// <param name="innerException">The underlying error.</param>
    public SafetyCheckerModelException(string message, Exception innerException) : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for the graph at <paramref name="modelPath"/>.</summary>
    /// <param name="message">What is wrong, where, and what to do.</param>
    /// <param name="modelPath">The path of the ONNX file, if known.</param>
    /// <param name="innerException">The underlying error, if any.</param>
    public SafetyCheckerModelException(string message, string? modelPath, Exception? innerException = null) : base(message, innerException)
    {
        ModelPath = modelPath;
    }

    /// <summary>The path of the ONNX file, if known.</summary>
    public string? ModelPath { get; }
}
