using StableDiffusion.Models;

namespace StableDiffusion.Weights.Torch;

/// <summary>The wording of checkpoint errors, in one place: each names the file, the problem and what to do.</summary>
internal static class CheckpointErrors
{
    /// <summary>The advice every refusal ends with.</summary>
    public const string UseSafetensors =
        "Use the model's .safetensors file instead, or convert this one once in Python where you trust it (safetensors.torch.save_file)";

    /// <summary>The file breaks the format: truncated, damaged, or built to attack a reader.</summary>
    public static ModelLoadException Damaged(string path, string detail, Exception? innerException = null)
    {
        string message = $"'{path}' is not a readable PyTorch checkpoint: {detail}. The file is truncated, damaged or not a torch.save file; " +
            $"download it again, or {Lowercase(UseSafetensors)}.";
        return innerException is null ? new ModelLoadException(message, path) : new ModelLoadException(message, path, innerException);
    }

    /// <summary>A well-formed file in a form this reader does not take.</summary>
    public static ModelLoadException Unsupported(string path, string detail) =>
        new($"'{path}' cannot be loaded: {detail}. {UseSafetensors}.", path);

    /// <summary>A global outside the allow-list: the file asks for code to be imported or run.</summary>
    public static UnsafePickleException UnsafeGlobal(string path, string globalName, string what, long offset) =>
        new($"'{path}' was refused: its pickle {what} the Python global '{globalName}' (at byte {offset} of data.pkl). " +
            "Only PyTorch's tensor records are read from pickles, and nothing a file names is ever imported, called or " +
            $"instantiated, so nothing in the file has run. {UseSafetensors}.", path, globalName);

    private static string Lowercase(string sentence) => char.ToLowerInvariant(sentence[0]) + sentence[1..];
}
