namespace StableDiffusion.Schedulers;

/// <summary>The configuration of <see cref="LmsDiscreteScheduler"/> (diffusers' <c>LMSDiscreteScheduler</c>), with diffusers' defaults.</summary>
public sealed record LmsDiscreteSchedulerOptions : SchedulerOptions
{
    internal static readonly ConfigSchema<LmsDiscreteSchedulerOptions> Schema =
        SharedKeys<LmsDiscreteSchedulerOptions>(LmsDiscreteScheduler.DiffusersName, ConfigNames.StandardBetaSchedules, ConfigNames.PredictionTypes)
            .Bool("use_karras_sigmas", o => o.UseKarrasSigmas, (o, v) => o with { UseKarrasSigmas = v })
            .Bool("use_exponential_sigmas", o => o.UseExponentialSigmas, (o, v) => o with { UseExponentialSigmas = v })
            .Bool("use_beta_sigmas", o => o.UseBetaSigmas, (o, v) => o with { UseBetaSigmas = v })
            .Enum("timestep_spacing", o => o.TimestepSpacing, (o, v) => o with { TimestepSpacing = v }, ConfigNames.TimestepSpacings)
            .Int("steps_offset", o => o.StepsOffset, (o, v) => o with { StepsOffset = v })
            .NullableDouble("sigma_min", o => o.SigmaMin, (o, v) => o with { SigmaMin = v })
            .NullableDouble("sigma_max", o => o.SigmaMax, (o, v) => o with { SigmaMax = v });

    /// <inheritdoc cref="EulerDiscreteSchedulerOptions.UseKarrasSigmas"/>
    public bool UseKarrasSigmas { get; init; }

    /// <inheritdoc cref="EulerDiscreteSchedulerOptions.UseExponentialSigmas"/>
    public bool UseExponentialSigmas { get; init; }

    /// <inheritdoc cref="EulerDiscreteSchedulerOptions.UseBetaSigmas"/>
    public bool UseBetaSigmas { get; init; }

    /// <inheritdoc cref="DdimSchedulerOptions.TimestepSpacing"/>
    public TimestepSpacing TimestepSpacing { get; init; } = TimestepSpacing.Linspace;

    /// <inheritdoc cref="DdimSchedulerOptions.StepsOffset"/>
    public int StepsOffset { get; init; }

    /// <summary>
    /// The smallest sigma of exponential or beta spacing (<c>sigma_min</c>, null for the smallest training sigma). The class
    /// does not declare this key; diffusers reads it when a configuration of another class carries it. Karras spacing
    /// ignores it here.
    /// </summary>
    public double? SigmaMin { get; init; }

    /// <summary>The largest sigma of exponential or beta spacing (<c>sigma_max</c>); see <see cref="SigmaMin"/>.</summary>
    public double? SigmaMax { get; init; }

    internal override void Validate(ConfigContext context)
    {
        base.Validate(context);
        ValidateSigmaSpacing(context, UseKarrasSigmas, UseExponentialSigmas, UseBetaSigmas);
    }
}
