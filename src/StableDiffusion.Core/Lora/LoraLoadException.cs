namespace StableDiffusion.Lora;

/// <summary>
/// A LoRA file cannot be applied to the pipeline's model: it is not a LoRA file the SDK reads, it was made for another
/// architecture (SDXL, SD 2.x), or some of its keys match no layer of the model. Nothing is applied when it is thrown.
/// </summary>
public sealed class LoraLoadException : StableDiffusionException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What was wrong and what to do.</param>
    /// <param name="filePath">The LoRA file.</param>
    /// <param name="unmatchedKeys">The file's keys that match no layer of the model, if that is the problem.</param>
    /// <param name="innerException">The cause, if any.</param>
    public LoraLoadException(string message, string filePath, IReadOnlyList<string>? unmatchedKeys = null, Exception? innerException = null)
        : base(message, innerException)
    {
        FilePath = filePath;
        UnmatchedKeys = unmatchedKeys ?? [];
    }

    /// <summary>The LoRA file.</summary>
    public string FilePath { get; }

    /// <summary>The file's keys that match no layer of the model (empty when the problem is another one).</summary>
    public IReadOnlyList<string> UnmatchedKeys { get; }
}
