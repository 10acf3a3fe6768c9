using System.Text.Json;
using System.Text.Json.Nodes;
using StableDiffusion.Schedulers;
using StableDiffusion.Testing;

namespace StableDiffusion.Core.Tests.Pipelines;

/// <summary>Builds the scheduler a reference case names, as the reference did: <c>cls.from_config({**base_config, **overrides})</c>.</summary>
internal static class ReferenceSchedulers
{
    public static IScheduler Create(string key)
    {
        JsonElement schedulers = Reference.Root.GetProperty("schedulers");
        JsonElement entry = schedulers.GetProperty("by_key").GetProperty(key);
        var config = new JsonObject { ["_class_name"] = entry.GetProperty("class").GetString() };
        foreach (JsonProperty p in schedulers.GetProperty("base_config").EnumerateObject())
        {
            config[p.Name] = JsonNode.Parse(p.Value.GetRawText());
        }

        foreach (JsonProperty p in entry.GetProperty("overrides").EnumerateObject())
        {
            config[p.Name] = JsonNode.Parse(p.Value.GetRawText());
        }

        return SchedulerFactory.FromConfig(SchedulerConfig.Parse(config.ToJsonString(), $"reference scheduler '{key}'"));
    }
}
