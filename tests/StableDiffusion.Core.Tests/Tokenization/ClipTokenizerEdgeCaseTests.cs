using StableDiffusion.Testing;
using StableDiffusion.Tokenization;
using Xunit;

namespace StableDiffusion.Core.Tests.Tokenization;

/// <summary>
/// Prompts beyond the reference. Each expected id list is what transformers 5.17.0 (tokenizers 0.23.2)
/// <c>CLIPTokenizer.from_pretrained(...)(text).input_ids</c> gave for the fixture's tokenizer, and the reason says which step
/// of the tokenizers pipeline (normalizer, split pattern, byte-level BPE, added tokens) decides it.
/// </summary>
[Trait("Area", "Tokenizer")]
public sealed class ClipTokenizerEdgeCaseTests
{
    private const int Bos = 49406;
    private const int Eos = 49407;

    public static TheoryData<string, string, int[]> Prompts => new()
    {
        // Emoji are neither letters nor numbers: each is a [^\s\p{L}\p{N}]+ run, byte-level encoded (🚀 = F0 9F 9A 80).
        { "emoji", "an astronaut \U0001F680 riding a horse \U0001F434", [550, 18376, 13542, 6765, 320, 4558, 33509] },
        // A ZWJ sequence is one run of symbols and joiners (U+200D is Cf): one piece, BPE'd over its 25 bytes.
        { "zwj-family", "\U0001F469\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466 family portrait", [26304, 26304, 48938, 4244, 964, 355, 1315, 5352] },
        // Skin tone, regional indicators and a keycap: ',' ends each symbol run; '1' is a lone \p{N}; FE0F 20E3 a run of marks.
        { "emoji-modifiers", "thumbs up \U0001F44D\U0001F3FD, flag \U0001F1EF\U0001F1F5, keycap 1\uFE0F\u20E3", [17599, 705, 4686, 8514, 267, 4859, 20090, 12127, 267, 2891, 3938, 272, 4603] },
        // CJK ideographs are letters, so the whole run is one word; the fullwidth comma (Po) splits it.
        { "cjk", "\u4E1C\u4EAC\u7684\u591C\u666F\uFF0C\u9713\u8679\u706F", [19759, 250, 21078, 105, 163, 248, 226, 23170, 250, 48132, 363, 171, 120, 490, 165, 250, 241, 164, 247, 117, 163, 223, 363] },
        { "kana", "\u65E5\u672C\u8A9E\u306E\u30C6\u30AD\u30B9\u30C8", [39121, 44353, 34002, 252, 21575, 2429, 228, 47121, 32421, 486] },
        { "hangul", "\uD55C\uAD6D\uC5B4 \uD504\uB86C\uD504\uD2B8", [15197, 250, 31871, 255, 31625, 368, 29450, 34462, 94, 105, 29450, 226, 39820] },
        // Precomposed accents are letters; Zoë is lower-cased before BPE.
        { "accents", "caf\u00E9 na\u00EFve r\u00E9sum\u00E9 Zo\u00EB", [15304, 1097, 35689, 563, 29106, 7054, 4166, 4397, 40520] },
        // NFC composes e + U+0301 into é, so the decomposed spelling gives the composed spelling's ids.
        { "decomposed-accents", "cafe\u0301 nai\u0308ve re\u0301sume\u0301", [15304, 1097, 35689, 563, 29106, 7054, 4166] },
        // NFC leaves ligatures alone (their decomposition is a compatibility one): ﬁ is a letter, byte-encoded EF AC 81.
        { "ligatures", "\uFB01ne \uFB02ower \uFB00 \uFB03", [171, 105, 223, 1422, 171, 105, 224, 2032, 528, 171, 105, 478, 171, 105, 481] },
        // U+200B is Cf, not White_Space: it stays, as a one-character symbol piece between the words.
        { "zero-width-space", "zero\u200Bwidth\u200Bspace", [5848, 9844, 23571, 9844, 2138] },
        // U+00A0, U+202F, U+3000, U+2002, U+2003 are White_Space (Oniguruma's \s): replaced by a space and dropped.
        { "no-break-space", "non\u00A0breaking\u00A0space", [3353, 2755, 2138] },
        { "other-spaces", "narrow\u202Fnbsp ideographic\u3000space en\u2002space em\u2003space", [16652, 6459, 4393, 1909, 78, 4245, 2138, 576, 2138, 2270, 2138] },
        { "line-separators", "line\u2028separator para\u2029sep nel\u0085x", [1148, 6859, 1962, 8976, 10434, 2693, 343] },
        { "only-white-space", "  \u00A0 \u2003 \u3000", [] },
        // Joiners, BOM and word joiner are Cf: kept as symbol pieces.
        { "format-characters", "zwj\u200Dzwnj\u200C bom\uFEFF word joiner\u2060x", [89, 35453, 728, 491, 89, 1186, 329, 728, 490, 19469, 171, 119, 379, 2653, 683, 5155, 13503, 343] },
        // Rust's char::to_lowercase: İ → i + U+0307 (a mark, so its own piece), Σ → σ everywhere (no final-sigma rule), ẞ → ß.
        { "special-casing", "\u0130stanbul \u03A3\u038A\u03A3\u03A5\u03A6\u039F\u03A3 \u1E9E", [328, 16384, 11231, 139, 225, 138, 107, 139, 225, 139, 227, 139, 228, 138, 123, 139, 481, 127, 509] },
        { "titlecase-digraphs", "\u01C5ungla \u01C4 \u01C6", [131, 228, 10439, 1210, 131, 484, 131, 484] },
        // NFC maps the Kelvin, Ångström and Ohm signs to K, Å and Ω, which are then lower-cased.
        { "nfc-singletons", "\u212A kelvin \u212B angstrom \u2126 ohm", [330, 32859, 127, 354, 883, 14707, 38065, 5648, 332] },
        { "circled-and-fullwidth", "\u24B6 \u24D1 circled \uFF41\uFF42\uFF43", [27400, 494, 27400, 495, 2459, 12827, 171, 121, 223, 171, 121, 224, 171, 121, 481] },
        { "cherokee-georgian", "\u13A0\u13A1 cherokee \u1C90 georgian", [166, 255, 108, 166, 255, 365, 22860, 24829, 494, 2549, 12866] },
        // Supplementary-plane letters are letters (the split pattern works on code points): 𐐀 lower-cases to 𐐨.
        { "supplementary-letters", "\U0001D400\U0001D41B math bold \U00010400 deseret", [15889, 222, 15889, 505, 6025, 8911, 172, 238, 238, 357, 27195, 10048] },
        // Special tokens are matched in the raw prompt before normalization, anywhere, even inside a word.
        { "literal-eos", "a<|endoftext|>b", [320, 49407, 321] },
        { "literal-bos-and-eos", "<|startoftext|>hello<|endoftext|>", [49406, 3306, 49407] },
        { "literal-eos-with-spaces", "a photo <|endoftext|> of a cat", [320, 1125, 49407, 539, 320, 2368] },
        // Upper case is no special token: lower-cased, the split pattern keeps <|endoftext|> whole, and the byte-level
        // pre-tokenizer's GPT-2 pattern splits it into <| endoftext |>.
        { "upper-case-special-text", "<|ENDOFTEXT|> upper", [27, 347, 40786, 4160, 91, 285, 7067] },
        { "partial-special-text", "<|endoftext| partial <|endoftext", [27, 347, 40786, 4160, 347, 18957, 27, 347, 40786, 4160] },
        // Apostrophe contractions are matched case-insensitively only because the text is lower-cased first.
        { "contractions", "'s 'S ''s it'S THEY'RE I'LL", [568, 568, 8445, 338, 585, 568, 889, 982, 328, 1342] },
        // Each \p{N} is its own piece, also for superscripts, fractions, circled and Roman numerals, Arabic-Indic digits.
        { "numbers", "x\u00B2\u00B3 \u00BD \u2460 \u216B \u0661\u0662", [343, 41175, 126, 367, 33613, 158, 239, 510, 158, 227, 375, 149, 350, 149, 351] },
        // Control characters are kept as symbol pieces; U+001C..U+001F are not White_Space for Oniguruma (unlike Python's isspace).
        { "control-characters", "nul\u0000 bell\u0007 esc\u001B del\u007F", [1156, 331, 444, 3718, 451, 28420, 471, 2003, 477] },
        { "information-separators", "seps\u001C\u001D\u001E\u001Fend", [567, 814, 216, 217, 218, 475, 806] },
        { "tab-vt-ff", "tab\tvt\u000Bff\u000Cend", [14724, 10291, 1304, 806] },
        // A combining mark with no precomposed form stays after NFC and is its own symbol piece.
        { "combining-marks", "e\u0301\u0302 q\u0303 marks", [4166, 136, 480, 336, 136, 481, 5466] },
        { "very-long-word", "pneumonoultramicroscopicsilicovolcanoconiosis supercalifragilisticexpialidocious", [28714, 749, 20253, 9800, 535, 532, 1065, 901, 1556, 13697, 9916, 78, 39031, 13903, 1642, 2857, 13093, 2076, 5868, 26850, 835, 639, 38466] },
    };

