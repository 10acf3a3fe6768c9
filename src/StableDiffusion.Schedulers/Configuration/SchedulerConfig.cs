using System.Text.Json;
using System.Text.Json.Nodes;

namespace StableDiffusion.Schedulers;

/// <summary>
/// A scheduler configuration as diffusers stores it in <c>scheduler/scheduler_config.json</c>: the class name and the
/// keys that were set explicitly. Keys absent here take the defaults of whichever scheduler class is built from it,
/// which is diffusers' <c>from_config</c> rule.
/// </summary>
/// <remarks>Immutable: the <c>With</c> methods return a new configuration.</remarks>
public sealed class SchedulerConfig
{
    private const string ClassNameKey = "_class_name";
    private const string UseDefaultValuesKey = "_use_default_values";

    private readonly JsonObject _values;

    private SchedulerConfig(string className, JsonObject values, string? source)
    {
        ClassName = className;
        _values = values;
        Source = source;
    }

    /// <summary>The diffusers class name this configuration was written for, such as <c>PNDMScheduler</c>.</summary>
    public string ClassName { get; }

    /// <summary>The file this configuration was read from, if any; used in error messages.</summary>
    public string? Source { get; }

    /// <summary>The keys set explicitly (not counting metadata keys that start with an underscore).</summary>
    public IEnumerable<string> Keys => _values.Select(p => p.Key);

