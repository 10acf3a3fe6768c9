using System.Text;

namespace StableDiffusion.Schedulers;

/// <summary>
/// Python's <c>json</c> module writes <c>NaN</c>, <c>Infinity</c> and <c>-Infinity</c> as bare tokens (diffusers saves
/// <c>"lambda_min_clipped": -Infinity</c>), which strict JSON parsers reject. This turns them into the strings that
/// <see cref="System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals"/> reads back.
/// </summary>
internal static class PythonJson
{
    private static readonly string[] Literals = ["-Infinity", "Infinity", "NaN"];

    public static string QuoteNamedFloatingPointLiterals(string json)
    {
        if (!json.Contains("Infinity", StringComparison.Ordinal) && !json.Contains("NaN", StringComparison.Ordinal))
        {
            return json;
        }

        var result = new StringBuilder(json.Length + 16);
        bool inString = false;
        for (int i = 0; i < json.Length; i++)
        {
            char c = json[i];
            if (inString)
            {
                result.Append(c);
                if (c == '\\' && i + 1 < json.Length)
                {
                    result.Append(json[++i]);
                }
                else if (c == '"')
                {
                    inString = false;
                }

                continue;
            }

            if (c == '"')
            {
                inString = true;
                result.Append(c);
                continue;
            }

            string? literal = Literals.FirstOrDefault(l => string.CompareOrdinal(json, i, l, 0, l.Length) == 0);
            if (literal is not null)
            {
                result.Append('"').Append(literal).Append('"');
                i += literal.Length - 1;
                continue;
            }

            result.Append(c);
        }

        return result.ToString();
    }
}
