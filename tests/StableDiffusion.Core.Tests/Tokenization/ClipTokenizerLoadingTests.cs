using StableDiffusion.Testing;
using StableDiffusion.Tokenization;
using Xunit;

namespace StableDiffusion.Core.Tests.Tokenization;

[Trait("Area", "Tokenizer")]
public sealed class ClipTokenizerLoadingTests
{
    // A vocabulary of our own, in the byte-level alphabet: a, b, c alone and as word ends, "ab" by two merges.
    private const string MiniVocabulary = """
        {"a": 0, "b": 1, "c": 2, "a</w>": 3, "b</w>": 4, "c</w>": 5, "ab": 6, "ab</w>": 7, "<|startoftext|>": 8, "<|endoftext|>": 9}
        """;

    private const string MiniMerges = "#version: 0.2\na b\na b</w>\n";

    [Fact]
    public void Sd15Tokenizer_HasTheSd15SpecialTokensAndLength()
    {
        Fixtures.Require();

        foreach (ClipTokenizer tokenizer in new[] { TokenizerFixtures.FromTokenizerJson, TokenizerFixtures.FromVocabAndMerges })
        {
            Assert.Equal(77, tokenizer.ModelMaxLength);
            Assert.Equal(49406, tokenizer.BosTokenId);
            Assert.Equal(49407, tokenizer.EosTokenId);
            Assert.Equal(49407, tokenizer.PadTokenId);
            Assert.Equal(49408, tokenizer.VocabularySize);
        }
    }

    [Fact]
    public void VocabAndMerges_AndTokenizerJson_GiveTheSameIds()
    {
        Fixtures.Require();

        foreach (string text in ClipTokenizerEdgeCaseTests.Prompts.Select(row => row.Data.Item2))
        {
            Assert.Equal(TokenizerFixtures.FromTokenizerJson.Encode(text).UntruncatedIds.ToArray(), TokenizerFixtures.FromVocabAndMerges.Encode(text).UntruncatedIds.ToArray());
        }
    }

    [Fact]
    public void OriginalSd15Configuration_MatchesSpecialTokensAsTransformersRegistersThem()
    {
        // The SD 1.5 repositories' tokenizer_config.json and special_tokens_map.json give bos, eos and unk as AddedToken
        // objects with "normalized": true and pad as a plain string. transformers registers them in the order bos, eos, unk,
        // pad, the last one setting a shared token's flags: <|startoftext|> is matched in the normalized (lower-cased) text,
        // <|endoftext|> in the raw text. So start-token text in any case is the start token, while upper-case end-token text is
        // BPE'd like any text. transformers 5.17 reports exactly these flags for this configuration and gives these ids.
        Fixtures.Require();
        using var folder = new TemporaryFolder();
        File.Copy(Path.Combine(TokenizerFixtures.VocabAndMergesFolder, "vocab.json"), folder.PathOf("vocab.json"));
        File.Copy(Path.Combine(TokenizerFixtures.VocabAndMergesFolder, "merges.txt"), folder.PathOf("merges.txt"));
        const string Normalized = """{"__type": "AddedToken", "content": "TOKEN", "lstrip": false, "normalized": true, "rstrip": false, "single_word": false}""";
        string bos = Normalized.Replace("TOKEN", "<|startoftext|>", StringComparison.Ordinal);
        string eos = Normalized.Replace("TOKEN", "<|endoftext|>", StringComparison.Ordinal);
        folder.Write("tokenizer_config.json", $$"""{"bos_token": {{bos}}, "eos_token": {{eos}}, "unk_token": {{eos}}, "pad_token": "<|endoftext|>", "model_max_length": 77, "do_lower_case": true}""");
        folder.Write("special_tokens_map.json", $$"""{"bos_token": {{bos}}, "eos_token": {{eos}}, "unk_token": {{eos}}, "pad_token": "<|endoftext|>"}""");

        ClipTokenizer tokenizer = ClipTokenizer.FromFolder(folder.Path);

        Assert.Equal([49406, 49406, 3306, 49407], tokenizer.Encode("<|STARTOFTEXT|>hello").UntruncatedIds.ToArray());
        Assert.Equal([49406, 320, 49406, 321, 49407], tokenizer.Encode("a <|StartOfText|> b").UntruncatedIds.ToArray());
        Assert.Equal([49406, 27, 347, 40786, 4160, 91, 285, 7067, 49407], tokenizer.Encode("<|ENDOFTEXT|> upper").UntruncatedIds.ToArray());
        foreach (string text in ClipTokenizerEdgeCaseTests.Prompts.Select(row => row.Data.Item2))
        {
            Assert.Equal(TokenizerFixtures.FromTokenizerJson.Encode(text).UntruncatedIds.ToArray(), tokenizer.Encode(text).UntruncatedIds.ToArray());
        }
    }

