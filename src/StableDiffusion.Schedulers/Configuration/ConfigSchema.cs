using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Text.Json.Nodes;

namespace StableDiffusion.Schedulers;

/// <summary>
/// The configuration keys of one scheduler class, found on its options record as diffusers finds them on the class's
/// <c>__init__</c>: every public property is a key named by its snake-case name, with the property's type, default and
/// <see cref="System.ComponentModel.DataAnnotations.RangeAttribute"/>; the record's
/// <see cref="SchedulerOptions.DescribeKeys"/> adds what a property cannot say. Reading applies diffusers'
/// <c>from_config</c> rule: keys present in the configuration are parsed and validated, keys absent keep the class
/// default, keys the class does not know are ignored (and kept in <see cref="SchedulerConfig"/> for the next swap).
/// </summary>
/// <typeparam name="TOptions">The options record of the scheduler class.</typeparam>
internal sealed class ConfigSchema<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties | DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] TOptions>
    where TOptions : SchedulerOptions, new()
{
    private readonly TOptions _defaults = new();
    private readonly ConfigKeyRules _rules = new();
    private readonly ConfigKey[] _keys;

    public ConfigSchema(string className)
    {
        ClassName = className;
        _defaults.DescribeKeys(_rules);
        _keys = [.. Properties().Select(p => ConfigKey.ForProperty(p, _rules)), .. _rules.ExtraKeys];
        if (_keys.GroupBy(k => k.Name).FirstOrDefault(g => g.Count() > 1) is { } duplicate)
        {
            throw new InvalidOperationException($"{typeof(TOptions).Name} declares the configuration key \"{duplicate.Key}\" twice.");
        }
    }

    /// <summary>The diffusers class name, such as <c>EulerDiscreteScheduler</c>.</summary>
    public string ClassName { get; }

    /// <summary>
    /// Builds the options from a configuration: present keys parsed, absent keys at the class defaults. Also returns the
    /// configuration as the scheduler keeps it: for the class, with the aliases diffusers rewrites (such as
    /// <c>algorithm_type</c> "deis" in DPMSolverMultistepScheduler) replaced by their canonical names.
    /// </summary>
    /// <exception cref="SchedulerConfigException">A value is malformed, or the values contradict each other.</exception>
    public (TOptions Options, SchedulerConfig Config) Read(SchedulerConfig config)
    {
        var context = new ConfigContext(ClassName, config.Source, _rules);
        var options = new TOptions();
        var present = new List<(ConfigKey Key, JsonNode? Node)>();
        foreach (ConfigKey key in _keys)
        {
            if (config.TryGetValue(key.Name, out JsonNode? node))
            {
                key.Read(options, node, context);
                present.Add((key, node));
            }
        }

        Validate(options, context);
        SchedulerConfig kept = config.WithClassName(ClassName);
        foreach (var (key, node) in present)
        {
            if (key.CanonicalValue(node, options) is { } canonical)
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
        var values = new List<KeyValuePair<string, JsonNode?>>();
        foreach (ConfigKey key in _keys)
        {
            if (key.TryWrite(options, _defaults, out JsonNode? value))
            {
                values.Add(new(key.Name, value));
            }
        }

        return SchedulerConfig.FromNodes(ClassName, values);
    }

    /// <summary>Checks options built in code: each key's range, then the keys against each other.</summary>
    /// <exception cref="SchedulerConfigException">The options contradict each other; the message names the key at fault.</exception>
    public void Validate(TOptions options) => Validate(options, new ConfigContext(ClassName, null, _rules));

    private void Validate(TOptions options, ConfigContext context)
    {
        foreach (ConfigKey key in _keys)
        {
            key.CheckRange(options, context);
        }

        options.Validate(context);
    }

    // The public instance properties of the record and its bases, base first, each type's in declaration order.
    private static IEnumerable<PropertyInfo> Properties() =>
        typeof(TOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .OrderBy(p => Depth(p.DeclaringType!))
            .ThenBy(p => p.MetadataToken);

    private static int Depth(Type type)
    {
        int depth = 0;
        for (Type? t = type.BaseType; t is not null; t = t.BaseType)
        {
            depth++;
        }

        return depth;
    }
}
