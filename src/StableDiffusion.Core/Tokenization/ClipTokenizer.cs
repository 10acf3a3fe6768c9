using Microsoft.ML.Tokenizers;

namespace StableDiffusion.Tokenization;

/// <summary>
/// The CLIP tokenizer of a Stable Diffusion model: the same ids as Hugging Face's <c>CLIPTokenizer</c> (transformers 5,
/// tokenizers backend) for every prompt, padded and truncated for the text encoder as diffusers does.
/// </summary>
/// <remarks>
/// <para>
/// Load it from a model's <c>tokenizer</c> folder with <see cref="FromFolder"/>. A prompt goes through the same steps as in
/// tokenizers: the special tokens' text (<c>&lt;|startoftext|&gt;</c>, <c>&lt;|endoftext|&gt;</c>) is matched first, in the raw
/// prompt; the rest is normalized (NFC, white-space runs to one space, lower case), split by CLIP's pattern, and encoded by
/// byte-level BPE with the <c>&lt;/w&gt;</c> end-of-word marker (Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/>).
/// </para>
/// <para>
/// Prompts must be valid UTF-16: an unpaired surrogate is rejected with an <see cref="ArgumentException"/>, as Hugging
/// Face rejects such text. Instances are immutable and safe to use from several threads at once.
/// </para>
/// </remarks>
public sealed class ClipTokenizer
{
    private const string EndOfWordSuffix = "</w>";

    private readonly BpeTokenizer _bpe;
    private readonly AddedToken[] _rawAddedTokens;
    private readonly AddedToken[] _normalizedAddedTokens;
    private readonly string?[] _idToToken;
    private readonly bool[] _isSpecial;
    private readonly Dictionary<string, int> _vocabulary;

    // Textual inversion tokens of several vectors: the first token's id stands for all of their ids.
    private readonly Dictionary<int, int[]> _expansions = [];

    private ClipTokenizer(ClipTokenizerFiles files)
    {
        _bpe = BpeTokenizer.Create(new BpeOptions(files.Vocabulary)
        {
            Merges = files.Merges,
            PreTokenizer = new ClipPreTokenizer(),
            EndOfWordSuffix = EndOfWordSuffix,
            UnknownToken = files.UnknownToken,
            ByteLevel = true,
        });

        _rawAddedTokens = [.. files.AddedTokens.Where(t => !t.Normalized)];
        _normalizedAddedTokens = [.. files.AddedTokens.Where(t => t.Normalized).Select(t => t with { Content = ClipTextNormalizer.Normalize(t.Content) })];

        int size = Math.Max(files.Vocabulary.Values.Max(), files.AddedTokens.Select(t => t.Id).DefaultIfEmpty(0).Max()) + 1;
        _idToToken = new string?[size];
        _isSpecial = new bool[size];
        foreach ((string token, int id) in files.Vocabulary)
        {
            _idToToken[id] = token;
        }

        foreach (AddedToken token in files.AddedTokens)
        {
            _idToToken[token.Id] = token.Content;
            _isSpecial[token.Id] = token.Special;
        }

        _vocabulary = files.Vocabulary;
        VocabularySize = files.Vocabulary.Count;
        ModelMaxLength = files.ModelMaxLength;
        BosTokenId = files.BosTokenId;
        EosTokenId = files.EosTokenId;
        PadTokenId = files.PadTokenId;
    }

    private ClipTokenizer(ClipTokenizer source, IReadOnlyList<string> tokens, int firstId)
    {
        _bpe = source._bpe;
        _rawAddedTokens = source._rawAddedTokens;
        _vocabulary = source._vocabulary;
        _expansions = new Dictionary<int, int[]>(source._expansions);
        int size = Math.Max(source._idToToken.Length, firstId + tokens.Count);
        _idToToken = [.. source._idToToken, .. new string?[size - source._idToToken.Length]];
        _isSpecial = [.. source._isSpecial, .. new bool[size - source._isSpecial.Length]];
        var added = new List<AddedToken>(source._normalizedAddedTokens);
        for (int i = 0; i < tokens.Count; i++)
        {
            // Added as transformers' add_tokens adds them: not special, matched in the normalized text.
            added.Add(new AddedToken(ClipTextNormalizer.Normalize(tokens[i]), firstId + i, Special: false, Normalized: true));
            _idToToken[firstId + i] = tokens[i];
        }

        _normalizedAddedTokens = [.. added];
        if (tokens.Count > 1)
        {
            _expansions[firstId] = [.. Enumerable.Range(firstId, tokens.Count)];
        }

        VocabularySize = source.VocabularySize;
        ModelMaxLength = source.ModelMaxLength;
        BosTokenId = source.BosTokenId;
        EosTokenId = source.EosTokenId;
        PadTokenId = source.PadTokenId;
    }

