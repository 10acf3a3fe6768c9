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
    private readonly string _prefix;

    private ComponentConfig(string path, JsonElement root, string prefix = "") => (Path, _root, _prefix) = (path, root, prefix);

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

    /// <summary>
    /// A nested configuration object, such as a <c>CLIPConfig</c>'s <c>vision_config</c>, read the same way (its fields named
    /// <c>vision_config.hidden_size</c> in messages); an empty one, all defaults, when the field is missing.
    /// </summary>
    public ComponentConfig Section(string field) =>
        Get(field) is not { } value ? new ComponentConfig(Path, EmptyObject(), $"{Qualified(field)}.")
        : value.ValueKind == JsonValueKind.Object ? new ComponentConfig(Path, value, $"{Qualified(field)}.")
        : throw Unsupported(field, value, "an object");

    /// <summary>
    /// This configuration with the integer <paramref name="field"/> set to <paramref name="value"/>: a base model's
    /// configuration adjusted to weights that differ from it (a single file's inpainting UNet). Messages still name the file.
    /// </summary>
    public ComponentConfig With(string field, int value)
    {
        var root = System.Text.Json.Nodes.JsonObject.Create(_root)!.DeepClone().AsObject();
        root[field] = value;
        using JsonDocument document = JsonDocument.Parse(root.ToJsonString());
        return new ComponentConfig(Path, document.RootElement.Clone(), _prefix);
    }

    /// <summary>The field as messages name it: <c>vision_config.hidden_size</c> in a <see cref="Section"/>.</summary>
    public string Qualified(string field) => _prefix + field;

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
        JsonElement value = Get(field) ?? throw new ModelLoadException($"The configuration '{Path}' has no '{Qualified(field)}'.", Path);
        return value.ValueKind == JsonValueKind.Array && value.EnumerateArray().All(v => v.ValueKind == JsonValueKind.String && supported.Contains(v.GetString(), StringComparer.Ordinal))
            ? [.. value.EnumerateArray().Select(v => v.GetString()!)]
            : throw Unsupported(field, value, $"a list of {string.Join(", ", supported.Select(s => $"\"{s}\""))}");
    }

    /// <summary>
    /// Checks that the weight <c>{scope}.{name}</c> of <paramref name="graph"/> has the shape <paramref name="shape"/> that
    /// <paramref name="fields"/> (with the values the builder read) give it, so that weights of another model fail naming
    /// the fields rather than a tensor deep inside the graph. A missing weight passes here: the graph builder names it when
    /// it needs it.
    /// </summary>
    /// <exception cref="ModelLoadException">The weight is stored with another shape.</exception>
    public void RequireWeightShape(GraphBuilder graph, string name, long[] shape, params (string Field, int Value)[] fields)
    {
        if (graph.StoredShape(name) is { } stored && !stored.AsSpan().SequenceEqual(shape))
        {
            string key = graph.ScopePath.Length == 0 ? name : $"{graph.ScopePath}.{name}";
            throw new ModelLoadException(
                $"The configuration '{Path}' ({string.Join(", ", fields.Select(f => $"{Qualified(f.Field)} {f.Value}"))}) makes '{key}' " +
                $"[{string.Join(", ", shape)}], but the weights store it as [{string.Join(", ", stored)}]: the configuration and the weights belong to different models.",
                Path);
        }
    }

    /// <summary>The error for a field whose value the builder cannot build.</summary>
    public ModelLoadException Unsupported(string field, JsonElement value, string supported) =>
        new($"The configuration '{Path}' has \"{Qualified(field)}\": {value.GetRawText()}, which this SDK cannot build; it supports {supported}.", Path);

    private static JsonElement EmptyObject()
    {
        using JsonDocument document = JsonDocument.Parse("{}");
        return document.RootElement.Clone();
    }

    private JsonElement? Get(string field) =>
        _root.TryGetProperty(field, out JsonElement value) && value.ValueKind != JsonValueKind.Null ? value : null;
}
