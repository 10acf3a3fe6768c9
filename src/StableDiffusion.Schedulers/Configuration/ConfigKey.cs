using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace StableDiffusion.Schedulers;

/// <summary>
/// One configuration key of a scheduler class: a property of its options record, named as diffusers names the
/// <c>__init__</c> argument (the property name in snake case), or a key the class reads without a property
/// (<see cref="ConfigKeyRules"/>).
/// </summary>
internal abstract class ConfigKey(string name)
{
    /// <summary>The diffusers key, such as <c>timestep_spacing</c>.</summary>
    public string Name { get; } = name;

    /// <summary>The diffusers key of an options property: its name in snake case (<c>PredictX0</c> is <c>predict_x0</c>).</summary>
    public static string NameOf(string property) => JsonNamingPolicy.SnakeCaseLower.ConvertName(property);

    /// <summary>The key of an options property, parsed by the property's type and checked against its <see cref="RangeAttribute"/>.</summary>
    public static ConfigKey ForProperty(PropertyInfo property, ConfigKeyRules rules)
    {
        Type type = property.PropertyType;
        ValueKind kind = type.IsEnum ? ValueKind.Enum(rules.NamesOf(property.Name, type)) : ValueKind.For(type)
            ?? throw new InvalidOperationException($"{property.DeclaringType?.Name}.{property.Name} has a type ({type.Name}) no configuration key can hold.");
        return new PropertyKey(property, kind, property.GetCustomAttribute<RangeAttribute>());
    }

    /// <summary>A string key without a property that must be one of <paramref name="accepted"/>; the first is canonical.</summary>
    public static ConfigKey OneOf(string name, string[] accepted) => new RuleKey(
        name,
        (node, context) =>
        {
            if (!(node?.GetValueKind() == JsonValueKind.String && accepted.Contains(JsonValues.AsString(node))))
            {
                throw context.Invalid(name, "one of " + string.Join(", ", accepted.Select(a => $"\"{a}\"")), node);
            }
        },
        node => JsonValues.AsString(node) == accepted[0] ? null : JsonValue.Create(accepted[0]));

    /// <summary>A key without a property that is only accepted at one value, with the reason other values are not supported.</summary>
    public static ConfigKey Only(string name, JsonNode? accepted, string reason) => new RuleKey(
        name,
        (node, context) =>
        {
            if (!JsonNode.DeepEquals(NormalizeNumber(node), NormalizeNumber(accepted)))
            {
                throw context.Unsupported(name, node, reason);
            }
        },
        _ => null);

    /// <summary>Applies the configuration's value: parsed into the property, or checked for keys without one.</summary>
    /// <param name="options">Options being built (not yet shared).</param>
    /// <param name="node">The configuration's value.</param>
    /// <param name="context">Where the value came from.</param>
    public abstract void Read(SchedulerOptions options, JsonNode? node, ConfigContext context);

    /// <summary>The canonical value diffusers writes back for an alias in <paramref name="node"/>, or null when it stays as given.</summary>
    public abstract JsonNode? CanonicalValue(JsonNode? node, SchedulerOptions options);

    /// <summary>The options' value as diffusers writes it, when it differs from the defaults' (never for keys without a property).</summary>
    public abstract bool TryWrite(SchedulerOptions options, SchedulerOptions defaults, out JsonNode? value);

    /// <summary>Checks the options' value against the key's range; the message names the key.</summary>
    public abstract void CheckRange(SchedulerOptions options, ConfigContext context);

    /// <summary>A key backed by a property of the options record.</summary>
    private sealed class PropertyKey(PropertyInfo property, ValueKind kind, RangeAttribute? range) : ConfigKey(NameOf(property.Name))
    {
        public override void Read(SchedulerOptions options, JsonNode? node, ConfigContext context) =>
            property.SetValue(options, kind.Parse(node, context, Name));

        public override JsonNode? CanonicalValue(JsonNode? node, SchedulerOptions options) => kind.Canonical?.Invoke(node, property.GetValue(options));

        public override bool TryWrite(SchedulerOptions options, SchedulerOptions defaults, out JsonNode? value)
        {
            object? current = property.GetValue(options);
            bool differs = !kind.Same(current, property.GetValue(defaults));
            value = differs ? kind.Write(current) : null;
            return differs;
        }

        public override void CheckRange(SchedulerOptions options, ConfigContext context)
        {
            if (range is null)
            {
                return;
            }

            double value = Convert.ToDouble(property.GetValue(options), CultureInfo.InvariantCulture);
            double min = Convert.ToDouble(range.Minimum, CultureInfo.InvariantCulture);
            double max = Convert.ToDouble(range.Maximum, CultureInfo.InvariantCulture);
            bool aboveMin = range.MinimumIsExclusive ? value > min : value >= min;
            bool belowMax = range.MaximumIsExclusive ? value < max : value <= max;
            if (!(aboveMin && belowMax))
            {
                throw context.Contradiction($"\"{Name}\" must {DescribeRange(min, max)}, but it is {property.GetValue(options)}.");
            }
        }

