namespace StableDiffusion.Weights.Torch;

/// <summary>
/// Bounds on everything a checkpoint declares, so a hostile or damaged file fails at once with a clear message instead of
/// hanging or allocating gigabytes. Each is orders of magnitude above what real checkpoints need: a Stable Diffusion 1.x
/// <c>.ckpt</c> holds a few thousand tensors (as many zip entries), about a hundred pickle bytes and a dozen pickle values
/// each, nested a few levels deep.
/// </summary>
internal static class CheckpointLimits
{
    /// <summary>The largest <c>data.pkl</c> read (it holds only the structure; tensor bytes live in their own entries).</summary>
    public const int MaxPickleBytes = 64 * 1024 * 1024;

    /// <summary>The most entries in the zip's central directory.</summary>
    public const int MaxZipEntries = 200_000;

    /// <summary>The longest zip entry name, in bytes.</summary>
    public const int MaxEntryNameBytes = 4096;

    /// <summary>The most values the pickle may create (strings, numbers, containers, tensors).</summary>
    public const int MaxPickleObjects = 4_000_000;

    /// <summary>The most values on the pickle machine's stack at once.</summary>
    public const int MaxStackDepth = 1_000_000;

    /// <summary>The most open MARKs at once.</summary>
    public const int MaxMarkDepth = 10_000;

    /// <summary>The most memo slots.</summary>
    public const int MaxMemoEntries = 2_000_000;

    /// <summary>The longest string or byte string, in bytes.</summary>
    public const int MaxStringBytes = 16 * 1024 * 1024;

    /// <summary>The longest module or attribute name of a global, in bytes.</summary>
    public const int MaxGlobalNameBytes = 1024;

    /// <summary>The largest integer (LONG1/LONG4), in bytes.</summary>
    public const int MaxIntegerBytes = 1024;

    /// <summary>The most dimensions of a tensor.</summary>
    public const int MaxTensorRank = 64;

    /// <summary>How deep containers may nest below the root.</summary>
    public const int MaxNestingDepth = 100;

    /// <summary>The most values the pickled object may flatten to (a container shared by two parents counts twice).</summary>
    public const int MaxFlattenedValues = 1_000_000;

    /// <summary>Deflate's largest possible expansion (1032:1); a compressed entry declaring more is a zip bomb.</summary>
    public const int MaxDeflateRatio = 1032;
}
