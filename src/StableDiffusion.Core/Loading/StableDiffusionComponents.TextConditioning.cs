using StableDiffusion.Lora;
using StableDiffusion.Models;
using StableDiffusion.Onnx;
using StableDiffusion.TextualInversion;
using StableDiffusion.Tokenization;

namespace StableDiffusion.Loading;

/// <summary>
/// The text side's changes after loading: the clip skip outputs, textual inversion tokens and LoRA-merged weights need an
/// edited text encoder graph (and, for tokens, a tokenizer that knows them); only the text encoder's session is rebuilt,
/// always by <see cref="ReplaceTextEncoder"/>, so that each change keeps the others.
/// </summary>
internal sealed partial class StableDiffusionComponents
{
    private readonly ClipTokenizer _baseTokenizer;
    private readonly List<TextualInversionEmbedding> _embeddings = [];
    private bool _clipSkipOutputs;
    private IReadOnlyList<LoraContribution> _textEncoderLora = [];

    /// <summary>
    /// Held while a prompt is encoded and while the text encoder is replaced, so that no generation reads a text encoder
    /// (or a tokenizer that does not match it) while it is swapped and disposed.
    /// </summary>
    public object TextLock { get; } = new();

    /// <summary>The textual inversion tokens loaded, in order.</summary>
    public IReadOnlyList<string> TextualInversionTokens
    {
        get
        {
            lock (TextLock)
            {
                return [.. _embeddings.Select(e => e.Token)];
            }
        }
    }

    /// <summary>The textual inversions loaded: each token with its file's short hash, as web UIs record them.</summary>
    public IReadOnlyDictionary<string, string> TextualInversionHashes
    {
        get
        {
            lock (TextLock)
            {
                return _embeddings.ToDictionary(e => e.Token, e => e.ShortHash, StringComparer.Ordinal);
            }
        }
    }

    /// <summary>Makes sure the text encoder answers every clip skip (an edited graph is loaded once, on first use).</summary>
    /// <remarks>Call with <see cref="TextLock"/> held.</remarks>
    public void RequireClipSkipOutputs()
    {
        if (!_clipSkipOutputs && TextEncoder.MaxClipSkip == 0)
        {
            _clipSkipOutputs = true;
            ReplaceTextEncoder();
        }
    }

    /// <summary>Adds a textual inversion's tokens to the tokenizer and its vectors to the text encoder.</summary>
    /// <exception cref="TextualInversionException">The token is taken, or the vectors do not have the text encoder's width.</exception>
    public void AddTextualInversion(TextualInversionEmbedding embedding)
    {
        lock (TextLock)
        {
            int? width = TextEncoder.HiddenSize;
            if (width is int hidden && embedding.Width != hidden)
            {
                throw new TextualInversionException(
                    $"The embedding '{embedding.Token}' in '{embedding.Path}' has vectors of width {embedding.Width}, but this model's text encoder takes {hidden} " +
                    "(768 for SD 1.x, 1024 for SD 2.x): the embedding was trained for another model.", embedding.Path);
            }

            foreach (string token in embedding.Tokens)
            {
                if (Tokenizer.Contains(token))
                {
                    throw new TextualInversionException(
                        $"The token '{token}' of '{embedding.Path}' is already in the tokenizer's vocabulary{(TextualInversionTokens.Contains(token) ? " (a textual inversion loaded before)" : string.Empty)}; " +
                        "pass another token, such as '<my-style>'.", embedding.Path);
                }
            }

            _embeddings.Add(embedding);
            try
            {
                ReplaceTextEncoder();
            }
            catch
            {
                _embeddings.RemoveAt(_embeddings.Count - 1);
                throw;
            }
        }
    }

    /// <summary>Removes every textual inversion (diffusers' <c>unload_textual_inversion</c>).</summary>
    public void RemoveTextualInversions()
    {
        lock (TextLock)
        {
            if (_embeddings.Count > 0)
            {
                _embeddings.Clear();
                ReplaceTextEncoder();
            }
        }
    }

    /// <summary>Rebuilds the text encoder with <paramref name="contributions"/> merged into its weights, keeping the clip skip
    /// outputs and textual inversions; nothing changes when the rebuild fails.</summary>
    private void SetTextEncoderLora(IReadOnlyList<LoraContribution> contributions)
    {
        lock (TextLock)
        {
            IReadOnlyList<LoraContribution> previous = _textEncoderLora;
            _textEncoderLora = contributions;
            try
            {
                ReplaceTextEncoder();
            }
            catch
            {
                _textEncoderLora = previous;
                throw;
            }
        }
    }

    // Loads the text encoder for everything wanted now, in order: LoRA-merged weights (matched against the base graph's
    // layers), then the clip skip outputs and the added token rows; with a tokenizer that matches it; then releases the
    // previous one. Only the text encoder's session is rebuilt, from its base graph whatever the model was loaded from.
    private void ReplaceTextEncoder()
    {
        ClipTokenizer tokenizer = _baseTokenizer;
        var rows = new List<float>();
        foreach (TextualInversionEmbedding embedding in _embeddings)
        {
            tokenizer = tokenizer.WithAddedTokens(embedding.Tokens);
            rows.AddRange(embedding.Vectors);
        }

        AddedTokenEmbeddings? added = _embeddings.Count == 0 ? null : new AddedTokenEmbeddings(_baseTokenizer.NextId, [.. rows]);
        BuiltGraph graph = GraphSource(ModelComponents.TextEncoder);
        if (_textEncoderLora.Count > 0)
        {
            graph = LoraTargetsByComponent()[ModelComponents.TextEncoder].MergedGraph(graph, _textEncoderLora);
        }

        Replace(ModelComponents.TextEncoder, TextEncoder.Rebuilt(graph, _clipSkipOutputs, added));
        Tokenizer = tokenizer;
    }
}
