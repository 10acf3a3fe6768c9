namespace StableDiffusion.Schedulers;

/// <summary>
/// The configuration of <see cref="EulerAncestralDiscreteScheduler"/> (diffusers' <c>EulerAncestralDiscreteScheduler</c>),
/// with diffusers' defaults.
/// </summary>
public sealed record EulerAncestralDiscreteSchedulerOptions : SchedulerOptions
{
    internal static readonly ConfigSchema<EulerAncestralDiscreteSchedulerOptions> Schema =
        SharedKeys<EulerAncestralDiscreteSchedulerOptions>(EulerAncestralDiscreteScheduler.DiffusersName, ConfigNames.StandardBetaSchedules, AncestralPredictionTypes)
            .Enum("timestep_spacing", o => o.TimestepSpacing, (o, v) => o with { TimestepSpacing = v }, ConfigNames.TimestepSpacings)
            .Int("steps_offset", o => o.StepsOffset, (o, v) => o with { StepsOffset = v })
            .Bool("rescale_betas_zero_snr", o => o.RescaleBetasZeroSnr, (o, v) => o with { RescaleBetasZeroSnr = v });

    // diffusers raises NotImplementedError for "sample" at the first step.
    private static ConfigEnum<PredictionType> AncestralPredictionTypes => ConfigNames.PredictionTypes
        .Only(PredictionType.Epsilon, PredictionType.VPrediction)
        .WithUnsupported("sample", "diffusers' EulerAncestralDiscreteScheduler does not implement it.");

    /// <inheritdoc cref="DdimSchedulerOptions.TimestepSpacing"/>
    public TimestepSpacing TimestepSpacing { get; init; } = TimestepSpacing.Linspace;

    /// <inheritdoc cref="DdimSchedulerOptions.StepsOffset"/>
    public int StepsOffset { get; init; }

    /// <inheritdoc cref="DdimSchedulerOptions.RescaleBetasZeroSnr"/>
    public bool RescaleBetasZeroSnr { get; init; }

    private protected override ConfigEnum<PredictionType> PredictionTypes => AncestralPredictionTypes;
}
