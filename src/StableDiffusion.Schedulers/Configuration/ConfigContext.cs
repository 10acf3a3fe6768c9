using System.Text.Json.Nodes;

namespace StableDiffusion.Schedulers;

/// <summary>
/// Where a configuration value came from (scheduler class and file), for error messages that name the field, and the
/// class's key rules, for checks that depend on what the class implements.
/// </summary>
internal readonly record struct ConfigContext(string ClassName, string? Source, ConfigKeyRules Rules)
{
    private string Where => Source is null ? $"{ClassName} configuration" : $"{Source} ({ClassName})";

    /// <summary>An exception for a key whose value is wrong.</summary>
    public SchedulerConfigException Invalid(string key, string expectation, JsonNode? actual) =>
        new($"{Where}: \"{key}\" must be {expectation}, but it is {Describe(actual)}.");

    /// <summary>An exception for a key that is valid but not supported here.</summary>
    public SchedulerConfigException Unsupported(string key, JsonNode? actual, string reason) =>
        new($"{Where}: \"{key}\" = {Describe(actual)} is not supported: {reason}");

    /// <summary>An exception for keys that contradict each other or the rest of the configuration.</summary>
    public SchedulerConfigException Contradiction(string message) => new($"{Where}: {message}");

    /// <summary>Throws when the class does not implement <paramref name="value"/> of the enum key <paramref name="property"/>.</summary>
    /// <param name="property">The property's name (<c>nameof</c>).</param>
    /// <param name="value">The value.</param>
    public void RequireImplemented<TEnum>(string property, TEnum value)
        where TEnum : struct, Enum
    {
        if (!Rules.Implements(property, value))
        {
            throw Contradiction($"\"{ConfigKey.NameOf(property)}\" {value} is not implemented by {ClassName}.");
        }
    }

    private static string Describe(JsonNode? value) => value is null ? "null" : value.ToJsonString();
}
