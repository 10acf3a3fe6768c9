using System.Globalization;
using System.Text;

namespace StableDiffusion.Tokenization;

/// <summary>
/// CLIP's normalizer as Hugging Face tokenizers runs it: Unicode NFC, every run of white space (Unicode White_Space, which
/// is what Oniguruma's <c>\s</c> matches) replaced by one space, then lower-casing code point by code point with Rust's
/// <c>char::to_lowercase</c> (simple mappings, plus İ → i̇, its one unconditional multi-character mapping).
/// </summary>
internal static class ClipTextNormalizer
{
    // Below U+0300 every character is already in NFC and none combines with a neighbour.
    private const char FirstNonLatinCharacter = '\u0300';

    // .NET with invariant globalization has no normalization data: Normalize returns the text unchanged.
    private static readonly bool NormalizationAvailable = "e\u0301".Normalize(NormalizationForm.FormC) == "\u00e9";

    // Characters that NFC replaces even alone (canonical singletons and composition exclusions), as broad ranges:
    // a prompt holding one cannot be tokenized faithfully without normalization data.
    private static readonly (int First, int Last)[] NfcSingletonRanges =
    [
        (0x0340, 0x0344), (0x0374, 0x0374), (0x037E, 0x037E), (0x0387, 0x0387), (0x0958, 0x095F), (0x09DC, 0x09DF),
        (0x0A33, 0x0A36), (0x0A59, 0x0A5E), (0x0B5C, 0x0B5D), (0x0F43, 0x0FB9), (0x1100, 0x11FF), (0x1F70, 0x1FFF),
        (0x2000, 0x2001), (0x2126, 0x2126), (0x212A, 0x212B), (0x2329, 0x232A), (0x2ADC, 0x2ADC), (0xF900, 0xFAFF),
        (0xFB1D, 0xFB4F), (0x1D15E, 0x1D1C0), (0x2F800, 0x2FA1F),
    ];

    /// <summary>Normalizes one stretch of prompt text (valid UTF-16).</summary>
    /// <param name="text">The text.</param>
    /// <exception cref="NotSupportedException">
    /// The process runs with invariant globalization and the text holds characters that NFC could change.
    /// </exception>
    public static string Normalize(ReadOnlySpan<char> text)
    {
        string composed = Compose(text);
        var builder = new StringBuilder(composed.Length);
        bool inWhiteSpace = false;
        Span<char> utf16 = stackalloc char[2];
        foreach (Rune rune in composed.EnumerateRunes())
        {
            if (Rune.IsWhiteSpace(rune))
            {
                if (!inWhiteSpace)
                {
                    builder.Append(' ');
                }

                inWhiteSpace = true;
                continue;
            }

            inWhiteSpace = false;
            if (rune.Value == 0x0130)
            {
                builder.Append("i\u0307");
            }
            else
            {
                builder.Append(utf16[..Rune.ToLowerInvariant(rune).EncodeToUtf16(utf16)]);
            }
        }

        return builder.ToString();
    }

    private static string Compose(ReadOnlySpan<char> text)
    {
        if (!text.ContainsAnyInRange(FirstNonLatinCharacter, char.MaxValue))
        {
            return text.ToString();
        }

        if (NormalizationAvailable)
        {
            return text.ToString().Normalize(NormalizationForm.FormC);
        }

        foreach (Rune rune in text.EnumerateRunes())
        {
            if (MayChangeUnderNfc(rune))
            {
                throw new NotSupportedException(
                    $"The prompt holds U+{rune.Value:X4}, which Unicode normalization (NFC) may change, but this process runs with " +
                    "invariant globalization and has no normalization data, so its tokens could differ from diffusers'. Run with ICU " +
                    "(InvariantGlobalization=false and libicu installed), or write the prompt in composed form.");
            }
        }

        return text.ToString();
    }

    private static bool MayChangeUnderNfc(Rune rune)
    {
        // Combining marks compose with or reorder around their neighbours (variation selectors never do).
        UnicodeCategory category = Rune.GetUnicodeCategory(rune);
        if (category is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark
            && rune.Value is not (>= 0xFE00 and <= 0xFE0F) and not (>= 0xE0100 and <= 0xE01EF))
        {
            return true;
        }

        foreach ((int first, int last) in NfcSingletonRanges)
        {
            if (rune.Value >= first && rune.Value <= last)
            {
                return true;
            }
        }

        return false;
    }
}
