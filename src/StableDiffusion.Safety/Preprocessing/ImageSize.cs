namespace StableDiffusion.Safety;

/// <summary>A size in pixels, height first as in transformers' size dictionaries.</summary>
/// <param name="Height">The height in pixels.</param>
/// <param name="Width">The width in pixels.</param>
public readonly record struct ImageSize(int Height, int Width)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Height}x{Width} (height x width)";
}
