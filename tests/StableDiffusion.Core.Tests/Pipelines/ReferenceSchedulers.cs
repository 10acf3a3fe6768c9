using System.Text.Json;
using StableDiffusion.Schedulers;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Core.Tests.Pipelines;

/// <summary>Builds the scheduler a reference case names, as the reference did: <c>cls.from_config({**base_config, **overrides})</c>.</summary>
internal static class ReferenceSchedulers
{
    /// <summary>The scheduler of <c>schedulers.by_key[key]</c> in <paramref name="set"/>.</summary>
    public static IScheduler Create(ReferenceSet set, string key)
    {
        JsonElement entry = set.Root.GetProperty("schedulers").GetProperty("by_key").GetProperty(key);
        Reference.RequireKnownFields(entry, $"{set.Label}: schedulers.by_key.{key}", "class", "overrides", "step_kwargs");
        // A pipeline passes its own call arguments (eta) to every step; step arguments of a scheduler entry only apply to
        // the scheduler trajectories, and a pipeline case naming such an entry would be ambiguous.
        Assert.True(!entry.TryGetProperty("step_kwargs", out JsonElement kwargs) || !kwargs.EnumerateObject().Any(),
            $"{set.Label}: a pipeline case names scheduler '{key}', whose step_kwargs a pipeline call cannot take.");
        return SchedulerFactory.FromConfig(SchedulerConfig.Parse(set.SchedulerConfigOf(entry), $"reference scheduler '{key}'"));
    }

    /// <summary>The scheduler of <c>schedulers.by_key[key]</c> in the published reference.</summary>
    public static IScheduler Create(string key) => Create(Reference.Published, key);
}
