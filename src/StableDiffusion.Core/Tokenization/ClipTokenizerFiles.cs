using System.Globalization;
using System.Text.Json;

namespace StableDiffusion.Tokenization;

/// <summary>A token matched as a whole before BPE, as Hugging Face's <c>AddedToken</c> (CLIP's start and end tokens).</summary>
/// <param name="Content">The token's text.</param>
/// <param name="Id">Its id.</param>
/// <param name="Special">Whether decoding with <c>skipSpecialTokens</c> drops it.</param>
/// <param name="Normalized">Whether it is matched in the normalized (lower-cased) text rather than the raw text.</param>
internal sealed record AddedToken(string Content, int Id, bool Special, bool Normalized);

/// <summary>
/// What a CLIP tokenizer folder holds, read and cross-checked the way transformers 5 loads a <c>CLIPTokenizer</c>:
/// <c>tokenizer.json</c> when present, else <c>vocab.json</c> + <c>merges.txt</c>; then <c>tokenizer_config.json</c> and
/// <c>special_tokens_map.json</c> for the special tokens and <c>model_max_length</c>.
/// </summary>
internal sealed class ClipTokenizerFiles
{
    public const string TokenizerJson = "tokenizer.json";
    public const string VocabJson = "vocab.json";
    public const string MergesTxt = "merges.txt";
    public const string TokenizerConfigJson = "tokenizer_config.json";
    public const string SpecialTokensMapJson = "special_tokens_map.json";

    // CLIPTokenizer's defaults, used when the configuration files do not name a token.
    private const string DefaultBos = "<|startoftext|>";
    private const string DefaultEos = "<|endoftext|>";

    // Every CLIP text encoder has 77 positions; configurations saved without model_max_length mean this.
    private const int DefaultModelMaxLength = 77;
    private const int LargestModelMaxLength = 1_000_000;

