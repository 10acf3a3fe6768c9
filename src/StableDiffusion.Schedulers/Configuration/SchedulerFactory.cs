using System.Collections.Frozen;

namespace StableDiffusion.Schedulers;

/// <summary>
/// Builds schedulers from configurations and from the names people use: diffusers class names
/// (<c>EulerDiscreteScheduler</c>), .NET class names (<see cref="EulerDiscreteScheduler"/>) and UI names
/// ("Euler a", "DPM++ 2M Karras"), case-insensitively.
/// </summary>
/// <example>
/// Swap a pipeline's scheduler, keeping the model's noise schedule:
/// <code>
/// pipe.Scheduler = SchedulerFactory.Create("DPM++ 2M Karras", pipe.Scheduler.Config);
/// </code>
/// </example>
public static class SchedulerFactory
{
    private static readonly SchedulerClass[] Classes =
    [
        new(PndmScheduler.DiffusersName, nameof(PndmScheduler), PndmScheduler.FromConfig),
        new(DdimScheduler.DiffusersName, nameof(DdimScheduler), DdimScheduler.FromConfig),
        new(DdpmScheduler.DiffusersName, nameof(DdpmScheduler), DdpmScheduler.FromConfig),
        new(EulerDiscreteScheduler.DiffusersName, nameof(EulerDiscreteScheduler), EulerDiscreteScheduler.FromConfig),
        new(EulerAncestralDiscreteScheduler.DiffusersName, nameof(EulerAncestralDiscreteScheduler), EulerAncestralDiscreteScheduler.FromConfig),
        new(LmsDiscreteScheduler.DiffusersName, nameof(LmsDiscreteScheduler), LmsDiscreteScheduler.FromConfig),
        new(HeunDiscreteScheduler.DiffusersName, nameof(HeunDiscreteScheduler), HeunDiscreteScheduler.FromConfig),
        new(DpmSolverMultistepScheduler.DiffusersName, nameof(DpmSolverMultistepScheduler), DpmSolverMultistepScheduler.FromConfig),
        new(DpmSolverSinglestepScheduler.DiffusersName, nameof(DpmSolverSinglestepScheduler), DpmSolverSinglestepScheduler.FromConfig),
        new(KDpm2DiscreteScheduler.DiffusersName, nameof(KDpm2DiscreteScheduler), KDpm2DiscreteScheduler.FromConfig),
        new(KDpm2AncestralDiscreteScheduler.DiffusersName, nameof(KDpm2AncestralDiscreteScheduler), KDpm2AncestralDiscreteScheduler.FromConfig),
        new(UniPCMultistepScheduler.DiffusersName, nameof(UniPCMultistepScheduler), UniPCMultistepScheduler.FromConfig),
        new(DeisMultistepScheduler.DiffusersName, nameof(DeisMultistepScheduler), DeisMultistepScheduler.FromConfig),
        new(LcmScheduler.DiffusersName, nameof(LcmScheduler), LcmScheduler.FromConfig),
    ];

    private static readonly FrozenDictionary<string, SchedulerClass> ByDiffusersName =
        Classes.ToFrozenDictionary(c => c.DiffusersName, StringComparer.Ordinal);

