using StableDiffusion.Core.Tests.Tokenization;
using StableDiffusion.Prompts;
using StableDiffusion.Testing;
using StableDiffusion.Tokenization;
using Xunit;

namespace StableDiffusion.Core.Tests.Prompts;

/// <summary>
/// How weighted prompts become text encoder input, worked through the community pipeline's code by hand: tokens per
/// piece, chunks of 75 with their own start and end tokens, padding, weights at the right positions, BREAK, truncation.
/// </summary>
[Trait("Area", "PromptWeighting")]
public sealed class PromptChunksTests
{
    private const int Bos = 49406, Eos = 49407, A = 320, Red = 736, Cube = 11353;

    private static ClipTokenizer Tokenizer
    {
        get
        {
            Fixtures.Require();
            return TokenizerFixtures.FromTokenizerJson;
        }
    }

    [Fact]
    public void Tokenize_TokenizesEachPieceOnItsOwn_WithItsWeight()
    {
        WeightedTokens tokens = PromptChunks.Tokenize(Tokenizer, "a (red:1.5)cube", 3, out bool truncated);

        // "redcube" would be other tokens: the community pipeline tokenizes "a ", "red" and "cube" separately.
        Assert.Equal([A, Red, Cube], tokens.Ids);
        Assert.Equal([1f, 1.5f, 1f], tokens.Weights);
        Assert.False(truncated);
        Assert.NotEqual(tokens.Ids, Content("a redcube"));
    }

    [Fact]
    public void Layout_OfAPromptOf80Tokens_IsTwoChunksWithTheirOwnStartAndEndTokens()
    {
        WeightedTokens tokens = PromptChunks.Tokenize(Tokenizer, string.Join(' ', Enumerable.Repeat("a", 78)) + " (red:2) a", 3, out _);
        Assert.Equal(80, tokens.Ids.Length);

        int chunks = PromptChunks.ChunkCount(Tokenizer, [tokens]);
        (int[] ids, float[] weights) = PromptChunks.Layout(Tokenizer, [tokens], chunks);

        Assert.Equal(2, chunks);
        int[] first = [Bos, .. Enumerable.Repeat(A, 75), Eos];
        int[] second = [Bos, A, A, A, Red, A, .. Enumerable.Repeat(Eos, 70), Eos];
        Assert.Equal([.. first, .. second], ids);
        float[] expectedWeights = [.. Enumerable.Repeat(1f, 77 + 4), 2f, .. Enumerable.Repeat(1f, 72)];
        Assert.Equal(expectedWeights, weights);
    }

    [Fact]
    public void Layout_PadsEveryPromptOfABatchToTheLongestsChunks()
    {
        WeightedTokens longPrompt = PromptChunks.Tokenize(Tokenizer, string.Join(' ', Enumerable.Repeat("a", 100)), 3, out _);
        WeightedTokens empty = PromptChunks.Tokenize(Tokenizer, string.Empty, 3, out _);

        int chunks = PromptChunks.ChunkCount(Tokenizer, [empty, longPrompt]);
        (int[] ids, _) = PromptChunks.Layout(Tokenizer, [empty, longPrompt], chunks);

        Assert.Equal(2, chunks);
        Assert.Equal(4 * 77, ids.Length);
        Assert.Equal([Bos, .. Enumerable.Repeat(Eos, 76), Bos, .. Enumerable.Repeat(Eos, 76)], ids[..154]);
        Assert.Equal(1, PromptChunks.ChunkCount(Tokenizer, [empty]));
    }

    [Fact]
    public void Tokenize_PastTheLastChunk_Truncates()
    {
        WeightedTokens tokens = PromptChunks.Tokenize(Tokenizer, string.Join(' ', Enumerable.Repeat("a", 300)), 3, out bool truncated);

        Assert.True(truncated);
        Assert.Equal(225, tokens.Ids.Length);
        Assert.Equal(3, PromptChunks.ChunkCount(Tokenizer, [tokens]));
    }

    [Theory]
    [InlineData("a BREAK red", 1, 75)]
    [InlineData("BREAK red", 0, 75)]
    [InlineData("a BREAK BREAK red", 1, 150)]
    public void Tokenize_Break_PadsToTheNextChunk(string prompt, int before, int redAt)
    {
        WeightedTokens tokens = PromptChunks.Tokenize(Tokenizer, prompt, 3, out _);

        Assert.Equal(redAt + 1, tokens.Ids.Length);
        Assert.Equal(Red, tokens.Ids[redAt]);
        Assert.All(tokens.Ids[before..redAt], id => Assert.Equal(Eos, id));
        Assert.All(tokens.Weights, w => Assert.Equal(1f, w));
    }

    [Fact]
    public void Tokenize_BreakAfterAFullChunk_AddsNoEmptyChunk()
    {
        WeightedTokens tokens = PromptChunks.Tokenize(Tokenizer, string.Join(' ', Enumerable.Repeat("a", 75)) + " BREAK red", 3, out _);

        Assert.Equal(76, tokens.Ids.Length);
        Assert.Equal(Red, tokens.Ids[75]);
    }

    [Fact]
    public void ApplyWeights_MultipliesEachPositionThenRestoresTheMean()
    {
        // Two positions of width 2: the mean is 2.5 before, 4.25 after weighting the second position by 2.
        float[] hidden = [1, 2, 3, 4];

        PromptChunks.ApplyWeights(hidden, [1f, 2f]);

        float scale = 2.5f / 4.25f;
        Assert.Equal([1 * scale, 2 * scale, 6 * scale, 8 * scale], hidden);
    }

    [Fact]
    public void ApplyWeights_OfOnes_ChangesNothing()
    {
        float[] hidden = [0.1f, -2f, 3.3f, 4e-3f, 5f, -6f];
        float[] before = [.. hidden];

        PromptChunks.ApplyWeights(hidden, [1f, 1f, 1f]);

        Assert.Equal(before, hidden);
    }

    private static int[] Content(string text) => Tokenizer.Encode(text).UntruncatedIds.Span[1..^1].ToArray();
}