    [Theory]
    [MemberData(nameof(Prompts))]
    public void Encode_MatchesTransformers(string name, string text, int[] content)
    {
        Fixtures.Require();
        int[] expected = [Bos, .. content, Eos];

        ClipEncoding encoding = TokenizerFixtures.FromTokenizerJson.Encode(text);

        Assert.True(expected.SequenceEqual(encoding.UntruncatedIds.ToArray()), $"{name}: got [{string.Join(", ", encoding.UntruncatedIds.ToArray())}]");
        Assert.Equal([.. expected, .. Enumerable.Repeat(Eos, 77 - expected.Length)], encoding.InputIds.ToArray());
        Assert.Equal(0, encoding.DroppedTokenCount);
        Assert.Equal(string.Empty, encoding.DroppedText);
    }

    [Fact]
    public void EmptyPrompt_IsStartEndAndPadding()
    {
        Fixtures.Require();

        ClipEncoding encoding = TokenizerFixtures.FromTokenizerJson.Encode(string.Empty);

        Assert.Equal([Bos, Eos], encoding.UntruncatedIds.ToArray());
        Assert.Equal([Bos, .. Enumerable.Repeat(Eos, 76)], encoding.InputIds.ToArray());
        Assert.False(encoding.IsTruncated);
    }

    [Fact]
    public void RepeatedWord_IsSplitIntoTheLongestMergedPieces()
    {
        // 300 × 'a': BPE merges up to 'aaaaaaaa' (23126) 37 times, then 'aaaa</w>' (19336).
        Fixtures.Require();

        ClipEncoding encoding = TokenizerFixtures.FromTokenizerJson.Encode(new string('a', 300));

        Assert.Equal([Bos, .. Enumerable.Repeat(23126, 37), 19336, Eos], encoding.UntruncatedIds.ToArray());
    }

