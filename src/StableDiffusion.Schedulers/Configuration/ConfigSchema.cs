using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace StableDiffusion.Schedulers;

/// <summary>
/// The configuration keys one scheduler class knows, each tied to a property of its options record. Reading applies
/// diffusers' <c>from_config</c> rule: keys present in the configuration are parsed and validated, keys absent keep the
/// class default, keys the class does not know are ignored (and kept in <see cref="SchedulerConfig"/> for the next swap).
/// </summary>
/// <typeparam name="TOptions">The options record of the scheduler class.</typeparam>
internal sealed class ConfigSchema<TOptions>
    where TOptions : SchedulerOptions, new()
{
    private readonly List<Key> _keys = [];

    public ConfigSchema(string className) => ClassName = className;

    /// <summary>The diffusers class name, such as <c>EulerDiscreteScheduler</c>.</summary>
    public string ClassName { get; }

    public ConfigSchema<TOptions> Int(string name, Func<TOptions, int> get, Func<TOptions, int, TOptions> set) =>
        Add(name, get, set, ParseInt, v => JsonValue.Create(v));

    public ConfigSchema<TOptions> Double(string name, Func<TOptions, double> get, Func<TOptions, double, TOptions> set) =>
        Add(name, get, set, ParseDouble, WriteDouble);

    public ConfigSchema<TOptions> NullableDouble(string name, Func<TOptions, double?> get, Func<TOptions, double?, TOptions> set) =>
        Add(name, get, set, (n, c, k) => n is null ? null : ParseDouble(n, c, k), v => v is { } d ? WriteDouble(d) : null);

    public ConfigSchema<TOptions> Bool(string name, Func<TOptions, bool> get, Func<TOptions, bool, TOptions> set) =>
        Add(name, get, set, ParseBool, v => JsonValue.Create(v));

    public ConfigSchema<TOptions> Enum<TEnum>(string name, Func<TOptions, TEnum> get, Func<TOptions, TEnum, TOptions> set, ConfigEnum<TEnum> names)
        where TEnum : struct, System.Enum
    {
        Add(name, get, set, names.Parse, v => JsonValue.Create(names.NameOf(v)));
        _keys[^1].Canonical = (node, options) => names.IsRegisteredAlias(node) ? JsonValue.Create(names.NameOf(get(options))) : null;
        return this;
    }

    public ConfigSchema<TOptions> FloatList(string name, Func<TOptions, IReadOnlyList<float>?> get, Func<TOptions, IReadOnlyList<float>?, TOptions> set) =>
        Add(name, get, set, ParseFloatList, WriteList, ListComparer<float>.Instance);

    public ConfigSchema<TOptions> IntList(string name, Func<TOptions, IReadOnlyList<int>?> get, Func<TOptions, IReadOnlyList<int>, TOptions> set) =>
        Add<IReadOnlyList<int>?>(name, get, (o, v) => set(o, v ?? []), ParseIntList, WriteList, ListComparer<int>.Instance);

    /// <summary>
    /// A string key that must be one of <paramref name="accepted"/>; the class behaves the same for all of them, and
    /// diffusers writes the first (canonical) one into its config.
    /// </summary>
    public ConfigSchema<TOptions> OneOf(string name, params string[] accepted)
    {
        _keys.Add(new Key(
            name,
            (options, node, context) => node?.GetValueKind() == JsonValueKind.String && accepted.Contains(node.Deserialize<string>())
                ? options
                : throw context.Invalid(name, "one of " + string.Join(", ", accepted.Select(a => $"\"{a}\"")), node))
        {
            Canonical = (node, _) => node!.Deserialize<string>() == accepted[0] ? null : JsonValue.Create(accepted[0]),
        });
        return this;
    }

    /// <summary>A key this package reads but only accepts at one value, with the reason other values are not supported.</summary>
    public ConfigSchema<TOptions> Only(string name, JsonNode? accepted, string reason)
    {
        _keys.Add(new Key(
            name,
            (options, node, context) => JsonNode.DeepEquals(Normalize(node), Normalize(accepted))
                ? options
                : throw context.Unsupported(name, node, reason)));
        return this;
    }

    /// <summary>A key of the class whose value does not matter for what this package supports (so it is not validated).</summary>
    public ConfigSchema<TOptions> Ignored(string name)
    {
        _keys.Add(new Key(name, (options, _, _) => options));
        return this;
    }

    /// <summary>
    /// Builds the options from a configuration: present keys parsed, absent keys at the class defaults. Also returns the
    /// configuration as the scheduler keeps it: for the class, with the aliases diffusers rewrites (such as
    /// <c>algorithm_type</c> "deis" in DPMSolverMultistepScheduler) replaced by their canonical names.
    /// </summary>
    public (TOptions Options, SchedulerConfig Config) Read(SchedulerConfig config)
    {
        var context = new ConfigContext(ClassName, config.Source);
        var options = new TOptions();
        var present = new List<(Key Key, JsonNode? Node)>();
        foreach (Key key in _keys)
        {
            if (config.TryGetValue(key.Name, out JsonNode? node))
            {
                options = key.Apply(options, node, context);
                present.Add((key, node));
            }
        }

        options.Validate(context);
        SchedulerConfig kept = config.WithClassName(ClassName);
        foreach (var (key, node) in present)
        {
            if (key.Canonical?.Invoke(node, options) is { } canonical)
            {
                kept = kept.With(key.Name, canonical);
            }
        }

        return (options, kept);
    }

    /// <summary>
    /// The configuration of options built in code: the keys whose values differ from the class defaults, so that other
    /// schedulers built from it take their own defaults for the rest, as diffusers' <c>_use_default_values</c> does.
    /// </summary>
    public SchedulerConfig Write(TOptions options)
    {
        var defaults = new TOptions();
        var values = new List<KeyValuePair<string, JsonNode?>>();
        foreach (Key key in _keys)
        {
            if (key.Differs is { } differs && differs(options, defaults))
            {
                values.Add(new(key.Name, key.Write!(options)));
            }
        }

        return SchedulerConfig.FromNodes(ClassName, values);
    }

    private ConfigSchema<TOptions> Add<TValue>(
        string name,
        Func<TOptions, TValue> get,
        Func<TOptions, TValue, TOptions> set,
        Func<JsonNode?, ConfigContext, string, TValue> parse,
        Func<TValue, JsonNode?> write,
        IEqualityComparer<TValue>? comparer = null)
    {
        comparer ??= EqualityComparer<TValue>.Default;
        _keys.Add(new Key(
            name,
            (options, node, context) => set(options, parse(node, context, name)),
            (options, defaults) => !comparer.Equals(get(options), get(defaults)),
            options => write(get(options))));
        return this;
    }

    private static JsonNode? Normalize(JsonNode? node) => node?.GetValueKind() == JsonValueKind.Number
        ? JsonValue.Create(node.Deserialize<double>())
        : node;

    private static int ParseInt(JsonNode? node, ConfigContext context, string key)
    {
        if (node?.GetValueKind() == JsonValueKind.Number)
        {
            double value = node.Deserialize<double>();
            if (value == System.Math.Floor(value) && value is >= int.MinValue and <= int.MaxValue)
            {
                return (int)value;
            }
        }

        throw context.Invalid(key, "an integer", node);
    }

    private static double ParseDouble(JsonNode? node, ConfigContext context, string key)
    {
        switch (node?.GetValueKind())
        {
            case JsonValueKind.Number:
                return node.Deserialize<double>();
            case JsonValueKind.String:
                // Python's json writes -Infinity / Infinity / NaN as bare literals; SchedulerConfig keeps them as strings.
                string text = node.Deserialize<string>()!;
                if (text is "Infinity" or "-Infinity" or "NaN")
                {
                    return double.Parse(text, CultureInfo.InvariantCulture);
                }

                break;
        }

        throw context.Invalid(key, "a number", node);
    }

    private static bool ParseBool(JsonNode? node, ConfigContext context, string key) => node?.GetValueKind() switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        // Several diffusers flags are typed "bool | None"; None behaves as False there.
        null or JsonValueKind.Null => false,
        _ => throw context.Invalid(key, "true or false", node),
    };

    private static float[]? ParseFloatList(JsonNode? node, ConfigContext context, string key)
    {
        if (node is null)
        {
            return null;
        }

        if (node is JsonArray array)
        {
            var values = new float[array.Count];
            for (int i = 0; i < values.Length; i++)
            {
                values[i] = array[i]?.GetValueKind() == JsonValueKind.Number
                    ? (float)array[i]!.Deserialize<double>()
                    : throw context.Invalid(key, "a list of numbers", node);
            }

            return values;
        }

        throw context.Invalid(key, "a list of numbers or null", node);
    }

    private static IReadOnlyList<int>? ParseIntList(JsonNode? node, ConfigContext context, string key)
    {
        switch (node)
        {
            case null:
                return [];
            case JsonArray array:
                return array.Select(item => ParseInt(item, context, key)).ToArray();
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                // Configs round-tripped through Python's str() hold a list repr such as "[]" or "[0, 1]".
                string text = value.Deserialize<string>()!.Trim();
                if (text.StartsWith('[') && text.EndsWith(']'))
                {
                    var items = text[1..^1].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    var result = new int[items.Length];
                    for (int i = 0; i < items.Length; i++)
                    {
                        if (!int.TryParse(items[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out result[i]))
                        {
                            throw context.Invalid(key, "a list of integers", node);
                        }
                    }

                    return result;
                }

                break;
        }

        throw context.Invalid(key, "a list of integers", node);
    }

    // Non-finite values are written as the strings SchedulerConfig reads Python's bare -Infinity / NaN literals into.
    private static JsonNode WriteDouble(double value) => double.IsFinite(value)
        ? JsonValue.Create(value)
        : JsonValue.Create(value.ToString(CultureInfo.InvariantCulture));

    private static JsonArray? WriteList<T>(IReadOnlyList<T>? values) =>
        values is null ? null : new JsonArray(values.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray());

    /// <summary>One key: how to apply its configuration value, and (for keys backed by a property) how to write it back.</summary>
    private sealed class Key(
        string name,
        Func<TOptions, JsonNode?, ConfigContext, TOptions> apply,
        Func<TOptions, TOptions, bool>? differs = null,
        Func<TOptions, JsonNode?>? write = null)
    {
        public string Name { get; } = name;

        public Func<TOptions, JsonNode?, ConfigContext, TOptions> Apply { get; } = apply;

        public Func<TOptions, TOptions, bool>? Differs { get; } = differs;

        public Func<TOptions, JsonNode?>? Write { get; } = write;

        /// <summary>The canonical value diffusers writes back for an alias, or null when the value stays as given.</summary>
        public Func<JsonNode?, TOptions, JsonNode?>? Canonical { get; set; }
    }

    private sealed class ListComparer<T> : IEqualityComparer<IReadOnlyList<T>?>
    {
        public static readonly ListComparer<T> Instance = new();

        public bool Equals(IReadOnlyList<T>? x, IReadOnlyList<T>? y) =>
            ReferenceEquals(x, y) || (x is not null && y is not null && x.SequenceEqual(y));

        public int GetHashCode(IReadOnlyList<T>? obj) => obj?.Count ?? 0;
    }
}
