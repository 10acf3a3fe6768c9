using System.Text.Json;
using StableDiffusion.Models;

namespace StableDiffusion.Loading;

/// <summary>
/// A model folder's <c>model_index.json</c>: the pipeline class and, per component, the library and class that wrote it
/// (<c>[null, null]</c> marks a component saved as absent).
/// </summary>
public sealed record ModelIndex
{
    /// <summary>The file name inside a model folder.</summary>
    public const string FileName = "model_index.json";

    /// <summary>The pipeline class name, such as <c>OnnxStableDiffusionPipeline</c>.</summary>
    public required string ClassName { get; init; }

    /// <summary>The diffusers version that wrote the file, if recorded.</summary>
    public string? DiffusersVersion { get; init; }

    /// <summary>Whether the model's licence asks for the safety checker (<c>requires_safety_checker</c>; true when absent).</summary>
    public bool RequiresSafetyChecker { get; init; } = true;

    /// <summary>The components, by name, with the library and class recorded for each (both null for an absent component).</summary>
    public required IReadOnlyDictionary<string, ModelIndexComponent> Components { get; init; }

    /// <summary>Whether the index names <paramref name="component"/> and does not mark it absent.</summary>
    /// <param name="component">A component name such as <c>safety_checker</c>.</param>
    public bool Has(string component) => Components.TryGetValue(component, out ModelIndexComponent? c) && c.ClassName is not null;

    /// <summary>Reads <c>model_index.json</c>.</summary>
    /// <param name="path">The file.</param>
    /// <exception cref="ModelLoadException">The file is missing or malformed.</exception>
    public static ModelIndex Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new ModelLoadException($"'{path}' does not exist: a diffusers model folder has a {FileName} naming its components.", path);
        }

        JsonElement root;
        try
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { AllowTrailingCommas = true });
            root = document.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            throw new ModelLoadException($"'{path}' is not valid JSON: {ex.Message}", path, ex);
        }

        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new ModelLoadException($"'{path}' must hold a JSON object.", path);
        }

        if (!root.TryGetProperty("_class_name", out JsonElement className) || className.ValueKind != JsonValueKind.String)
        {
            throw new ModelLoadException($"'{path}' has no \"_class_name\" string naming the pipeline class.", path);
        }

        bool requiresSafetyChecker = true;
        if (root.TryGetProperty("requires_safety_checker", out JsonElement requires))
        {
            requiresSafetyChecker = requires.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw new ModelLoadException($"'{path}': \"requires_safety_checker\" must be true or false.", path),
            };
        }

        var components = new Dictionary<string, ModelIndexComponent>(StringComparer.Ordinal);
        foreach (JsonProperty property in root.EnumerateObject())
        {
            if (property.Name.StartsWith('_') || property.Value.ValueKind != JsonValueKind.Array)
            {
                continue;
            }

            JsonElement[] pair = property.Value.EnumerateArray().ToArray();
            if (pair.Length != 2 || pair.Any(e => e.ValueKind is not (JsonValueKind.String or JsonValueKind.Null)))
            {
                throw new ModelLoadException($"'{path}': component \"{property.Name}\" must be a [library, class] pair of strings (or [null, null]).", path);
            }

            components[property.Name] = new ModelIndexComponent(pair[0].GetString(), pair[1].GetString());
        }

        return new ModelIndex
        {
            ClassName = className.GetString()!,
            DiffusersVersion = root.TryGetProperty("_diffusers_version", out JsonElement version) && version.ValueKind == JsonValueKind.String ? version.GetString() : null,
            RequiresSafetyChecker = requiresSafetyChecker,
            Components = components,
        };
    }
}

/// <summary>One component entry of <c>model_index.json</c>.</summary>
/// <param name="Library">The library that wrote it, such as <c>diffusers</c> or <c>transformers</c>.</param>
/// <param name="ClassName">The class, such as <c>OnnxRuntimeModel</c> or <c>CLIPTokenizer</c>.</param>
public sealed record ModelIndexComponent(string? Library, string? ClassName);