    [Fact]
    public void LongPrompt_IsTruncatedTo75ContentTokensAndReportsWhatWasDropped()
    {
        // "a photo of " × 40: 120 content tokens; 75 are kept, 45 dropped, and diffusers' warning decodes those 45.
        Fixtures.Require();
        string text = string.Concat(Enumerable.Repeat("a photo of ", 40));

        ClipEncoding encoding = TokenizerFixtures.FromTokenizerJson.Encode(text);

        Assert.Equal(122, encoding.UntruncatedIds.Length);
        Assert.Equal(77, encoding.InputIds.Length);
        Assert.Equal([1125, 539, Eos], encoding.InputIds.ToArray()[^3..]);
        Assert.Equal(45, encoding.DroppedTokenCount);
        Assert.True(encoding.IsTruncated);
        Assert.Equal(string.Concat(Enumerable.Repeat("a photo of ", 15)).TrimEnd(), encoding.DroppedText);
    }

    [Fact]
    public void LongWordWithoutSpaces_IsTruncatedInsideTheWord()
    {
        // "abc" × 200 is one word: ab + cab × 199 + c</w> = 201 tokens; the dropped 126 decode to "cab" × 125 + "c".
        Fixtures.Require();

        ClipEncoding encoding = TokenizerFixtures.FromTokenizerJson.Encode(string.Concat(Enumerable.Repeat("abc", 200)));

        Assert.Equal([Bos, 596, .. Enumerable.Repeat(3033, 199), 322, Eos], encoding.UntruncatedIds.ToArray());
        Assert.Equal([Bos, 596, .. Enumerable.Repeat(3033, 74), Eos], encoding.InputIds.ToArray());
        Assert.Equal(126, encoding.DroppedTokenCount);
        Assert.Equal(string.Concat(Enumerable.Repeat("cab", 125)) + "c", encoding.DroppedText);
    }

    [Fact]
    public void TenThousandCharacterPrompt_IsEncodedInFull()
    {
        // transformers: 3395 ids; the padded ids end ... 4014, 544, EOS; the dropped text starts "it lorem ipsum".
        Fixtures.Require();
        string text = string.Concat(Enumerable.Repeat("lorem ipsum dolor sit amet, consectetur adipiscing elit ", 200))[..10_000];

        ClipEncoding encoding = TokenizerFixtures.FromTokenizerJson.Encode(text);

        Assert.Equal(3395, encoding.UntruncatedIds.Length);
        Assert.Equal([Bos, 12880, 332, 1719, 8257], encoding.UntruncatedIds.ToArray()[..5]);
        Assert.Equal([548, 875, 267, 10311, Eos], encoding.UntruncatedIds.ToArray()[^5..]);
        Assert.Equal([4014, 544, Eos], encoding.InputIds.ToArray()[^3..]);
        Assert.Equal(3395 - 77, encoding.DroppedTokenCount);
        Assert.Equal(9954, encoding.DroppedText.Length);
        Assert.StartsWith("it lorem ipsum dolor sit amet , consectetur adipiscing elit ", encoding.DroppedText, StringComparison.Ordinal);
        Assert.EndsWith("onsectetur adipiscing elit lorem ipsum dolor sit amet , cons", encoding.DroppedText, StringComparison.Ordinal);
    }