    [Fact]
    public void FolderWithoutConfiguration_UsesClipDefaults()
    {
        using var folder = new TemporaryFolder();
        folder.Write("vocab.json", MiniVocabulary);
        folder.Write("merges.txt", MiniMerges);

        ClipTokenizer tokenizer = ClipTokenizer.FromFolder(folder.Path);

        Assert.Equal((77, 8, 9, 9, 10), (tokenizer.ModelMaxLength, tokenizer.BosTokenId, tokenizer.EosTokenId, tokenizer.PadTokenId, tokenizer.VocabularySize));

        // "ab": a + b</w>, merged by "a b</w>"; "ba": b + a</w>, no merge; "c": c</w>; "AB" is lower-cased first.
        Assert.Equal([8, 7, 1, 3, 5, 7, 9], tokenizer.Encode("ab ba c AB").UntruncatedIds.ToArray());
        Assert.Equal("ab ba c ab", tokenizer.Decode(tokenizer.Encode("ab ba c AB").UntruncatedIds.Span, skipSpecialTokens: true));
    }

    [Fact]
    public void ModelMaxLength_ComesFromTheConfiguration()
    {
        using var folder = new TemporaryFolder();
        folder.Write("vocab.json", MiniVocabulary);
        folder.Write("merges.txt", MiniMerges);
        folder.Write("tokenizer_config.json", """{"model_max_length": 5, "pad_token": "<|startoftext|>"}""");

        ClipTokenizer tokenizer = ClipTokenizer.FromFolder(folder.Path);
        ClipEncoding encoding = tokenizer.Encode("a b c ab");

        Assert.Equal([8, 3, 4, 5, 9], encoding.InputIds.ToArray());
        Assert.Equal([8, 3, 4, 5, 7, 9], encoding.UntruncatedIds.ToArray());
        Assert.Equal(1, encoding.DroppedTokenCount);
        Assert.Equal("ab", encoding.DroppedText);
        Assert.Equal([8, 3, 9, 8, 8], tokenizer.Encode("a").InputIds.ToArray());
    }

    public static TheoryData<string, string, string, string> BrokenFolders => new()
    {
        // name, file to write, its content, what the message must say
        { "empty", string.Empty, string.Empty, "no tokenizer.json and no vocab.json and merges.txt" },
        { "vocab-only", "vocab.json", MiniVocabulary, "no tokenizer.json and no merges.txt" },
        { "vocab-not-json", "vocab.json", "{\"a\": 0,", "vocab.json: is not valid JSON" },
        { "vocab-not-object", "vocab.json", "[1, 2]", "vocab.json: the vocabulary is a JSON Array, not an object" },
        { "vocab-bad-id", "vocab.json", "{\"a\": \"zero\"}", "maps 'a' to \"zero\", not to a non-negative integer id" },
        { "vocab-shared-id", "vocab.json", MiniVocabulary.Replace("\"c\": 2", "\"c\": 1", StringComparison.Ordinal), "gives id 1 to both 'b' and 'c'" },
        { "merges-three-parts", "merges.txt", "#version: 0.2\na b\na b c\n", "merges.txt: line 3: 'a b c' is not a merge of two tokens" },
        { "merges-foreign-token", "merges.txt", "#version: 0.2\na c\n", "merge 1 'a c' needs the token 'ac', which the vocabulary does not have" },
        { "merges-duplicate", "merges.txt", "#version: 0.2\na b\na b\n", "merge 2 'a b' is listed twice" },
        { "config-not-json", "tokenizer_config.json", "{ bos_token: 1 }", "tokenizer_config.json: is not valid JSON" },
        { "config-unknown-special", "tokenizer_config.json", "{\"bos_token\": \"<|start|>\"}", "bos_token '<|start|>' is neither in vocab.json nor an added token" },
        { "config-null-pad", "tokenizer_config.json", "{\"pad_token\": null}", "pad_token is null; expected a token string" },
        { "config-huge-length", "tokenizer_config.json", "{\"model_max_length\": 1000000000000000019884624838656}", "model_max_length is 1000000000000000019884624838656" },
        { "map-unknown-special", "special_tokens_map.json", "{\"eos_token\": {\"content\": \"</s>\"}}", "special_tokens_map.json: eos_token '</s>' is neither" },
    };

