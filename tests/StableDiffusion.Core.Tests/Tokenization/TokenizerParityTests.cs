using System.Text.Json;
using StableDiffusion.Testing;
using StableDiffusion.Tokenization;
using Xunit;

namespace StableDiffusion.Core.Tests.Tokenization;

/// <summary>Every <c>tokenizer</c> case of every reference, through both file forms of the fixture's tokenizer.</summary>
public sealed class TokenizerParityTests
{
    public static IEnumerable<TheoryDataRow<string>> Cases() => Reference.CaseNames("tokenizer");

    [Theory]
    [MemberData(nameof(Cases))]
    [Trait("Category", "Parity")]
    [Trait("Area", "Tokenizer")]
    public void Encode_MatchesTransformers(string id)
    {
        Fixtures.Require();
        (ReferenceSet set, JsonElement tokenizerCase) = Reference.Case("tokenizer", id);
        Reference.RequireKnownFields(set.Root.GetProperty("tokenizer"), $"{set.Label}: tokenizer", "class", "note", "cases");
        Assert.Equal("CLIPTokenizer", set.Root.GetProperty("tokenizer").GetProperty("class").GetString());
        Reference.RequireKnownFields(tokenizerCase, id, "text", "padded", "raw");
        string text = tokenizerCase.GetProperty("text").GetString()!;
        int[] padded = [.. tokenizerCase.GetProperty("padded").EnumerateArray().Select(id => id.GetInt32())];
        int[] raw = [.. tokenizerCase.GetProperty("raw").EnumerateArray().Select(id => id.GetInt32())];

        foreach (ClipTokenizer tokenizer in new[] { TokenizerFixtures.FromTokenizerJson, TokenizerFixtures.FromVocabAndMerges })
        {
            ClipEncoding encoding = tokenizer.Encode(text);

            Assert.Equal(padded, encoding.InputIds.ToArray());
            Assert.Equal(raw, encoding.UntruncatedIds.ToArray());
        }
    }
}
