using System.Text.Json;
using StableDiffusion.Testing;
using StableDiffusion.Tokenization;
using Xunit;

namespace StableDiffusion.Core.Tests.Tokenization;

/// <summary>Every <c>tokenizer</c> case of reference.json, through both file forms of the fixture's tokenizer.</summary>
public sealed class TokenizerParityTests
{
    public static IEnumerable<TheoryDataRow<int>> Cases() => Reference.CaseIndexes("tokenizer");

    [Theory]
    [MemberData(nameof(Cases))]
    [Trait("Category", "Parity")]
    [Trait("Area", "Tokenizer")]
    public void Encode_MatchesTransformers(int index)
    {
        Reference.Require();
        Fixtures.Require();
        JsonElement tokenizerCase = Reference.Cases("tokenizer").ElementAt(index);
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