    [Theory]
    [MemberData(nameof(BrokenFolders))]
    public void BrokenFolder_IsReportedWithTheFileAndTheProblem(string name, string file, string content, string message)
    {
        using var folder = new TemporaryFolder();
        if (name != "empty")
        {
            folder.Write("vocab.json", MiniVocabulary);
            if (name != "vocab-only")
            {
                folder.Write("merges.txt", MiniMerges);
            }

            folder.Write(file, content);
        }

        TokenizerLoadException error = Assert.Throws<TokenizerLoadException>(() => ClipTokenizer.FromFolder(folder.Path));

        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.NotNull(error.FilePath);
        Assert.StartsWith(folder.Path, error.FilePath, StringComparison.Ordinal);
    }

    public static TheoryData<string, string> BrokenTokenizerJson => new()
    {
        { """{"model": {"type": "WordPiece", "vocab": {}}}""", "model type is 'WordPiece'" },
        { """{"model": {"type": "BPE", "vocab": {"a": 0}}}""", "model.merges is missing" },
        { """{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"], "a"]}}""", "model.merges[1]: 'a' is not a merge" },
        {
            """{"model": {"type": "BPE", "vocab": {"a": 0, "<|endoftext|>": 1, "<|startoftext|>": 2}, "merges": []}, "added_tokens": [{"id": 5, "content": "<|endoftext|>", "special": true}]}""",
            "the added token '<|endoftext|>' has id 5, but the vocabulary gives it id 1"
        },
        {
            """{"model": {"type": "BPE", "vocab": {"a": 0, "<|endoftext|>": 1, "<|startoftext|>": 2}, "merges": []}, "added_tokens": [{"id": 0, "content": "<x>", "lstrip": true}]}""",
            "the added token '<x>' sets lstrip"
        },
    };

    [Theory]
    [MemberData(nameof(BrokenTokenizerJson))]
    public void BrokenTokenizerJson_IsReported(string json, string message)
    {
        using var folder = new TemporaryFolder();
        folder.Write("tokenizer.json", json);

        TokenizerLoadException error = Assert.Throws<TokenizerLoadException>(() => ClipTokenizer.FromFolder(folder.Path));

        Assert.Contains("tokenizer.json", error.Message, StringComparison.Ordinal);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnreadableMerges_IsReportedWithTheFile()
    {
        using var folder = new TemporaryFolder();
        folder.Write("vocab.json", MiniVocabulary);
        folder.Write("merges.txt", MiniMerges);
        string merges = folder.PathOf("merges.txt");
        Assert.SkipUnless(MakeUnreadable(merges), "No way to make a file unreadable to this process here.");

        TokenizerLoadException error = Assert.Throws<TokenizerLoadException>(() => ClipTokenizer.FromFolder(folder.Path));

        Assert.Equal(merges, error.FilePath);
        Assert.Contains("could not be read", error.Message, StringComparison.Ordinal);
        Assert.IsType<UnauthorizedAccessException>(error.InnerException);
    }

    [Fact]
    public void MissingFolder_IsReported()
    {
        string missing = Path.Combine(Path.GetTempPath(), $"no-such-tokenizer-{Guid.NewGuid():N}");

        TokenizerLoadException error = Assert.Throws<TokenizerLoadException>(() => ClipTokenizer.FromFolder(missing));

        Assert.Equal(missing, error.FilePath);
        Assert.Contains("does not exist", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EmptyFolderArgument_IsRejected()
    {
        Assert.Throws<ArgumentException>(() => ClipTokenizer.FromFolder(string.Empty));
    }

    /// <summary>
    /// Makes <paramref name="path"/> unreadable: chmod 000, or, where that does not stop this process (root reads any file),
    /// replaces it with a link to a write-only sysfs attribute, which the kernel refuses to open for reading even to root.
    /// </summary>
    private static bool MakeUnreadable(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            return false;
        }

        File.SetUnixFileMode(path, UnixFileMode.None);
        if (!CanRead(path))
        {
            return true;
        }

        const string WriteOnly = "/sys/bus/platform/uevent";
        if (!File.Exists(WriteOnly) || CanRead(WriteOnly))
        {
            return false;
        }

        File.Delete(path);
        File.CreateSymbolicLink(path, WriteOnly);
        return true;
    }

    private static bool CanRead(string path)
    {
        try
        {
            File.OpenRead(path).Dispose();
            return true;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    private sealed class TemporaryFolder : IDisposable
    {
        public TemporaryFolder()
        {
            Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"clip-tokenizer-test-{Guid.NewGuid():N}");
            Directory.CreateDirectory(Path);
        }

        public string Path { get; }

        public string PathOf(string file) => System.IO.Path.Combine(Path, file);

        public void Write(string file, string content) => File.WriteAllText(PathOf(file), content);

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
