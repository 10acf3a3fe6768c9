using System.Collections;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace StableDiffusion.Schedulers;

/// <summary>
/// Reads and writes the JSON values of scheduler configurations without System.Text.Json's reflection-based serializer,
/// so that configurations work in trimmed and native-AOT applications.
/// </summary>
internal static class JsonValues
{
    /// <summary>The string a JSON string node holds, or null for any other node.</summary>
    public static string? AsString(JsonNode? node) =>
        node is JsonValue value && value.GetValueKind() == JsonValueKind.String && value.TryGetValue(out string? text) ? text : null;

    /// <summary>The number a JSON number node holds, whichever .NET type it was created from.</summary>
    /// <exception cref="InvalidOperationException">The node is not a number.</exception>
    public static double AsDouble(JsonNode node)
    {
        if (node is JsonValue value)
        {
            if (value.TryGetValue(out JsonElement element) && element.ValueKind == JsonValueKind.Number)
            {
                return element.GetDouble();
            }

            if (value.TryGetValue(out double d))
            {
                return d;
            }

            if (value.TryGetValue(out float f))
            {
                return f;
            }

            if (value.TryGetValue(out long l))
            {
                return l;
            }

            if (value.TryGetValue(out int i))
            {
                return i;
            }

            if (value.TryGetValue(out decimal m))
            {
                return (double)m;
            }
        }

        throw new InvalidOperationException($"The JSON value {node.ToJsonString()} is not a number.");
    }

    /// <summary>
    /// A JSON node for a configuration value given in code: null, a JSON node or element, a bool, a number, a string, a
    /// list of these, or a string-keyed dictionary of these.
    /// </summary>
    /// <exception cref="ArgumentException">The value is of another type.</exception>
    public static JsonNode? FromObject(object? value, string key) => value switch
    {
        null => null,
        JsonNode node => node.DeepClone(),
        JsonElement element => JsonNode.Parse(element.GetRawText()),
        bool b => JsonValue.Create(b),
        string s => JsonValue.Create(s),
        int i => JsonValue.Create(i),
        long l => JsonValue.Create(l),
        float f => JsonValue.Create(f),
        double d => JsonValue.Create(d),
        decimal m => JsonValue.Create(m),
        IEnumerable<KeyValuePair<string, object?>> map => new JsonObject(map.Select(p => KeyValuePair.Create(p.Key, FromObject(p.Value, $"{key}.{p.Key}")))),
        IEnumerable list => new JsonArray([.. list.Cast<object?>().Select(item => FromObject(item, key))]),
        _ => throw new ArgumentException(
            $"The value of \"{key}\" is a {value.GetType().Name}; configuration values are null, bool, numbers, strings, lists or string-keyed dictionaries of these, or JSON nodes.", nameof(value)),
    };
}