    // transformers registers the named special tokens in this order; a later one sets the flags of a shared content.
    private static readonly string[] SpecialTokenKeys = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];

    private ClipTokenizerFiles(Dictionary<string, int> vocabulary, List<string> merges, List<AddedToken> addedTokens, int bos, int eos, int pad, string unknown, int modelMaxLength)
    {
        Vocabulary = vocabulary;
        Merges = merges;
        AddedTokens = addedTokens;
        BosTokenId = bos;
        EosTokenId = eos;
        PadTokenId = pad;
        UnknownToken = unknown;
        ModelMaxLength = modelMaxLength;
    }

    public Dictionary<string, int> Vocabulary { get; }

    /// <summary>The merges in rank order, each as <c>"left right"</c>.</summary>
    public List<string> Merges { get; }

    public List<AddedToken> AddedTokens { get; }

    public int BosTokenId { get; }

    public int EosTokenId { get; }

    public int PadTokenId { get; }

    public string UnknownToken { get; }

    public int ModelMaxLength { get; }

    public static ClipTokenizerFiles Read(string folder)
    {
        if (!Directory.Exists(folder))
        {
            throw new TokenizerLoadException(folder, "the tokenizer folder does not exist.");
        }

        string tokenizerJson = Path.Combine(folder, TokenizerJson);
        string vocabJson = Path.Combine(folder, VocabJson);
        string mergesTxt = Path.Combine(folder, MergesTxt);
        Dictionary<string, int> vocabulary;
        List<string> merges;
        string vocabularySource;
        string mergesSource;
        var added = new Dictionary<string, AddedToken>(StringComparer.Ordinal);
        if (File.Exists(tokenizerJson))
        {
            (vocabulary, merges) = ReadTokenizerJson(tokenizerJson, added);
            vocabularySource = mergesSource = tokenizerJson;
        }
        else if (File.Exists(vocabJson) && File.Exists(mergesTxt))
        {
            vocabulary = ReadVocabulary(vocabJson);
            merges = ReadMerges(mergesTxt);
            vocabularySource = vocabJson;
            mergesSource = mergesTxt;
        }
        else
        {
            string missing = File.Exists(vocabJson) ? MergesTxt : File.Exists(mergesTxt) ? VocabJson : $"{VocabJson} and {MergesTxt}";
            throw new TokenizerLoadException(folder, $"no {TokenizerJson} and no {missing}: a CLIP tokenizer folder needs {TokenizerJson}, or {VocabJson} with {MergesTxt}.");
        }

        CheckVocabulary(vocabulary, vocabularySource);
        CheckMerges(merges, vocabulary, mergesSource);

        var specialTokens = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        int modelMaxLength = DefaultModelMaxLength;
        string configPath = Path.Combine(folder, TokenizerConfigJson);
        if (File.Exists(configPath))
        {
            using JsonDocument config = ParseJson(configPath);
            JsonElement root = RequireObject(config.RootElement, configPath, "the file");
            ReadAddedTokensDecoder(root, configPath, vocabulary, added);
            CollectSpecialTokens(root, specialTokens);
            if (root.TryGetProperty("model_max_length", out JsonElement maxLength) && maxLength.ValueKind != JsonValueKind.Null)
            {
                modelMaxLength = ReadModelMaxLength(maxLength, configPath);
            }
        }

        string mapPath = Path.Combine(folder, SpecialTokensMapJson);
        if (File.Exists(mapPath))
        {
            using JsonDocument map = ParseJson(mapPath);
            CollectSpecialTokens(RequireObject(map.RootElement, mapPath, "the file"), specialTokens);
        }

        string source = File.Exists(mapPath) ? mapPath : configPath;
        string bos = DefaultBos, eos = DefaultEos, pad = DefaultEos, unknown = DefaultEos;
        foreach (string key in SpecialTokenKeys)
        {
            if (!specialTokens.TryGetValue(key, out JsonElement value))
            {
                continue;
            }

            (string content, bool normalized) = ReadSpecialToken(value, key, source);
            int id = added.TryGetValue(content, out AddedToken? existing) ? existing.Id
                : vocabulary.TryGetValue(content, out int vocabularyId) ? vocabularyId
                : throw new TokenizerLoadException(source, $"{key} '{content}' is neither in {Path.GetFileName(vocabularySource)} nor an added token.");
            added[content] = new AddedToken(content, id, Special: true, normalized);
            switch (key)
            {
                case "bos_token": bos = content; break;
                case "eos_token": eos = content; break;
                case "pad_token": pad = content; break;
                case "unk_token": unknown = content; break;
            }
        }

        foreach (string defaultToken in new[] { bos, eos, pad, unknown }.Distinct())
        {
            if (!added.ContainsKey(defaultToken))
            {
                int id = vocabulary.TryGetValue(defaultToken, out int vocabularyId) ? vocabularyId
                    : throw new TokenizerLoadException(vocabularySource, $"the default CLIP special token '{defaultToken}' is not in the vocabulary, and no {TokenizerConfigJson} names another.");
                added[defaultToken] = new AddedToken(defaultToken, id, Special: true, Normalized: false);
            }
        }

        return new ClipTokenizerFiles(vocabulary, merges, [.. added.Values], added[bos].Id, added[eos].Id, added[pad].Id, unknown, modelMaxLength);
    }

    private static (Dictionary<string, int> Vocabulary, List<string> Merges) ReadTokenizerJson(string path, Dictionary<string, AddedToken> added)
    {
        using JsonDocument document = ParseJson(path);
        JsonElement root = RequireObject(document.RootElement, path, "the file");
        if (!root.TryGetProperty("model", out JsonElement model) || model.ValueKind != JsonValueKind.Object)
        {
            throw new TokenizerLoadException(path, "has no \"model\" object.");
        }

        string? type = model.TryGetProperty("type", out JsonElement typeElement) ? typeElement.GetString() : null;
        if (type is not null && type != "BPE")
        {
            throw new TokenizerLoadException(path, $"model type is '{type}'; a CLIP tokenizer is a BPE model.");
        }

        if (!model.TryGetProperty("vocab", out JsonElement vocab) || vocab.ValueKind != JsonValueKind.Object)
        {
            throw new TokenizerLoadException(path, "model.vocab is missing or not an object of token → id.");
        }

        Dictionary<string, int> vocabulary = ReadVocabularyObject(vocab, path, "model.vocab");
        if (!model.TryGetProperty("merges", out JsonElement mergesElement) || mergesElement.ValueKind != JsonValueKind.Array)
        {
            throw new TokenizerLoadException(path, "model.merges is missing or not an array.");
        }

        var merges = new List<string>(mergesElement.GetArrayLength());
        int index = 0;
        foreach (JsonElement merge in mergesElement.EnumerateArray())
        {
            string? text = merge.ValueKind switch
            {
                JsonValueKind.String => merge.GetString(),
                JsonValueKind.Array when merge.GetArrayLength() == 2 && merge[0].ValueKind == JsonValueKind.String && merge[1].ValueKind == JsonValueKind.String
                    => $"{merge[0].GetString()} {merge[1].GetString()}",
                _ => null,
            };
            merges.Add(CheckMergeShape(text, path, $"model.merges[{index}]"));
            index++;
        }

        if (root.TryGetProperty("added_tokens", out JsonElement addedTokens) && addedTokens.ValueKind == JsonValueKind.Array)
        {
            foreach (JsonElement token in addedTokens.EnumerateArray())
            {
                AddedToken parsed = ReadAddedToken(token, path, "added_tokens", idFromElement: null);
                CheckAddedTokenId(parsed, vocabulary, path);
                added[parsed.Content] = parsed;
            }
        }

        return (vocabulary, merges);
    }

    private static Dictionary<string, int> ReadVocabulary(string path)
    {
        using JsonDocument document = ParseJson(path);
        return ReadVocabularyObject(RequireObject(document.RootElement, path, "the vocabulary"), path, "the vocabulary");
    }

    private static Dictionary<string, int> ReadVocabularyObject(JsonElement vocab, string path, string what)
    {
        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (JsonProperty entry in vocab.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int id) || id < 0)
            {
                throw new TokenizerLoadException(path, $"{what} maps '{entry.Name}' to {entry.Value.GetRawText()}, not to a non-negative integer id.");
            }

            if (!vocabulary.TryAdd(entry.Name, id))
            {
                throw new TokenizerLoadException(path, $"{what} lists '{entry.Name}' twice.");
            }
        }

        if (vocabulary.Count == 0)
        {
            throw new TokenizerLoadException(path, $"{what} is empty.");
        }

        return vocabulary;
    }

    private static List<string> ReadMerges(string path)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TokenizerLoadException(path, $"could not be read: {e.Message}", e);
        }

        var merges = new List<string>(lines.Length);
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i];
            if (line.StartsWith("#version", StringComparison.Ordinal) || line.Length == 0)
            {
                continue;
            }

            merges.Add(CheckMergeShape(line, path, $"line {i + 1}"));
        }

        return merges;
    }

    private static string CheckMergeShape(string? merge, string path, string where)
    {
        int space = merge?.IndexOf(' ', StringComparison.Ordinal) ?? -1;
        if (merge is null || space <= 0 || space == merge.Length - 1 || merge.IndexOf(' ', space + 1) >= 0)
        {
            throw new TokenizerLoadException(path, $"{where}: '{merge}' is not a merge of two tokens separated by one space.");
        }

        return merge;
    }

    private static void CheckVocabulary(Dictionary<string, int> vocabulary, string path)
    {
        var owners = new Dictionary<int, string>(vocabulary.Count);
        foreach ((string token, int id) in vocabulary)
        {
            if (!owners.TryAdd(id, token))
            {
                throw new TokenizerLoadException(path, $"the vocabulary gives id {id} to both '{owners[id]}' and '{token}'.");
            }
        }
    }

    private static void CheckMerges(List<string> merges, Dictionary<string, int> vocabulary, string path)
    {
        var seen = new HashSet<string>(merges.Count, StringComparer.Ordinal);
        for (int rank = 0; rank < merges.Count; rank++)
        {
            string merge = merges[rank];
            int space = merge.IndexOf(' ', StringComparison.Ordinal);
            string left = merge[..space], right = merge[(space + 1)..];
            string? missing = !vocabulary.ContainsKey(left) ? left : !vocabulary.ContainsKey(right) ? right : !vocabulary.ContainsKey(left + right) ? left + right : null;
            if (missing is not null)
            {
                throw new TokenizerLoadException(path, $"merge {rank + 1} '{merge}' needs the token '{missing}', which the vocabulary does not have: the vocabulary and the merges do not belong together.");
            }

            if (!seen.Add(merge))
            {
                throw new TokenizerLoadException(path, $"merge {rank + 1} '{merge}' is listed twice.");
            }
        }
    }

    private static void ReadAddedTokensDecoder(JsonElement config, string path, Dictionary<string, int> vocabulary, Dictionary<string, AddedToken> added)
    {
        if (!config.TryGetProperty("added_tokens_decoder", out JsonElement decoder) || decoder.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        foreach (JsonProperty entry in decoder.EnumerateObject())
        {
            if (!int.TryParse(entry.Name, NumberStyles.None, CultureInfo.InvariantCulture, out int id))
            {
                throw new TokenizerLoadException(path, $"added_tokens_decoder has the key '{entry.Name}', which is not a token id.");
            }

            AddedToken token = ReadAddedToken(entry.Value, path, $"added_tokens_decoder[\"{entry.Name}\"]", id);
            CheckAddedTokenId(token, vocabulary, path);
            added[token.Content] = token;
        }
    }

    private static AddedToken ReadAddedToken(JsonElement token, string path, string where, int? idFromElement)
    {
        if (token.ValueKind != JsonValueKind.Object || !token.TryGetProperty("content", out JsonElement content) || content.ValueKind != JsonValueKind.String
            || string.IsNullOrEmpty(content.GetString()))
        {
            throw new TokenizerLoadException(path, $"{where}: an added token needs a non-empty \"content\".");
        }

        string text = content.GetString()!;
        int id = idFromElement ?? (token.TryGetProperty("id", out JsonElement idElement) && idElement.TryGetInt32(out int parsed) && parsed >= 0
            ? parsed
            : throw new TokenizerLoadException(path, $"{where}: the added token '{text}' has no valid \"id\"."));
        foreach (string option in new[] { "lstrip", "rstrip", "single_word" })
        {
            if (token.TryGetProperty(option, out JsonElement flag) && flag.ValueKind == JsonValueKind.True)
            {
                throw new TokenizerLoadException(path, $"{where}: the added token '{text}' sets {option}, which CLIP tokenizers do not use and this tokenizer does not support.");
            }
        }

        bool special = token.TryGetProperty("special", out JsonElement specialElement) && specialElement.ValueKind == JsonValueKind.True;
        bool normalized = token.TryGetProperty("normalized", out JsonElement normalizedElement) ? normalizedElement.ValueKind == JsonValueKind.True : !special;
        return new AddedToken(text, id, special, normalized);
    }

    private static void CheckAddedTokenId(AddedToken token, Dictionary<string, int> vocabulary, string path)
    {
        if (vocabulary.TryGetValue(token.Content, out int id) && id != token.Id)
        {
            throw new TokenizerLoadException(path, $"the added token '{token.Content}' has id {token.Id}, but the vocabulary gives it id {id}.");
        }

        if (!vocabulary.ContainsKey(token.Content) && vocabulary.ContainsValue(token.Id))
        {
            throw new TokenizerLoadException(path, $"the added token '{token.Content}' has id {token.Id}, which the vocabulary already gives to another token.");
        }
    }

    private static void CollectSpecialTokens(JsonElement root, Dictionary<string, JsonElement> specialTokens)
    {
        foreach (string key in SpecialTokenKeys)
        {
            if (root.TryGetProperty(key, out JsonElement value))
            {
                specialTokens[key] = value.Clone();
            }
        }
    }

    private static (string Content, bool Normalized) ReadSpecialToken(JsonElement value, string key, string path)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.String when !string.IsNullOrEmpty(value.GetString()):
                // transformers registers a plain string as a special token matched in the raw text.
                return (value.GetString()!, false);
            case JsonValueKind.Object when value.TryGetProperty("content", out JsonElement content) && content.ValueKind == JsonValueKind.String
                                           && !string.IsNullOrEmpty(content.GetString()):
                bool normalized = !value.TryGetProperty("normalized", out JsonElement flag) || flag.ValueKind == JsonValueKind.True;
                return (content.GetString()!, normalized);
            default:
                throw new TokenizerLoadException(path, $"{key} is {value.GetRawText()}; expected a token string or an object with \"content\". CLIP needs start, end and padding tokens.");
        }
    }

    private static int ReadModelMaxLength(JsonElement value, string path)
    {
        if (value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out double length) && length == Math.Floor(length)
            && length >= 2 && length <= LargestModelMaxLength)
        {
            return (int)length;
        }

        throw new TokenizerLoadException(path, $"model_max_length is {value.GetRawText()}; a CLIP text encoder takes a fixed number of tokens (77 for Stable Diffusion 1.x), between 2 and {LargestModelMaxLength}.");
    }

    private static JsonDocument ParseJson(string path)
    {
        try
        {
            using FileStream stream = File.OpenRead(path);
            return JsonDocument.Parse(stream, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException e)
        {
            throw new TokenizerLoadException(path, $"is not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}): {e.Message}", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TokenizerLoadException(path, $"could not be read: {e.Message}", e);
        }
    }

    private static JsonElement RequireObject(JsonElement element, string path, string what) =>
        element.ValueKind == JsonValueKind.Object ? element : throw new TokenizerLoadException(path, $"{what} is a JSON {element.ValueKind}, not an object.");
}
