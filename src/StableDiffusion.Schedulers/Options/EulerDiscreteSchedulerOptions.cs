namespace StableDiffusion.Schedulers;

/// <summary>The configuration of <see cref="EulerDiscreteScheduler"/> (diffusers' <c>EulerDiscreteScheduler</c>), with diffusers' defaults.</summary>
public sealed record EulerDiscreteSchedulerOptions : SchedulerOptions
{
    internal static readonly ConfigSchema<EulerDiscreteSchedulerOptions> Schema =
        SharedKeys<EulerDiscreteSchedulerOptions>(EulerDiscreteScheduler.DiffusersName, ConfigNames.StandardBetaSchedules, EulerPredictionTypes)
            .Enum("interpolation_type", o => o.InterpolationType, (o, v) => o with { InterpolationType = v }, ConfigNames.InterpolationTypes)
            .Bool("use_karras_sigmas", o => o.UseKarrasSigmas, (o, v) => o with { UseKarrasSigmas = v })
            .Bool("use_exponential_sigmas", o => o.UseExponentialSigmas, (o, v) => o with { UseExponentialSigmas = v })
            .Bool("use_beta_sigmas", o => o.UseBetaSigmas, (o, v) => o with { UseBetaSigmas = v })
            .NullableDouble("sigma_min", o => o.SigmaMin, (o, v) => o with { SigmaMin = v })
            .NullableDouble("sigma_max", o => o.SigmaMax, (o, v) => o with { SigmaMax = v })
            .Enum("timestep_spacing", o => o.TimestepSpacing, (o, v) => o with { TimestepSpacing = v }, ConfigNames.TimestepSpacings)
            .Enum("timestep_type", o => o.TimestepType, (o, v) => o with { TimestepType = v }, ConfigNames.TimestepTypes)
            .Int("steps_offset", o => o.StepsOffset, (o, v) => o with { StepsOffset = v })
            .Bool("rescale_betas_zero_snr", o => o.RescaleBetasZeroSnr, (o, v) => o with { RescaleBetasZeroSnr = v })
            .Enum("final_sigmas_type", o => o.FinalSigmasType, (o, v) => o with { FinalSigmasType = v }, ConfigNames.FinalSigmasTypes);

    // diffusers' Euler also accepts "original_sample" for "sample".
    private static ConfigEnum<PredictionType> EulerPredictionTypes => ConfigNames.PredictionTypes.WithAlias("original_sample", PredictionType.Sample, registered: false);

    /// <summary>How the inference sigmas come from the training sigmas (<c>interpolation_type</c>).</summary>
    public InterpolationType InterpolationType { get; init; } = InterpolationType.Linear;

    /// <summary>
    /// Whether to space the sigmas as Karras et al. (2022) do, ρ = 7 (<c>use_karras_sigmas</c>); the timesteps then become
    /// fractional. This is what UIs call "Karras".
    /// </summary>
    public bool UseKarrasSigmas { get; init; }

    /// <summary>Whether to space the sigmas evenly in log space (<c>use_exponential_sigmas</c>).</summary>
    public bool UseExponentialSigmas { get; init; }

    /// <summary>Whether to space the sigmas along a Beta(0.6, 0.6) distribution (<c>use_beta_sigmas</c>, arXiv 2407.12173).</summary>
    public bool UseBetaSigmas { get; init; }

    /// <summary>The smallest sigma of Karras, exponential or beta spacing (<c>sigma_min</c>); null for the smallest training sigma.</summary>
    public double? SigmaMin { get; init; }

    /// <summary>The largest sigma of Karras, exponential or beta spacing (<c>sigma_max</c>); null for the largest training sigma.</summary>
    public double? SigmaMax { get; init; }

    /// <inheritdoc cref="DdimSchedulerOptions.TimestepSpacing"/>
    public TimestepSpacing TimestepSpacing { get; init; } = TimestepSpacing.Linspace;

    /// <summary>What the model is handed as the timestep (<c>timestep_type</c>); continuous applies to v-prediction only.</summary>
    public TimestepType TimestepType { get; init; } = TimestepType.Discrete;

    /// <inheritdoc cref="DdimSchedulerOptions.StepsOffset"/>
    public int StepsOffset { get; init; }

    /// <inheritdoc cref="DdimSchedulerOptions.RescaleBetasZeroSnr"/>
    public bool RescaleBetasZeroSnr { get; init; }

    /// <summary>The sigma the last step ends at (<c>final_sigmas_type</c>).</summary>
    public FinalSigmasType FinalSigmasType { get; init; } = FinalSigmasType.Zero;

    private protected override ConfigEnum<PredictionType> PredictionTypes => EulerPredictionTypes;

    internal override void Validate(ConfigContext context)
    {
        base.Validate(context);
        ValidateSigmaSpacing(context, UseKarrasSigmas, UseExponentialSigmas, UseBetaSigmas);
    }
}
