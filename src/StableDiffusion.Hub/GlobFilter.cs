using System.Text;
using System.Text.RegularExpressions;

namespace StableDiffusion.Hub;

/// <summary>
/// <c>allow_patterns</c> as <c>huggingface_hub</c> applies them: Python's <c>fnmatchcase</c> (case-sensitive, <c>*</c> also
/// matches <c>/</c>, <c>?</c>, <c>[seq]</c>, <c>[!seq]</c>), with <c>\</c> read as <c>/</c> and a pattern ending in <c>/</c>
/// matching everything under that folder.
/// </summary>
internal sealed class GlobFilter
{
    private readonly Regex[] _patterns;

    public GlobFilter(IEnumerable<string> patterns)
    {
        _patterns = [.. patterns.Select(Compile)];
    }

    /// <summary>Whether <paramref name="path"/> matches at least one pattern.</summary>
    public bool IsMatch(string path)
    {
        string normalized = path.Replace('\\', '/');
        return _patterns.Any(pattern => pattern.IsMatch(normalized));
    }

    private static Regex Compile(string pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern, "allowPatterns");
        pattern = pattern.Replace('\\', '/');
        if (pattern.EndsWith('/'))
        {
            pattern += "*";
        }

        var regex = new StringBuilder(@"\A(?s:");
        for (int i = 0; i < pattern.Length; i++)
        {
            char c = pattern[i];
            switch (c)
            {
                case '*':
                    regex.Append(".*");
                    break;
                case '?':
                    regex.Append('.');
                    break;
                case '[':
                    i = AppendCharacterClass(pattern, i, regex);
                    break;
                default:
                    regex.Append(Regex.Escape(c.ToString()));
                    break;
            }
        }

        return new Regex(regex.Append(@")\z").ToString(), RegexOptions.CultureInvariant);
    }

    /// <summary>Appends <c>[...]</c> starting at <paramref name="open"/>; returns the index of its <c>]</c>, or of the <c>[</c> when unclosed (then a literal).</summary>
    private static int AppendCharacterClass(string pattern, int open, StringBuilder regex)
    {
        int i = open + 1;
        if (i < pattern.Length && pattern[i] == '!')
        {
            i++;
        }

        if (i < pattern.Length && pattern[i] == ']')
        {
            i++;
        }

        while (i < pattern.Length && pattern[i] != ']')
        {
            i++;
        }

        if (i >= pattern.Length)
        {
            regex.Append(@"\[");
            return open;
        }

        string content = pattern[(open + 1)..i];
        bool negate = content.StartsWith('!');
        if (negate)
        {
            content = content[1..];
        }

        regex.Append('[');
        if (negate)
        {
            regex.Append('^');
        }

        foreach (char c in content)
        {
            // Ranges keep their '-'; everything else that is special inside a .NET class is escaped.
            regex.Append(c is '\\' or '[' or ']' or '^' ? "\\" + c : c.ToString());
        }

        regex.Append(']');
        return i;
    }
}
