using System.Globalization;
using System.Text.RegularExpressions;

namespace StableDiffusion.Prompts;

/// <summary>One piece of a parsed prompt: text with its attention weight, or a <c>BREAK</c> (a chunk boundary).</summary>
/// <param name="Text">The text, escapes resolved; empty for a break.</param>
/// <param name="Weight">The product of the brackets around the text (1.1 per <c>( )</c>, 1/1.1 per <c>[ ]</c>, w per <c>(text:w)</c>).</param>
/// <param name="IsBreak">Whether this piece is a <c>BREAK</c>.</param>
internal readonly record struct PromptSegment(string Text, double Weight, bool IsBreak = false)
{
    public static PromptSegment Break => new(string.Empty, 1.0, IsBreak: true);
}

/// <summary>
/// The attention syntax of the Stable Diffusion web UIs, read as diffusers' long-prompt-weighting community pipeline reads
/// it: <c>(text)</c> multiplies the weight by 1.1, <c>[text]</c> divides it by 1.1, <c>(text:1.3)</c> multiplies it by 1.3,
/// brackets nest and multiply, <c>\(</c> <c>\)</c> <c>\[</c> <c>\]</c> <c>\\</c> are literal, unbalanced brackets close at
/// the end, and neighbouring pieces of equal weight are joined (they are tokenized together). <c>BREAK</c> (upper case, a
/// word of its own) ends the current chunk of 75 tokens, as in the web UIs.
/// </summary>
internal static partial class PromptAttention
{
    private const double RoundBracketMultiplier = 1.1;
    private const double SquareBracketMultiplier = 1 / 1.1;

    /// <summary>Parses <paramref name="prompt"/> into weighted segments (at least one; an empty prompt is one empty segment).</summary>
    /// <exception cref="ArgumentException">A <c>(text:weight)</c> weight is not a number.</exception>
    public static IReadOnlyList<PromptSegment> Parse(string prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        var segments = new List<(string Text, double Weight, bool IsBreak)>();
        var round = new Stack<int>();
        var square = new Stack<int>();

        void Multiply(int start, double multiplier)
        {
            for (int p = start; p < segments.Count; p++)
            {
                segments[p] = segments[p] with { Weight = segments[p].Weight * multiplier };
            }
        }

        void AddText(string text)
        {
            // BREAK splits the text it sits in; the white space around it goes with it.
            string[] parts = BreakPattern().Split(text);
            for (int i = 0; i < parts.Length; i++)
            {
                if (i > 0)
                {
                    segments.Add((string.Empty, 1.0, true));
                }

                if (i == 0 || parts[i].Length > 0)
                {
                    segments.Add((parts[i], 1.0, false));
                }
            }
        }

        int at = 0;
        while (at < prompt.Length)
        {
            char c = prompt[at];
            if (c == '\\')
            {
                // An escaped bracket or backslash is literal; a lone backslash disappears (the community pipeline keeps
                // the text after it, which is nothing).
                bool escapes = at + 1 < prompt.Length && prompt[at + 1] is '(' or ')' or '[' or ']' or '\\';
                segments.Add((escapes ? prompt[at + 1].ToString() : string.Empty, 1.0, false));
                at += escapes ? 2 : 1;
            }
            else if (c == '(')
            {
                round.Push(segments.Count);
                at++;
            }
            else if (c == '[')
            {
                square.Push(segments.Count);
                at++;
            }
            else if (c == ':' && WeightPattern().Match(prompt, at) is { Success: true } weight)
            {
                if (round.Count > 0)
                {
                    Multiply(round.Pop(), ParseWeight(weight.Groups[1].Value, prompt));
                }
                else
                {
                    AddText(weight.Value);
                }

                at += weight.Length;
            }
            else if (c == ')' && round.Count > 0)
            {
                Multiply(round.Pop(), RoundBracketMultiplier);
                at++;
            }
            else if (c == ']' && square.Count > 0)
            {
                Multiply(square.Pop(), SquareBracketMultiplier);
                at++;
            }
            else if (c is ')' or ']' or ':')
            {
                AddText(c.ToString());
                at++;
            }
            else
            {
                int end = prompt.AsSpan(at).IndexOfAny(@"\()[]:");
                end = end < 0 ? prompt.Length : at + end;
                AddText(prompt[at..end]);
                at = end;
            }
        }

        // Brackets left open apply to the end, innermost last, as the community pipeline does.
        foreach (int start in round.Reverse())
        {
            Multiply(start, RoundBracketMultiplier);
        }

        foreach (int start in square.Reverse())
        {
            Multiply(start, SquareBracketMultiplier);
        }

        if (segments.Count == 0)
        {
            return [new PromptSegment(string.Empty, 1.0)];
        }

        var merged = new List<PromptSegment>(segments.Count);
        foreach ((string text, double weight, bool isBreak) in segments)
        {
            if (!isBreak && merged.Count > 0 && merged[^1] is { IsBreak: false } last && last.Weight == weight)
            {
                merged[^1] = last with { Text = last.Text + text };
            }
            else
            {
                merged.Add(new PromptSegment(text, weight, isBreak));
            }
        }

        return merged;
    }

    private static double ParseWeight(string text, string prompt) =>
        double.TryParse(text, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double weight)
            ? weight
            : throw new ArgumentException($"The attention weight '{text}' in the prompt \"{prompt}\" is not a number; write it as (text:1.2).", nameof(prompt));

    // \G: only a weight that starts where the scan is.
    [GeneratedRegex(@"\G:([+-]?[.0-9]+)\)", RegexOptions.CultureInvariant)]
    private static partial Regex WeightPattern();

    [GeneratedRegex(@"\s*\bBREAK\b\s*", RegexOptions.CultureInvariant)]
    private static partial Regex BreakPattern();
}