    // Built in code, not in attributes: attribute strings are stored as UTF-8, which cannot hold a lone surrogate.
    public static TheoryData<string, int> UnpairedSurrogates => new()
    {
        { "\uD800 lone high", 0 },
        { "lone low \uDC00 here", 9 },
        { "swapped \uDC00\uD800", 8 },
        { "ends with \uD83D", 10 },
    };

    [Theory]
    [MemberData(nameof(UnpairedSurrogates))]
    public void UnpairedSurrogate_IsRejectedWithItsPosition(string text, int index)
    {
        // transformers raises a TypeError for such strings (tokenizers cannot take them); here the error names the culprit.
        Fixtures.Require();

        ArgumentException error = Assert.Throws<ArgumentException>(() => TokenizerFixtures.FromTokenizerJson.Encode(text));

        Assert.Contains($"at index {index}", error.Message, StringComparison.Ordinal);
        Assert.Equal("text", error.ParamName);
    }

    [Fact]
    public void NullPrompt_IsRejected()
    {
        Fixtures.Require();

        Assert.Throws<ArgumentNullException>(() => TokenizerFixtures.FromTokenizerJson.Encode(null!));
    }

    [Theory]
    [InlineData("an astronaut \U0001F680 riding a horse \U0001F434", "<|startoftext|>an astronaut \U0001F680 riding a horse \U0001F434 <|endoftext|>", "an astronaut \U0001F680 riding a horse \U0001F434")]
    [InlineData("hello...world!!! ???", "<|startoftext|>hello ... world !!! ??? <|endoftext|>", "hello ... world !!! ???")]
    [InlineData("a<|endoftext|>b", "<|startoftext|>a <|endoftext|>b <|endoftext|>", "a b")]
    [InlineData("\u0130stanbul", "<|startoftext|>i \u0307 stanbul <|endoftext|>", "i \u0307 stanbul")]
    public void Decode_MatchesTransformers(string text, string decoded, string decodedWithoutSpecialTokens)
    {
        // transformers 5.17: decode(ids) and decode(ids, skip_special_tokens=True) of tokenizer(text).input_ids.
        Fixtures.Require();
        ClipTokenizer tokenizer = TokenizerFixtures.FromTokenizerJson;
        int[] ids = tokenizer.Encode(text).UntruncatedIds.ToArray();

        Assert.Equal(decoded, tokenizer.Decode(ids));
        Assert.Equal(decodedWithoutSpecialTokens, tokenizer.Decode(ids, skipSpecialTokens: true));
    }

    [Fact]
    public void Decode_OfAnIdOutsideTheVocabulary_Throws()
    {
        Fixtures.Require();

        ArgumentOutOfRangeException error = Assert.Throws<ArgumentOutOfRangeException>(() => TokenizerFixtures.FromTokenizerJson.Decode([320, 49408]));

        Assert.Equal(49408, error.ActualValue);
    }

    [Fact]
    public void EncodeBatch_EncodesEachPrompt()
    {
        Fixtures.Require();
        ClipTokenizer tokenizer = TokenizerFixtures.FromTokenizerJson;
        string[] prompts = ["a photo of a cat", string.Empty, "a<|endoftext|>b"];

        IReadOnlyList<ClipEncoding> encodings = tokenizer.EncodeBatch(prompts);

        Assert.Equal(prompts.Length, encodings.Count);
        for (int i = 0; i < prompts.Length; i++)
        {
            Assert.Equal(tokenizer.Encode(prompts[i]).InputIds.ToArray(), encodings[i].InputIds.ToArray());
        }
    }

    [Fact]
    public void ConcurrentEncodes_GiveTheSameIdsAsSequentialOnes()
    {
        Fixtures.Require();
        ClipTokenizer tokenizer = TokenizerFixtures.FromTokenizerJson;
        string[] prompts = [.. Prompts.Select(row => row.Data.Item2), .. Enumerable.Range(0, 64).Select(i => $"prompt number {i} with a unique word{i}x{i * 7}")];
        int[][] sequential = [.. prompts.Select(p => tokenizer.Encode(p).UntruncatedIds.ToArray())];
        var concurrent = new int[prompts.Length * 8][];

        Parallel.For(0, concurrent.Length, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
            concurrent[i] = tokenizer.Encode(prompts[i % prompts.Length]).UntruncatedIds.ToArray());

        for (int i = 0; i < concurrent.Length; i++)
        {
            Assert.Equal(sequential[i % prompts.Length], concurrent[i]);
        }
    }
}
