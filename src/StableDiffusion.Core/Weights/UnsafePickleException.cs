using StableDiffusion.Models;

namespace StableDiffusion.Weights;

/// <summary>
/// A PyTorch checkpoint's pickle names a Python global outside the few that describe tensors (<c>posix.system</c>,
/// <c>builtins.eval</c>, a class of the training code, ...). Python's <c>torch.load</c> would import and call it; this SDK
/// never imports, calls or instantiates anything a file names, and refuses the file instead. Nothing in it has run.
/// </summary>
/// <remarks>
/// The message names the file, the global and where the pickle names it. A file you trust can be converted to
/// safetensors once in Python, where its pickle does run
/// (<c>safetensors.torch.save_file(torch.load(path, weights_only=False)["state_dict"], "model.safetensors")</c>), and loaded
/// from there.
/// </remarks>
public sealed class UnsafePickleException : ModelLoadException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What was refused, where, and what to do.</param>
    /// <param name="path">The checkpoint file.</param>
    /// <param name="globalName">The refused global, as <c>module.name</c>.</param>
    public UnsafePickleException(string message, string path, string globalName) : base(message, path)
    {
        GlobalName = globalName;
    }

    /// <summary>The refused global, as <c>module.name</c> (for example <c>posix.system</c>).</summary>
    public string GlobalName { get; }
}
