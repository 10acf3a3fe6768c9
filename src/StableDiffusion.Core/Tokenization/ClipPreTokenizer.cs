using System.Text;
using Microsoft.ML.Tokenizers;

namespace StableDiffusion.Tokenization;

/// <summary>
/// CLIP's pre-tokenizer as Hugging Face tokenizers runs it on normalized text: the split pattern
/// <c>&lt;\|startoftext\|&gt;|&lt;\|endoftext\|&gt;|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+</c>, keeping the
/// matches and dropping the rest (white space), then the byte-level pre-tokenizer's GPT-2 pattern inside each match.
/// </summary>
/// <remarks>
/// A scanner over code points rather than a .NET regex: .NET's <c>\p{L}</c> sees the two halves of a surrogate pair, not the
/// letter they encode, while Oniguruma (which tokenizers uses) matches code points. Alternatives are tried in the pattern's
/// order at each position, as a backtracking regex does. Inside a match the GPT-2 pattern only splits the special-token
/// literals (<c>&lt;|endoftext|&gt;</c> becomes <c>&lt;|</c>, <c>endoftext</c>, <c>|&gt;</c>); that happens when a prompt holds
/// one in another case than the registered special token, which is then no special token.
/// </remarks>
internal sealed class ClipPreTokenizer : PreTokenizer
{
    private static readonly string[] SpecialLiterals = ["<|startoftext|>", "<|endoftext|>"];
    private static readonly string[] Contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"];

    private enum CharacterClass
    {
        Letter,
        Number,
        WhiteSpace,
        Other,
    }

    /// <inheritdoc />
    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text) => PreTokenize(text.AsSpan());

    /// <inheritdoc />
    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text)
    {
        var pieces = new List<(int Offset, int Length)>();
        int position = 0;
        while (position < text.Length)
        {
            int length = MatchClipPattern(text[position..]);
            if (length == 0)
            {
                // White space: not matched, so dropped.
                Rune.DecodeFromUtf16(text[position..], out _, out int skipped);
                position += skipped;
                continue;
            }

            SplitGpt2(text.Slice(position, length), position, pieces);
            position += length;
        }

        return pieces;
    }

    /// <summary>The length of CLIP's pattern match at the start of <paramref name="text"/>, or 0 at white space.</summary>
    private static int MatchClipPattern(ReadOnlySpan<char> text)
    {
        foreach (string literal in SpecialLiterals)
        {
            if (text.StartsWith(literal, StringComparison.Ordinal))
            {
                return literal.Length;
            }
        }

        int contraction = MatchContraction(text);
        if (contraction > 0)
        {
            return contraction;
        }

        CharacterClass first = Classify(text, 0, out int firstLength);
        return first switch
        {
            CharacterClass.Letter => RunLength(text, CharacterClass.Letter),
            CharacterClass.Number => firstLength,
            CharacterClass.Other => RunLength(text, CharacterClass.Other),
            _ => 0,
        };
    }

    /// <summary>The GPT-2 pattern <c>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+</c> over a match without white space.</summary>
    private static void SplitGpt2(ReadOnlySpan<char> match, int offset, List<(int Offset, int Length)> pieces)
    {
        int position = 0;
        while (position < match.Length)
        {
            ReadOnlySpan<char> rest = match[position..];
            int length = MatchContraction(rest);
            if (length == 0)
            {
                length = RunLength(rest, Classify(rest, 0, out _));
            }

            pieces.Add((offset + position, length));
            position += length;
        }
    }

    private static int MatchContraction(ReadOnlySpan<char> text)
    {
        if (text.IsEmpty || text[0] != '\'')
        {
            return 0;
        }

        foreach (string contraction in Contractions)
        {
            if (text.StartsWith(contraction, StringComparison.Ordinal))
            {
                return contraction.Length;
            }
        }

        return 0;
    }

    /// <summary>The length of the run of characters of class <paramref name="runClass"/> at the start of <paramref name="text"/>.</summary>
    private static int RunLength(ReadOnlySpan<char> text, CharacterClass runClass)
    {
        int position = 0;
        while (position < text.Length && Classify(text, position, out int length) == runClass)
        {
            position += length;
        }

        return position;
    }

    private static CharacterClass Classify(ReadOnlySpan<char> text, int position, out int length)
    {
        Rune.DecodeFromUtf16(text[position..], out Rune rune, out length);
        return Rune.IsLetter(rune) ? CharacterClass.Letter
            : Rune.IsNumber(rune) ? CharacterClass.Number
            : Rune.IsWhiteSpace(rune) ? CharacterClass.WhiteSpace
            : CharacterClass.Other;
    }
}