    /// <summary>Reads a <c>scheduler_config.json</c> file.</summary>
    /// <param name="path">The path of the JSON file.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="SchedulerConfigException">The file is not a valid scheduler configuration.</exception>
    public static SchedulerConfig Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Scheduler configuration '{path}' does not exist.", path);
        }

        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses the JSON text of a scheduler configuration.</summary>
    /// <param name="json">The JSON object text.</param>
    /// <param name="source">Where the text came from, for error messages.</param>
    /// <exception cref="SchedulerConfigException">The text is not a valid scheduler configuration.</exception>
    public static SchedulerConfig Parse(string json, string? source = null)
    {
        ArgumentNullException.ThrowIfNull(json);
        string where = source ?? "scheduler configuration";
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(PythonJson.QuoteNamedFloatingPointLiterals(json), documentOptions: new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException ex)
        {
            throw new SchedulerConfigException($"{where} is not valid JSON: {ex.Message}", ex);
        }

        if (root is not JsonObject obj)
        {
            throw new SchedulerConfigException($"{where} must be a JSON object.");
        }

        if (obj[ClassNameKey] is not JsonValue nameValue || !nameValue.TryGetValue(out string? className) || string.IsNullOrWhiteSpace(className))
        {
            throw new SchedulerConfigException($"{where} has no \"{ClassNameKey}\" string naming the scheduler class.");
        }

        // diffusers writes the keys that took class defaults into _use_default_values; they count as absent.
        var defaulted = new HashSet<string>(StringComparer.Ordinal);
        if (obj[UseDefaultValuesKey] is JsonNode defaultsNode)
        {
            foreach (string key in ReadKeyList(defaultsNode, where))
            {
                defaulted.Add(key);
            }
        }

        var values = new JsonObject();
        foreach (var (key, value) in obj)
        {
            if (key.StartsWith('_') || defaulted.Contains(key))
            {
                continue;
            }

            values[key] = value?.DeepClone();
        }

        return new SchedulerConfig(className, values, source);
    }

    /// <summary>Creates a configuration for <paramref name="className"/> from explicit key-value pairs.</summary>
    /// <param name="className">The diffusers scheduler class name.</param>
    /// <param name="values">The explicit keys; values are null, bool, numbers, strings, lists or string-keyed dictionaries of these, or JSON nodes.</param>
    /// <exception cref="ArgumentException">A value is of another type (the message names the key).</exception>
    public static SchedulerConfig Create(string className, IEnumerable<KeyValuePair<string, object?>>? values = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(className);
        var obj = new JsonObject();
        foreach (var (key, value) in values ?? [])
        {
            obj[key] = JsonValues.FromObject(value, key);
        }

        return new SchedulerConfig(className, obj, null);
    }

    /// <summary>A configuration from JSON values already in hand (the options records write themselves this way).</summary>
    internal static SchedulerConfig FromNodes(string className, IEnumerable<KeyValuePair<string, JsonNode?>> values)
    {
        var obj = new JsonObject();
        foreach (var (key, value) in values)
        {
            obj[key] = value;
        }

        return new SchedulerConfig(className, obj, null);
    }

    /// <summary>Whether <paramref name="key"/> was set explicitly.</summary>
    /// <param name="key">A configuration key such as <c>timestep_spacing</c>.</param>
    public bool Contains(string key) => _values.ContainsKey(key);

    /// <summary>The explicit JSON value of <paramref name="key"/>, if set.</summary>
    /// <param name="key">A configuration key such as <c>timestep_spacing</c>.</param>
    /// <param name="value">The value (JSON null stays a null node).</param>
    public bool TryGetValue(string key, out JsonNode? value) => _values.TryGetPropertyValue(key, out value);

    /// <summary>This configuration for another scheduler class (the keys are kept; the new class reads those it knows).</summary>
    /// <param name="className">The diffusers scheduler class name.</param>
    public SchedulerConfig WithClassName(string className)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(className);
        return new SchedulerConfig(className, (JsonObject)_values.DeepClone(), Source);
    }

    /// <summary>This configuration with <paramref name="key"/> set to <paramref name="value"/>.</summary>
    /// <param name="key">A configuration key such as <c>use_karras_sigmas</c>.</param>
    /// <param name="value">The value: null, a bool, a number, a string, a list or string-keyed dictionary of these, or a JSON node.</param>
    /// <exception cref="ArgumentException">The value is of another type.</exception>
    public SchedulerConfig With(string key, object? value)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(key);
        var copy = (JsonObject)_values.DeepClone();
        copy[key] = JsonValues.FromObject(value, key);
        return new SchedulerConfig(ClassName, copy, Source);
    }

    /// <summary>This configuration without an explicit <paramref name="key"/> (the class default applies again).</summary>
    /// <param name="key">A configuration key.</param>
    public SchedulerConfig Without(string key)
    {
        var copy = (JsonObject)_values.DeepClone();
        copy.Remove(key);
        return new SchedulerConfig(ClassName, copy, Source);
    }

    /// <summary>The configuration as <c>scheduler_config.json</c> text.</summary>
    public string ToJson()
    {
        var obj = new JsonObject { [ClassNameKey] = ClassName };
        foreach (var (key, value) in _values)
        {
            obj[key] = value?.DeepClone();
        }

        return obj.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <inheritdoc />
    public override string ToString() => ToJson();

    private static IEnumerable<string> ReadKeyList(JsonNode node, string where)
    {
        // Saved configs hold a JSON list; configs round-tripped through str() hold Python's list repr: "['a', 'b']".
        if (node is JsonArray array)
        {
            return array.Select(n => n?.GetValue<string>() ?? string.Empty);
        }

        if (node is JsonValue value && value.TryGetValue(out string? text))
        {
            return text.Trim('[', ']').Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(s => s.Trim('\'', '"'));
        }

        throw new SchedulerConfigException($"{where}: \"{UseDefaultValuesKey}\" must be a list of key names.");
    }
}

/// <summary>A scheduler configuration is malformed, contradictory or names an unknown scheduler.</summary>
public sealed class SchedulerConfigException : StableDiffusionException
{
    /// <summary>Creates the exception with a message naming the problem.</summary>
    /// <param name="message">What is wrong, where, and what to do.</param>
    public SchedulerConfigException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the underlying error.</summary>
    /// <param name="message">What is wrong, where, and what to do.</param>
    /// <param name="innerException">The underlying error.</param>
    public SchedulerConfigException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