    /// <summary>How many ids the text encoder takes (<c>model_max_length</c>; 77 for Stable Diffusion 1.x).</summary>
    public int ModelMaxLength { get; }

    /// <summary>The id of the start token <c>&lt;|startoftext|&gt;</c> (49406 in SD 1.x).</summary>
    public int BosTokenId { get; }

    /// <summary>The id of the end token <c>&lt;|endoftext|&gt;</c> (49407 in SD 1.x).</summary>
    public int EosTokenId { get; }

    /// <summary>The id that fills <see cref="ClipEncoding.InputIds"/> after the end token (49407 in SD 1.x).</summary>
    public int PadTokenId { get; }

    /// <summary>The number of tokens in the vocabulary (<c>vocab_size</c>; 49408 in SD 1.x).</summary>
    public int VocabularySize { get; }

    /// <summary>Loads the tokenizer of a model's <c>tokenizer</c> folder.</summary>
    /// <param name="folder">
    /// A folder with <c>tokenizer.json</c>, or <c>vocab.json</c> and <c>merges.txt</c> (what SD 1.5 ONNX repositories ship),
    /// and optionally <c>tokenizer_config.json</c> and <c>special_tokens_map.json</c>, which name the special tokens and
    /// <c>model_max_length</c>. Without them the CLIP defaults apply (<c>&lt;|startoftext|&gt;</c>, <c>&lt;|endoftext|&gt;</c>
    /// for end, padding and unknown, 77 tokens). When both forms are there, <c>tokenizer.json</c> is read, as transformers does.
    /// </param>
    /// <returns>The tokenizer.</returns>
    /// <exception cref="ArgumentException"><paramref name="folder"/> is null or empty.</exception>
    /// <exception cref="TokenizerLoadException">
    /// A file is missing, unreadable or malformed, or the vocabulary, the merges and the special tokens disagree; the message
    /// names the file.
    /// </exception>
    public static ClipTokenizer FromFolder(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        return new ClipTokenizer(ClipTokenizerFiles.Read(folder));
    }

    /// <summary>
    /// Tokenizes a prompt: <see cref="ClipEncoding.InputIds"/> is what <c>tokenizer(text, padding="max_length",
    /// max_length=model_max_length, truncation=True).input_ids</c> gives, <see cref="ClipEncoding.UntruncatedIds"/> what
    /// <c>tokenizer(text).input_ids</c> gives.
    /// </summary>
    /// <param name="text">The prompt; empty is allowed (a negative prompt often is).</param>
    /// <returns>The ids, and what truncation dropped.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="text"/> holds an unpaired UTF-16 surrogate.</exception>
    /// <exception cref="NotSupportedException">
    /// The process runs with invariant globalization (no ICU) and the prompt holds characters that Unicode normalization
    /// could change, so its tokens could differ from diffusers'.
    /// </exception>
    public ClipEncoding Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        ThrowIfUnpairedSurrogate(text);

        var content = new List<int>(ModelMaxLength);
        AppendContentIds(text, content);

        var untruncated = new int[content.Count + 2];
        untruncated[0] = BosTokenId;
        content.CopyTo(untruncated, 1);
        untruncated[^1] = EosTokenId;

        int kept = Math.Min(content.Count, ModelMaxLength - 2);
        var inputIds = new int[ModelMaxLength];
        inputIds[0] = BosTokenId;
        content.CopyTo(0, inputIds, 1, kept);
        inputIds[kept + 1] = EosTokenId;
        inputIds.AsSpan(kept + 2).Fill(PadTokenId);

        int dropped = content.Count - kept;