    // UI names (AUTOMATIC1111's, which ComfyUI and most front ends share) with the keys that make the name true whatever
    // the base configuration says. Mapping per diffusers' scheduler documentation.
    private static readonly SchedulerAlias[] Aliases =
    [
        Alias("Euler", EulerDiscreteScheduler.DiffusersName, ("use_karras_sigmas", false)),
        Alias("Euler Karras", EulerDiscreteScheduler.DiffusersName, ("use_karras_sigmas", true)),
        Alias("Euler a", EulerAncestralDiscreteScheduler.DiffusersName),
        Alias("LMS", LmsDiscreteScheduler.DiffusersName, ("use_karras_sigmas", false)),
        Alias("LMS Karras", LmsDiscreteScheduler.DiffusersName, ("use_karras_sigmas", true)),
        Alias("Heun", HeunDiscreteScheduler.DiffusersName, ("use_karras_sigmas", false)),
        Alias("Heun Karras", HeunDiscreteScheduler.DiffusersName, ("use_karras_sigmas", true)),
        Alias("DPM2", KDpm2DiscreteScheduler.DiffusersName, ("use_karras_sigmas", false)),
        Alias("DPM2 Karras", KDpm2DiscreteScheduler.DiffusersName, ("use_karras_sigmas", true)),
        Alias("DPM2 a", KDpm2AncestralDiscreteScheduler.DiffusersName, ("use_karras_sigmas", false)),
        Alias("DPM2 a Karras", KDpm2AncestralDiscreteScheduler.DiffusersName, ("use_karras_sigmas", true)),
        Alias("DPM++ 2M", DpmSolverMultistepScheduler.DiffusersName, ("algorithm_type", "dpmsolver++"), ("solver_order", 2), ("use_karras_sigmas", false)),
        Alias("DPM++ 2M Karras", DpmSolverMultistepScheduler.DiffusersName, ("algorithm_type", "dpmsolver++"), ("solver_order", 2), ("use_karras_sigmas", true)),
        Alias("DPM++ 2M SDE", DpmSolverMultistepScheduler.DiffusersName, ("algorithm_type", "sde-dpmsolver++"), ("solver_order", 2), ("use_karras_sigmas", false)),
        Alias("DPM++ 2M SDE Karras", DpmSolverMultistepScheduler.DiffusersName, ("algorithm_type", "sde-dpmsolver++"), ("solver_order", 2), ("use_karras_sigmas", true)),
        Alias("DPM++ 2S", DpmSolverSinglestepScheduler.DiffusersName, ("algorithm_type", "dpmsolver++"), ("solver_order", 2), ("use_karras_sigmas", false)),
        Alias("DPM++ 2S Karras", DpmSolverSinglestepScheduler.DiffusersName, ("algorithm_type", "dpmsolver++"), ("solver_order", 2), ("use_karras_sigmas", true)),
        Alias("DDIM", DdimScheduler.DiffusersName),
        Alias("DDPM", DdpmScheduler.DiffusersName),
        Alias("PLMS", PndmScheduler.DiffusersName, ("skip_prk_steps", true)),
        Alias("PNDM", PndmScheduler.DiffusersName),
        Alias("UniPC", UniPCMultistepScheduler.DiffusersName),
        Alias("DEIS", DeisMultistepScheduler.DiffusersName),
        Alias("LCM", LcmScheduler.DiffusersName),
    ];

