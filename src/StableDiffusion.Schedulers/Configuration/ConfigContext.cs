using System.Text.Json.Nodes;

namespace StableDiffusion.Schedulers;

/// <summary>Where a configuration value came from (scheduler class and file), for error messages that name the field.</summary>
internal readonly record struct ConfigContext(string ClassName, string? Source)
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

    private static string Describe(JsonNode? value) => value is null ? "null" : value.ToJsonString();
}
