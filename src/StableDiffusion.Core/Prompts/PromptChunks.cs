using StableDiffusion.Tokenization;

namespace StableDiffusion.Prompts;

/// <summary>The tokens of one weighted prompt, without start and end tokens, and the weight of each.</summary>
/// <param name="Ids">The token ids.</param>
/// <param name="Weights">One weight per id.</param>
internal sealed record WeightedTokens(int[] Ids, float[] Weights);

/// <summary>
/// Long and weighted prompts as diffusers' long-prompt-weighting community pipeline lays them out for the text encoder:
/// each segment of <see cref="PromptAttention.Parse"/> tokenized on its own, the tokens cut into chunks of
/// <c>model_max_length - 2</c> (75), each chunk given its own start and end tokens and encoded as one sequence, and the
/// chunks' hidden states concatenated ([batch, chunks * 77, hidden]); the prompts of one batch (negatives included) get
/// as many chunks as the longest needs.
/// </summary>
internal static class PromptChunks
{
    /// <summary>diffusers' community pipeline's default <c>max_embeddings_multiples</c>: at most 3 chunks (225 tokens).</summary>
    public const int DefaultMaxChunks = 3;

    /// <summary>The tokens and weights of <paramref name="prompt"/>, cut at <paramref name="maxChunks"/> chunks.</summary>
    /// <param name="tokenizer">The tokenizer.</param>
    /// <param name="prompt">The prompt, in the web UI attention syntax.</param>
    /// <param name="maxChunks">The most chunks a prompt may fill.</param>
    /// <param name="truncated">Whether tokens past the last chunk were dropped.</param>
    public static WeightedTokens Tokenize(ClipTokenizer tokenizer, string prompt, int maxChunks, out bool truncated)
    {
        int chunk = ChunkLength(tokenizer);
        int maxTokens = chunk * maxChunks;
        var ids = new List<int>();
        var weights = new List<float>();
        truncated = false;

        // Where the current chunk starts. As in the web UIs, a full chunk stays current until a token or a BREAK follows,
        // so BREAK after exactly 75 tokens adds no empty chunk, while BREAK on an empty chunk pads it whole.
        int chunkStart = 0;
        foreach (PromptSegment segment in PromptAttention.Parse(prompt))
        {
            if (segment.IsBreak)
            {
                int fill = chunkStart + chunk - ids.Count;
                ids.AddRange(Enumerable.Repeat(tokenizer.PadTokenId, fill));
                weights.AddRange(Enumerable.Repeat(1f, fill));
                chunkStart += chunk;
            }
            else
            {
                ReadOnlySpan<int> tokens = tokenizer.Encode(segment.Text).UntruncatedIds.Span[1..^1];
                ids.AddRange(tokens);
                weights.AddRange(Enumerable.Repeat((float)segment.Weight, tokens.Length));
                while (ids.Count - chunkStart > chunk)
                {
                    chunkStart += chunk;
                }
            }

            if (ids.Count > maxTokens)
            {
                truncated = true;
                break;
            }
        }

        int kept = Math.Min(ids.Count, maxTokens);
        return new WeightedTokens([.. ids.Take(kept)], [.. weights.Take(kept)]);
    }

    /// <summary>The number of chunks the longest of <paramref name="prompts"/> needs (at least 1).</summary>
    public static int ChunkCount(ClipTokenizer tokenizer, IEnumerable<WeightedTokens> prompts)
    {
        int chunk = ChunkLength(tokenizer);
        int longest = prompts.Max(p => p.Ids.Length);
        return Math.Max(1, (longest + chunk - 1) / chunk);
    }

    /// <summary>
    /// The text encoder's input for <paramref name="prompts"/> in <paramref name="chunks"/> chunks each: ids
    /// [prompts * chunks, model_max_length] (start token, 75 tokens or padding, end token per chunk), and the weight of
    /// each position, 1 for the start, end and padding.
    /// </summary>
    public static (int[] Ids, float[] Weights) Layout(ClipTokenizer tokenizer, IReadOnlyList<WeightedTokens> prompts, int chunks)
    {
        int length = tokenizer.ModelMaxLength;
        int chunk = ChunkLength(tokenizer);
        var ids = new int[prompts.Count * chunks * length];
        var weights = new float[ids.Length];
        Array.Fill(weights, 1f);
        for (int p = 0; p < prompts.Count; p++)
        {
            WeightedTokens prompt = prompts[p];
            for (int c = 0; c < chunks; c++)
            {
                int row = ((p * chunks) + c) * length;
                ids[row] = tokenizer.BosTokenId;
                ids[row + length - 1] = tokenizer.EosTokenId;
                Span<int> slots = ids.AsSpan(row + 1, chunk);
                slots.Fill(tokenizer.PadTokenId);
                int start = Math.Min(c * chunk, prompt.Ids.Length);
                int count = Math.Min(chunk, prompt.Ids.Length - start);
                prompt.Ids.AsSpan(start, count).CopyTo(slots);
                prompt.Weights.AsSpan(start, count).CopyTo(weights.AsSpan(row + 1, count));
            }
        }

        return (ids, weights);
    }

    /// <summary>
    /// Multiplies each position's hidden state by its weight, then scales the row so that its mean over all positions and
    /// channels is what it was before (the community pipeline's mean restoration, over the whole row of chunks).
    /// </summary>
    /// <param name="hidden">One row's hidden states, [positions, width].</param>
    /// <param name="weights">One weight per position.</param>
    public static void ApplyWeights(Span<float> hidden, ReadOnlySpan<float> weights)
    {
        int width = hidden.Length / weights.Length;
        float before = Mean(hidden);
        for (int i = 0; i < weights.Length; i++)
        {
            System.Numerics.Tensors.TensorPrimitives.Multiply(hidden.Slice(i * width, width), weights[i], hidden.Slice(i * width, width));
        }

        float after = Mean(hidden);
        System.Numerics.Tensors.TensorPrimitives.Multiply(hidden, before / after, hidden);
    }

    // In double, as close as float32 summation gets to the exact mean torch's pairwise float32 sum approximates.
    private static float Mean(ReadOnlySpan<float> values)
    {
        double sum = 0;
        foreach (float v in values)
        {
            sum += v;
        }

        return (float)(sum / values.Length);
    }

    private static int ChunkLength(ClipTokenizer tokenizer) => tokenizer.ModelMaxLength - 2;
}
