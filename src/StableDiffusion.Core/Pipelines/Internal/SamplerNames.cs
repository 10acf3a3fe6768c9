using StableDiffusion.Schedulers;

namespace StableDiffusion.Pipelines.Internal;

/// <summary>
/// The name Stable Diffusion web UIs give a scheduler ("PLMS", "Euler a", "DPM++ 2M Karras"), so that the
/// <c>parameters</c> a PNG carries read as those UIs write them and load back in them.
/// </summary>
internal static class SamplerNames
{
    private static readonly string[] UiNames = [.. SchedulerFactory.KnownNames.Except(SchedulerFactory.ClassNames, StringComparer.Ordinal)];

    /// <summary>
    /// The first UI name whose scheduler is the same as <paramref name="scheduler"/>: same class and same resolved options
    /// (so a configuration that leaves <c>use_karras_sigmas</c> out is "Euler", not "Euler Karras"); the diffusers class
    /// name when no UI name fits, as for a custom configuration.
    /// </summary>
    public static string Of(IScheduler scheduler)
    {
        SchedulerConfig config = scheduler.Config;
        object? options = OptionsOf(scheduler);
        if (options is null)
        {
            return config.ClassName;
        }

        foreach (string name in UiNames)
        {
            SchedulerConfig candidate = SchedulerFactory.ConfigFor(name, config);
            if (candidate.ClassName == config.ClassName && options.Equals(OptionsOf(SchedulerFactory.FromConfig(candidate))))
            {
                return name;
            }
        }

        return config.ClassName;
    }

    // Every scheduler class keeps its resolved options, a record with value equality, in a property named Options.
    private static object? OptionsOf(IScheduler scheduler) =>
        scheduler is DiffusionScheduler ? scheduler.GetType().GetProperty("Options")?.GetValue(scheduler) : null;
}
