namespace StableDiffusion.Tokenization;

/// <summary>
/// A prompt tokenized for the CLIP text encoder: what <c>tokenizer(text, padding="max_length", truncation=True)</c> and
/// <c>tokenizer(text)</c> give in transformers, and what truncation dropped.
/// </summary>
/// <param name="InputIds">
/// Exactly <see cref="ClipTokenizer.ModelMaxLength"/> ids: the start token, at most <c>ModelMaxLength - 2</c> content tokens,
/// the end token, then padding. The <c>input_ids</c> the text encoder takes.
/// </param>
/// <param name="UntruncatedIds">All ids: the start token, every content token and the end token, with no padding.</param>
/// <param name="DroppedTokenCount">How many content tokens truncation dropped (0 when the prompt fits).</param>
/// <param name="DroppedText">
/// The dropped tokens decoded, as diffusers logs them when it warns that part of a prompt was truncated; empty when
/// nothing was dropped.
/// </param>
public sealed record ClipEncoding(ReadOnlyMemory<int> InputIds, ReadOnlyMemory<int> UntruncatedIds, int DroppedTokenCount, string DroppedText)
{
    /// <summary>Whether truncation dropped part of the prompt.</summary>
    public bool IsTruncated => DroppedTokenCount > 0;
}
