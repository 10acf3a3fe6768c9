namespace StableDiffusion.TextualInversion;

/// <summary>A textual inversion: a token and the vectors it stands for in the text encoder's token embedding.</summary>
/// <param name="Token">The token written in prompts.</param>
/// <param name="Width">The width of each vector (the text encoder's hidden size).</param>
/// <param name="Vectors">The vectors, [count, width] row-major, as float32.</param>
/// <param name="Path">The file it was read from.</param>
/// <param name="ShortHash">The first 12 hex digits of the file's SHA-256, as web UIs name an embedding in "TI hashes".</param>
internal sealed record TextualInversionEmbedding(string Token, int Width, float[] Vectors, string Path, string ShortHash)
{
    /// <summary>The number of vectors.</summary>
    public int Count => Vectors.Length / Width;

    /// <summary>
    /// The tokenizer's tokens, one per vector: the token, then <c>token_1</c>, <c>token_2</c>, ... as diffusers names
    /// the vectors of a token of several.
    /// </summary>
    public IReadOnlyList<string> Tokens => [Token, .. Enumerable.Range(1, Count - 1).Select(i => $"{Token}_{i}")];
}