        // diffusers decodes untruncated_ids[:, model_max_length - 1 : -1] for its warning.
        string droppedText = dropped > 0 ? Decode(untruncated.AsSpan(ModelMaxLength - 1, dropped)) : string.Empty;
        return new ClipEncoding(inputIds, untruncated, dropped, droppedText);
    }

    /// <summary>The id the next added token gets: one past the largest id of the vocabulary and the added tokens.</summary>
    internal int NextId => _idToToken.Length;

    /// <summary>Whether <paramref name="token"/> is a token of the vocabulary or an added token (diffusers' <c>token in tokenizer.get_vocab()</c>).</summary>
    internal bool Contains(string token) =>
        _vocabulary.ContainsKey(token) || _rawAddedTokens.Any(t => t.Content == token) || _normalizedAddedTokens.Any(t => t.Content == token || _idToToken[t.Id] == token);

    /// <summary>
    /// A tokenizer that also knows <paramref name="tokens"/> (a textual inversion's <c>token</c>, <c>token_1</c>, ...) with
    /// ids from <see cref="NextId"/> on; in prompts the first of them stands for all of them, as diffusers' textual
    /// inversion loader expands it.
    /// </summary>
    internal ClipTokenizer WithAddedTokens(IReadOnlyList<string> tokens) => new(this, tokens, NextId);

    /// <summary>Tokenizes several prompts, each as <see cref="Encode"/> does.</summary>
    /// <param name="texts">The prompts.</param>
    /// <returns>One encoding per prompt, in order.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="texts"/> or one of its prompts is null.</exception>
    /// <exception cref="ArgumentException">A prompt holds an unpaired UTF-16 surrogate.</exception>
    public IReadOnlyList<ClipEncoding> EncodeBatch(IEnumerable<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        return [.. texts.Select(Encode)];
    }

    /// <summary>
    /// Turns ids back into text as transformers' <c>CLIPTokenizer.decode</c> does: byte-level decoding, each end-of-word
    /// marker becomes a space, and the ends are trimmed.
    /// </summary>
    /// <param name="ids">The ids.</param>
    /// <param name="skipSpecialTokens">Whether to leave out the special tokens (start, end, padding).</param>
    /// <returns>The text; lower-cased and with spaces around punctuation, since tokenization does not keep either.</returns>
    /// <exception cref="ArgumentOutOfRangeException">An id is not in the vocabulary.</exception>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false)
    {
        var tokens = new List<string>(ids.Length);
        foreach (int id in ids)
        {
            string token = (uint)id < (uint)_idToToken.Length && _idToToken[id] is { } known
                ? known
                : throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id {id} is not in this tokenizer's vocabulary.");
            if (!skipSpecialTokens || !_isSpecial[id])
            {
                tokens.Add(token);
            }
        }

        string text = ByteLevelText.Decode(tokens).Replace(EndOfWordSuffix, " ", StringComparison.Ordinal);
        return text.Trim(PythonWhiteSpace);
    }

    // Python's str.strip() removes these: Unicode white space plus the four information separators.
    private static readonly char[] PythonWhiteSpace =
    [
        '\t', '\n', '\v', '\f', '\r', '\u001C', '\u001D', '\u001E', '\u001F', ' ', '\u0085', '\u00A0', '\u1680', '\u2000', '\u2001',
        '\u2002', '\u2003', '\u2004', '\u2005', '\u2006', '\u2007', '\u2008', '\u2009', '\u200A', '\u2028', '\u2029', '\u202F', '\u205F', '\u3000',
    ];

    private void AppendContentIds(ReadOnlySpan<char> raw, List<int> ids)
    {
        // Special tokens registered as raw are matched before normalization, as tokenizers' added vocabulary does.
        while (!raw.IsEmpty)
        {
            int at = FindAddedToken(raw, _rawAddedTokens, out AddedToken? token);
            ReadOnlySpan<char> before = token is null ? raw : raw[..at];
            if (!before.IsEmpty)
            {
                AppendNormalizedIds(ClipTextNormalizer.Normalize(before), ids);
            }

            if (token is null)
            {
                return;
            }

            ids.Add(token.Id);
            raw = raw[(at + token.Content.Length)..];
        }
    }

    private void AppendNormalizedIds(ReadOnlySpan<char> normalized, List<int> ids)
    {
        while (!normalized.IsEmpty)
        {
            int at = FindAddedToken(normalized, _normalizedAddedTokens, out AddedToken? token);
            ReadOnlySpan<char> before = token is null ? normalized : normalized[..at];
            if (!before.IsEmpty)
            {
                ids.AddRange(_bpe.EncodeToIds(before, considerPreTokenization: true, considerNormalization: false));
            }

            if (token is null)
            {
                return;
            }

            if (_expansions.TryGetValue(token.Id, out int[]? expansion))
            {
                ids.AddRange(expansion);
            }
            else
            {
                ids.Add(token.Id);
            }

            normalized = normalized[(at + token.Content.Length)..];
        }
    }

    /// <summary>The leftmost occurrence of any of <paramref name="tokens"/> (the longest on a tie), or -1.</summary>
    private static int FindAddedToken(ReadOnlySpan<char> text, AddedToken[] tokens, out AddedToken? found)
    {
        found = null;
        int best = -1;
        foreach (AddedToken token in tokens)
        {
            int at = text.IndexOf(token.Content, StringComparison.Ordinal);
            if (at >= 0 && (best < 0 || at < best || (at == best && token.Content.Length > found!.Content.Length)))
            {
                best = at;
                found = token;
            }
        }

        return best;
    }

    private static void ThrowIfUnpairedSurrogate(string text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(c))
            {
                throw new ArgumentException(
                    $"The prompt holds an unpaired UTF-16 surrogate (U+{(int)c:X4}) at index {i}, which is not text; Hugging Face " +
                    "tokenizers rejects it too. Remove it, or replace it with U+FFFD.",
                    nameof(text));
            }
        }
    }
}
