namespace StableDiffusion.Schedulers;

/// <summary>The configuration of <see cref="KDpm2AncestralDiscreteScheduler"/> (diffusers' <c>KDPM2AncestralDiscreteScheduler</c>), with diffusers' defaults.</summary>
public sealed record KDpm2AncestralDiscreteSchedulerOptions : SchedulerOptions
{
    internal static readonly ConfigSchema<KDpm2AncestralDiscreteSchedulerOptions> Schema =
        SharedKeys<KDpm2AncestralDiscreteSchedulerOptions>(KDpm2AncestralDiscreteScheduler.DiffusersName, ConfigNames.StandardBetaSchedules, KDpm2PredictionTypes)
            .Bool("use_karras_sigmas", o => o.UseKarrasSigmas, (o, v) => o with { UseKarrasSigmas = v })
            .Bool("use_exponential_sigmas", o => o.UseExponentialSigmas, (o, v) => o with { UseExponentialSigmas = v })
            .Bool("use_beta_sigmas", o => o.UseBetaSigmas, (o, v) => o with { UseBetaSigmas = v })
            .Enum("timestep_spacing", o => o.TimestepSpacing, (o, v) => o with { TimestepSpacing = v }, ConfigNames.TimestepSpacings)
            .Int("steps_offset", o => o.StepsOffset, (o, v) => o with { StepsOffset = v })
            .NullableDouble("sigma_min", o => o.SigmaMin, (o, v) => o with { SigmaMin = v })
            .NullableDouble("sigma_max", o => o.SigmaMax, (o, v) => o with { SigmaMax = v });

    // diffusers raises NotImplementedError for "sample" at the first step.
    private static ConfigEnum<PredictionType> KDpm2PredictionTypes => ConfigNames.PredictionTypes
        .Only(PredictionType.Epsilon, PredictionType.VPrediction)
        .WithUnsupported("sample", "diffusers' KDPM2AncestralDiscreteScheduler does not implement it.");

    /// <summary>Creates the options with the class defaults (diffusers' KDPM2 defaults to Stable Diffusion's beta range).</summary>
    public KDpm2AncestralDiscreteSchedulerOptions()
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

    /// <inheritdoc cref="DdimSchedulerOptions.TimestepSpacing"/>
    public TimestepSpacing TimestepSpacing { get; init; } = TimestepSpacing.Linspace;

    /// <inheritdoc cref="DdimSchedulerOptions.StepsOffset"/>
    public int StepsOffset { get; init; }

    /// <inheritdoc cref="HeunDiscreteSchedulerOptions.SigmaMin"/>
    public double? SigmaMin { get; init; }

    /// <inheritdoc cref="HeunDiscreteSchedulerOptions.SigmaMax"/>
    public double? SigmaMax { get; init; }

    private protected override ConfigEnum<PredictionType> PredictionTypes => KDpm2PredictionTypes;

    internal override void Validate(ConfigContext context)
    {
        base.Validate(context);
        ValidateSigmaSpacing(context, UseKarrasSigmas, UseExponentialSigmas, UseBetaSigmas);
    }
}
