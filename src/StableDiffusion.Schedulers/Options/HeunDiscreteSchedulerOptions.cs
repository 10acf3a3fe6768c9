namespace StableDiffusion.Schedulers;

/// <summary>The configuration of <see cref="HeunDiscreteScheduler"/> (diffusers' <c>HeunDiscreteScheduler</c>), with diffusers' defaults.</summary>
public sealed record HeunDiscreteSchedulerOptions : SchedulerOptions
{
    internal static readonly ConfigSchema<HeunDiscreteSchedulerOptions> Schema =
        SharedKeys<HeunDiscreteSchedulerOptions>(HeunDiscreteScheduler.DiffusersName, HeunBetaSchedules, ConfigNames.PredictionTypes)
            .Bool("use_karras_sigmas", o => o.UseKarrasSigmas, (o, v) => o with { UseKarrasSigmas = v })
            .Bool("use_exponential_sigmas", o => o.UseExponentialSigmas, (o, v) => o with { UseExponentialSigmas = v })
            .Bool("use_beta_sigmas", o => o.UseBetaSigmas, (o, v) => o with { UseBetaSigmas = v })
            .Bool("clip_sample", o => o.ClipSample, (o, v) => o with { ClipSample = v })
            .Double("clip_sample_range", o => o.ClipSampleRange, (o, v) => o with { ClipSampleRange = v })
            .Enum("timestep_spacing", o => o.TimestepSpacing, (o, v) => o with { TimestepSpacing = v }, ConfigNames.TimestepSpacings)
            .Int("steps_offset", o => o.StepsOffset, (o, v) => o with { StepsOffset = v })
            .NullableDouble("sigma_min", o => o.SigmaMin, (o, v) => o with { SigmaMin = v })
            .NullableDouble("sigma_max", o => o.SigmaMax, (o, v) => o with { SigmaMax = v });

    private static ConfigEnum<BetaSchedule> HeunBetaSchedules =>
        ConfigNames.BetaSchedules.Only(BetaSchedule.Linear, BetaSchedule.ScaledLinear, BetaSchedule.SquaredCosCapV2, BetaSchedule.Exp);

    /// <summary>Creates the options with the class defaults (diffusers' Heun defaults to Stable Diffusion's beta range).</summary>
    public HeunDiscreteSchedulerOptions()
    {
        BetaStart = 0.00085;
        BetaEnd = 0.012;
    }

    /// <inheritdoc cref="EulerDiscreteSchedulerOptions.UseKarrasSigmas"/>
    public bool UseKarrasSigmas { get; init; }

    /// <inheritdoc cref="EulerDiscreteSchedulerOptions.UseExponentialSigmas"/>
    public bool UseExponentialSigmas { get; init; }

    /// <inheritdoc cref="EulerDiscreteSchedulerOptions.UseBetaSigmas"/>
    public bool UseBetaSigmas { get; init; }

    /// <summary>Whether to clamp the predicted original sample to ±<see cref="ClipSampleRange"/> (<c>clip_sample</c>).</summary>
    public bool ClipSample { get; init; }

    /// <inheritdoc cref="DdimSchedulerOptions.ClipSampleRange"/>
    public double ClipSampleRange { get; init; } = 1.0;

    /// <inheritdoc cref="DdimSchedulerOptions.TimestepSpacing"/>
    public TimestepSpacing TimestepSpacing { get; init; } = TimestepSpacing.Linspace;

    /// <inheritdoc cref="DdimSchedulerOptions.StepsOffset"/>
    public int StepsOffset { get; init; }

    /// <summary>
    /// The smallest sigma of Karras, exponential or beta spacing (<c>sigma_min</c>, null for the smallest training sigma).
    /// The class does not declare this key; diffusers reads it when a configuration of another class carries it.
    /// </summary>
    public double? SigmaMin { get; init; }

    /// <summary>The largest sigma of Karras, exponential or beta spacing (<c>sigma_max</c>); see <see cref="SigmaMin"/>.</summary>
    public double? SigmaMax { get; init; }

    private protected override ConfigEnum<BetaSchedule> BetaSchedules => HeunBetaSchedules;

    internal override void Validate(ConfigContext context)
    {
        base.Validate(context);
        ValidateSigmaSpacing(context, UseKarrasSigmas, UseExponentialSigmas, UseBetaSigmas);
    }
}