        private string DescribeRange(double min, double max)
        {
            bool unbounded = max is double.PositiveInfinity or double.MaxValue or int.MaxValue;
            if (property.PropertyType == typeof(int))
            {
                return unbounded ? $"be at least {min}" : $"be between {min} and {max}";
            }

            if (unbounded)
            {
                return range!.MinimumIsExclusive ? (min == 0 ? "be positive" : $"be greater than {min}") : $"be at least {min}";
            }

            return $"lie in {(range!.MinimumIsExclusive ? '(' : '[')}{min}, {max}{(range.MaximumIsExclusive ? ')' : ']')}";
        }
    }

    /// <summary>A key without a property: its value is checked, and possibly rewritten to a canonical one.</summary>
    private sealed class RuleKey(string name, Action<JsonNode?, ConfigContext> check, Func<JsonNode?, JsonNode?> canonical) : ConfigKey(name)
    {
        public override void Read(SchedulerOptions options, JsonNode? node, ConfigContext context) => check(node, context);

        public override JsonNode? CanonicalValue(JsonNode? node, SchedulerOptions options) => canonical(node);

        public override bool TryWrite(SchedulerOptions options, SchedulerOptions defaults, out JsonNode? value)
        {
            value = null;
            return false;
        }

        public override void CheckRange(SchedulerOptions options, ConfigContext context)
        {
        }
    }

    private static JsonNode? NormalizeNumber(JsonNode? node) => node?.GetValueKind() == JsonValueKind.Number
        ? JsonValue.Create(JsonValues.AsDouble(node))
        : node;

    /// <summary>How values of one property type are parsed, written and compared.</summary>
    private sealed record ValueKind(
        Func<JsonNode?, ConfigContext, string, object?> Parse,
        Func<object?, JsonNode?> Write,
        Func<object?, object?, bool> Same,
        Func<JsonNode?, object?, JsonNode?>? Canonical = null)
    {
        public static ValueKind? For(Type type)
        {
            if (type == typeof(int))
            {
                return new((n, c, k) => ParseInt(n, c, k), v => JsonValue.Create((int)v!), object.Equals);
            }

            if (type == typeof(double))
            {
                return new((n, c, k) => ParseDouble(n, c, k), v => WriteDouble((double)v!), object.Equals);
            }

            if (type == typeof(double?))
            {
                return new((n, c, k) => n is null ? null : ParseDouble(n, c, k), v => v is double d ? WriteDouble(d) : null, object.Equals);
            }

            if (type == typeof(bool))
            {
                return new((n, c, k) => ParseBool(n, c, k), v => JsonValue.Create((bool)v!), object.Equals);
            }

            if (type == typeof(IReadOnlyList<float>))
            {
                return new(ParseFloatList, v => WriteList((IReadOnlyList<float>?)v), SameList<float>);
            }

            if (type == typeof(IReadOnlyList<int>))
            {
                return new(ParseIntList, v => WriteList((IReadOnlyList<int>?)v), SameList<int>);
            }

            return null;
        }

        public static ValueKind Enum(IConfigEnum names) => new(
            names.Parse,
            v => JsonValue.Create(names.NameOf(v!)),
            object.Equals,
            (node, value) => names.IsRegisteredAlias(node) ? JsonValue.Create(names.NameOf(value!)) : null);

        private static bool SameList<T>(object? x, object? y) =>
            ReferenceEquals(x, y) || (x is IReadOnlyList<T> a && y is IReadOnlyList<T> b && a.SequenceEqual(b));
    }

    private static int ParseInt(JsonNode? node, ConfigContext context, string key)
    {
        if (node?.GetValueKind() == JsonValueKind.Number)
        {
            double value = JsonValues.AsDouble(node);
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
                return JsonValues.AsDouble(node);
            case JsonValueKind.String:
                // Python's json writes -Infinity / Infinity / NaN as bare literals; SchedulerConfig keeps them as strings.
                string text = JsonValues.AsString(node)!;
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
                    ? (float)JsonValues.AsDouble(array[i]!)
                    : throw context.Invalid(key, "a list of numbers", node);
            }

            return values;
        }

        throw context.Invalid(key, "a list of numbers or null", node);
    }

    private static IReadOnlyList<int> ParseIntList(JsonNode? node, ConfigContext context, string key)
    {
        switch (node)
        {
            case null:
                return [];
            case JsonArray array:
                return array.Select(item => ParseInt(item, context, key)).ToArray();
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                // Configs round-tripped through Python's str() hold a list repr such as "[]" or "[0, 1]".
                string text = JsonValues.AsString(value)!.Trim();
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
        values is null ? null : (JsonArray?)JsonValues.FromObject(values, "list");
}
