namespace StableDiffusion.Models;

/// <summary>
/// A single weights file is not a Stable Diffusion 1.x checkpoint this SDK can load as a whole model: an SDXL or SD 2.x
/// checkpoint, a LoRA, a VAE alone, one component of a diffusers folder, or no model it recognizes. The message names the
/// file, says what it looks like and what to do with it.
/// </summary>
public sealed class UnsupportedCheckpointException : ModelLoadException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="kind">What the file looks like.</param>
    /// <param name="message">What the file is, and what to do.</param>
    /// <param name="path">The file.</param>
    public UnsupportedCheckpointException(CheckpointKind kind, string message, string path) : base(message, path)
    {
        Kind = kind;
    }

    /// <summary>What the file looks like.</summary>
    public CheckpointKind Kind { get; }
}