    // Names people reach for that have no exact scheduler here, with what to use instead.
    private static readonly FrozenDictionary<string, string> Unavailable = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["DPM++ SDE"] = "it is diffusers' DPMSolverSDEScheduler, whose Brownian-tree noise (torchsde) cannot be reproduced here; \"DPM++ 2M SDE\" is the closest available.",
        ["DPM++ SDE Karras"] = "it is diffusers' DPMSolverSDEScheduler, whose Brownian-tree noise (torchsde) cannot be reproduced here; \"DPM++ 2M SDE Karras\" is the closest available.",
        ["DPM++ 2S a"] = "diffusers has no ancestral singlestep DPM-Solver; \"DPM++ 2S\" is the non-ancestral one.",
        ["DPM++ 2S a Karras"] = "diffusers has no ancestral singlestep DPM-Solver; \"DPM++ 2S Karras\" is the non-ancestral one.",
        ["DPM fast"] = "diffusers has no equivalent.",
        ["DPM adaptive"] = "diffusers has no equivalent.",
    }.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);

    private static readonly FrozenDictionary<string, SchedulerAlias> ByName = BuildNameIndex();

    /// <summary>
    /// The names <see cref="Create"/> accepts, for help texts: the UI names, then the diffusers class names (the .NET class
    /// names are the same case-insensitively, and are accepted too).
    /// </summary>
    public static IReadOnlyList<string> KnownNames { get; } =
        [.. Aliases.Select(a => a.Name), .. Classes.Select(c => c.DiffusersName)];

    /// <summary>The diffusers class names of the schedulers this package implements.</summary>
    public static IReadOnlyList<string> ClassNames { get; } = [.. Classes.Select(c => c.DiffusersName)];

    /// <summary>
    /// The name Stable Diffusion web UIs give <paramref name="scheduler"/> ("PLMS", "Euler a", "DPM++ 2M Karras"): the first
    /// UI name whose scheduler has the same class and the same resolved options (so a configuration that leaves
    /// <c>use_karras_sigmas</c> out is "Euler", not "Euler Karras"); the diffusers class name when none fits, as for a custom
    /// configuration or a scheduler of another library.
    /// </summary>
    /// <param name="scheduler">The scheduler.</param>
    public static string NameOf(IScheduler scheduler)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        SchedulerConfig config = scheduler.Config;
        if (scheduler is not DiffusionScheduler ours)
        {
            return config.ClassName;
        }

        foreach (SchedulerAlias alias in Aliases)
        {
            SchedulerConfig candidate = ConfigFor(alias.Name, config);
            if (candidate.ClassName == config.ClassName && ours.ResolvedOptions.Equals(FromConfig(candidate).ResolvedOptions))
            {
                return alias.Name;
            }
        }

        return config.ClassName;
    }

    /// <summary>
    /// Builds the scheduler a configuration names (its <c>_class_name</c>), as loading a pipeline's
    /// <c>scheduler/scheduler_config.json</c> does in diffusers.
    /// </summary>
    /// <param name="config">The configuration.</param>
    /// <exception cref="SchedulerConfigException">The class is not one of <see cref="ClassNames"/>, or the configuration is malformed.</exception>
    public static DiffusionScheduler FromConfig(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (!ByDiffusersName.TryGetValue(config.ClassName, out SchedulerClass? schedulerClass))
        {
            string where = config.Source is null ? "The scheduler configuration" : config.Source;
            throw new SchedulerConfigException(
                $"{where} names the scheduler class \"{config.ClassName}\", which is not available. Known classes: {string.Join(", ", ClassNames)}.");
        }

        return schedulerClass.FromConfig(config);
    }

    /// <summary>
    /// Builds a scheduler by name on top of a base configuration (usually the model's, <c>pipe.Scheduler.Config</c>),
    /// as diffusers' <c>X.from_config(base, **overrides)</c> does: keys the base sets carry over, keys it lacks take the
    /// class defaults, and a UI name adds the keys that define it (for example <c>use_karras_sigmas</c>).
    /// </summary>
    /// <param name="name">A UI name ("Euler a", "DPM++ 2M Karras"), a diffusers class name or a .NET class name; see <see cref="KnownNames"/>.</param>
    /// <param name="baseConfig">The configuration to start from.</param>
    /// <exception cref="SchedulerConfigException">The name is unknown (the message lists the known names), or the resulting configuration is malformed.</exception>
    public static DiffusionScheduler Create(string name, SchedulerConfig baseConfig)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(baseConfig);
        return FromConfig(ConfigFor(name, baseConfig));
    }

    /// <summary>
    /// The configuration <see cref="Create"/> builds its scheduler from: <paramref name="baseConfig"/> for the named
    /// class, with the name's defining keys set.
    /// </summary>
    /// <param name="name">A name from <see cref="KnownNames"/>.</param>
    /// <param name="baseConfig">The configuration to start from.</param>
    /// <exception cref="SchedulerConfigException">The name is unknown.</exception>
    public static SchedulerConfig ConfigFor(string name, SchedulerConfig baseConfig)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(baseConfig);
        string key = Normalize(name);
        if (!ByName.TryGetValue(key, out SchedulerAlias? alias))
        {
            string reason = Unavailable.TryGetValue(key, out string? why)
                ? $"Scheduler \"{name}\" is not available: {why}"
                : $"Unknown scheduler \"{name}\".";
            throw new SchedulerConfigException($"{reason} Known names (case-insensitive): {string.Join(", ", KnownNames.Select(n => $"\"{n}\""))}.");
        }

        SchedulerConfig config = baseConfig.WithClassName(alias.ClassName);
        foreach (var (overrideKey, value) in alias.Overrides)
        {
            config = config.With(overrideKey, value);
        }

        return config;
    }

    private static FrozenDictionary<string, SchedulerAlias> BuildNameIndex()
    {
        var index = new Dictionary<string, SchedulerAlias>(StringComparer.OrdinalIgnoreCase);
        foreach (SchedulerClass schedulerClass in Classes)
        {
            var plain = new SchedulerAlias(schedulerClass.DiffusersName, schedulerClass.DiffusersName, []);
            index[schedulerClass.DiffusersName] = plain;
            index[schedulerClass.DotNetName] = plain;
        }

        foreach (SchedulerAlias alias in Aliases)
        {
            index[Normalize(alias.Name)] = alias;
        }

        return index.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);
    }

    // Case-insensitive, with runs of spaces (and underscores, as in "dpmpp_2m"-style spellings of the same names) as one space.
    private static string Normalize(string name) =>
        string.Join(' ', name.Replace('_', ' ').Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    private static SchedulerAlias Alias(string name, string className, params (string Key, object Value)[] overrides) =>
        new(name, className, overrides);

    private sealed record SchedulerClass(string DiffusersName, string DotNetName, Func<SchedulerConfig, DiffusionScheduler> FromConfig);

    private sealed record SchedulerAlias(string Name, string ClassName, IReadOnlyList<(string Key, object Value)> Overrides);
}
