using System.Text.Json;
using StableDiffusion.Models;

namespace StableDiffusion.Onnx.Builders;

/// <summary>
/// A diffusers component's <c>config.json</c>, read field by field for a graph builder: a missing field takes diffusers'
/// default, and a field the builder cannot build is a <see cref="ModelLoadException"/> naming the file, the field, its
/// value and what is supported.
/// </summary>
internal sealed class ComponentConfig
{
    private readonly JsonElement _root;

    private ComponentConfig(string path, JsonElement root) => (Path, _root) = (path, root);

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>Reads <paramref name="path"/>.</summary>
    /// <exception cref="ModelLoadException">The file is missing or is not a JSON object.</exception>
    public static ComponentConfig Load(string path)
    {
        try
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(path));
            return document.RootElement.ValueKind == JsonValueKind.Object
                ? new ComponentConfig(path, document.RootElement.Clone())
                : throw new ModelLoadException($"The configuration '{path}' is a JSON {document.RootElement.ValueKind}, not an object.", path);
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            throw new ModelLoadException($"The configuration '{path}' cannot be read: {e.Message}", path, e);
        }
    }

    /// <summary>An integer field of at least <paramref name="minimum"/> (a positive one by default).</summary>
    public int Int(string field, int fallback, int minimum = 1) =>
        Get(field) is not { } value ? fallback
        : value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int n) && n >= minimum ? n
        : throw Unsupported(field, value, minimum == 1 ? "a positive integer" : $"an integer of at least {minimum}");

    /// <summary>
    /// A per-block positive integer: one number for every block, or a list of one per block (diffusers accepts both for
    /// <c>layers_per_block</c>, <c>attention_head_dim</c>, <c>cross_attention_dim</c>, ...).
    /// </summary>
    public int[] IntPerBlock(string field, int blocks, int fallback) => Get(field) switch
    {
        null => [.. Enumerable.Repeat(fallback, blocks)],
        { ValueKind: JsonValueKind.Number } => [.. Enumerable.Repeat(Int(field, fallback), blocks)],
        { } value => Ints(field, []) is { } list && list.Length == blocks ? list : throw Unsupported(field, value, $"a positive integer or a list of {blocks} (one per block)"),
    };

    /// <summary>A per-block boolean: one for every block, or a list of one per block.</summary>
    public bool[] BoolPerBlock(string field, int blocks, bool fallback) => Get(field) switch
    {
        null => [.. Enumerable.Repeat(fallback, blocks)],
        { ValueKind: JsonValueKind.True or JsonValueKind.False } value => [.. Enumerable.Repeat(value.GetBoolean(), blocks)],
        { ValueKind: JsonValueKind.Array } value when value.GetArrayLength() == blocks && value.EnumerateArray().All(v => v.ValueKind is JsonValueKind.True or JsonValueKind.False)
            => [.. value.EnumerateArray().Select(v => v.GetBoolean())],
        { } value => throw Unsupported(field, value, $"true, false or a list of {blocks} of them (one per block)"),
    };

    /// <summary>Whether the field is present with the value null (which some fields distinguish from absent).</summary>
    public bool IsNull(string field) => _root.TryGetProperty(field, out JsonElement value) && value.ValueKind == JsonValueKind.Null;

    /// <summary>A field that must be absent or null (a feature the builder does not build, such as SDXL's <c>addition_embed_type</c>).</summary>
    public void RequireNull(string field)
    {
        if (Get(field) is { } value)
        {
            throw Unsupported(field, value, "null (the field absent)");
        }
    }

    /// <summary>A list of positive integers.</summary>
    public int[] Ints(string field, int[] fallback) =>
        Get(field) is not { } value ? fallback
        : value.ValueKind == JsonValueKind.Array && value.GetArrayLength() > 0 && value.EnumerateArray().All(v => v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int n) && n > 0)
            ? [.. value.EnumerateArray().Select(v => v.GetInt32())]
            : throw Unsupported(field, value, "a non-empty list of positive integers");

    /// <summary>A finite number.</summary>
    public float Float(string field, float fallback) =>
        Get(field) is not { } value ? fallback
        : value.ValueKind == JsonValueKind.Number && value.TryGetSingle(out float f) && float.IsFinite(f) ? f
        : throw Unsupported(field, value, "a number");

    /// <summary>A boolean.</summary>
    public bool Bool(string field, bool fallback) =>
        Get(field) is not { } value ? fallback
        : value.ValueKind is JsonValueKind.True or JsonValueKind.False ? value.GetBoolean()
        : throw Unsupported(field, value, "true or false");

    /// <summary>A string that must be one of <paramref name="supported"/>.</summary>
    public string OneOf(string field, string fallback, params string[] supported)
    {
        string text = Get(field) is { ValueKind: JsonValueKind.String } value ? value.GetString()! : Get(field) is { } other ? throw Unsupported(field, other, "a string") : fallback;
        return supported.Contains(text, StringComparer.Ordinal) ? text : throw Unsupported(field, Get(field)!.Value, $"one of {string.Join(", ", supported.Select(s => $"\"{s}\""))}");
    }

    /// <summary>A list of strings, each one of <paramref name="supported"/>.</summary>
    public string[] AllOf(string field, params string[] supported)
    {
        JsonElement value = Get(field) ?? throw new ModelLoadException($"The configuration '{Path}' has no '{field}'.", Path);
        return value.ValueKind == JsonValueKind.Array && value.EnumerateArray().All(v => v.ValueKind == JsonValueKind.String && supported.Contains(v.GetString(), StringComparer.Ordinal))
            ? [.. value.EnumerateArray().Select(v => v.GetString()!)]
            : throw Unsupported(field, value, $"a list of {string.Join(", ", supported.Select(s => $"\"{s}\""))}");
    }

    /// <summary>The error for a field whose value the builder cannot build.</summary>
    public ModelLoadException Unsupported(string field, JsonElement value, string supported) =>
        new($"The configuration '{Path}' has \"{field}\": {value.GetRawText()}, which this SDK cannot build; it supports {supported}.", Path);

    private JsonElement? Get(string field) =>
        _root.TryGetProperty(field, out JsonElement value) && value.ValueKind != JsonValueKind.Null ? value : null;
}
