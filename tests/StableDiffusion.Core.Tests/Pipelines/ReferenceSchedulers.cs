using System.Text.Json;
using StableDiffusion.Schedulers;
using StableDiffusion.Testing;

namespace StableDiffusion.Core.Tests.Pipelines;

/// <summary>Builds the scheduler a reference case names, as the reference did: <c>cls.from_config({**base_config, **overrides})</c>.</summary>
internal static class ReferenceSchedulers
{
    public static IScheduler Create(string key)
    {
        JsonElement entry = Reference.Root.GetProperty("schedulers").GetProperty("by_key").GetProperty(key);
        return SchedulerFactory.FromConfig(SchedulerConfig.Parse(Reference.SchedulerConfigOf(entry), $"reference scheduler '{key}'"));
    }
}
