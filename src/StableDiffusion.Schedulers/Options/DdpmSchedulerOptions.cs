namespace StableDiffusion.Schedulers;

/// <summary>The configuration of <see cref="DdpmScheduler"/> (diffusers' <c>DDPMScheduler</c>), with diffusers' defaults.</summary>
public sealed record DdpmSchedulerOptions : SchedulerOptions
{
    internal static readonly ConfigSchema<DdpmSchedulerOptions> Schema =
        SharedKeys<DdpmSchedulerOptions>(DdpmScheduler.DiffusersName, DdpmBetaSchedules, ConfigNames.PredictionTypes)
            .Enum("variance_type", o => o.VarianceType, (o, v) => o with { VarianceType = v }, ConfigNames.DdpmVarianceTypes)
            .Bool("clip_sample", o => o.ClipSample, (o, v) => o with { ClipSample = v })
            .Bool("thresholding", o => o.Thresholding, (o, v) => o with { Thresholding = v })
            .Double("dynamic_thresholding_ratio", o => o.DynamicThresholdingRatio, (o, v) => o with { DynamicThresholdingRatio = v })
            .Double("clip_sample_range", o => o.ClipSampleRange, (o, v) => o with { ClipSampleRange = v })
            .Double("sample_max_value", o => o.SampleMaxValue, (o, v) => o with { SampleMaxValue = v })
            .Enum("timestep_spacing", o => o.TimestepSpacing, (o, v) => o with { TimestepSpacing = v }, ConfigNames.TimestepSpacings)
            .Int("steps_offset", o => o.StepsOffset, (o, v) => o with { StepsOffset = v })
            .Bool("rescale_betas_zero_snr", o => o.RescaleBetasZeroSnr, (o, v) => o with { RescaleBetasZeroSnr = v });

    private static ConfigEnum<BetaSchedule> DdpmBetaSchedules =>
        ConfigNames.BetaSchedules.Only(BetaSchedule.Linear, BetaSchedule.ScaledLinear, BetaSchedule.SquaredCosCapV2, BetaSchedule.Laplace, BetaSchedule.Sigmoid);

    /// <summary>The variance of the noise added at each step (<c>variance_type</c>).</summary>
    public DdpmVarianceType VarianceType { get; init; } = DdpmVarianceType.FixedSmall;

    /// <inheritdoc cref="DdimSchedulerOptions.ClipSample"/>
    public bool ClipSample { get; init; } = true;

    /// <inheritdoc cref="DdimSchedulerOptions.Thresholding"/>
    public bool Thresholding { get; init; }

    /// <inheritdoc cref="DdimSchedulerOptions.DynamicThresholdingRatio"/>
    public double DynamicThresholdingRatio { get; init; } = 0.995;

    /// <inheritdoc cref="DdimSchedulerOptions.ClipSampleRange"/>
    public double ClipSampleRange { get; init; } = 1.0;

    /// <inheritdoc cref="DdimSchedulerOptions.SampleMaxValue"/>
    public double SampleMaxValue { get; init; } = 1.0;

    /// <inheritdoc cref="DdimSchedulerOptions.TimestepSpacing"/>
    public TimestepSpacing TimestepSpacing { get; init; } = TimestepSpacing.Leading;

    /// <inheritdoc cref="DdimSchedulerOptions.StepsOffset"/>
    public int StepsOffset { get; init; }

    /// <inheritdoc cref="DdimSchedulerOptions.RescaleBetasZeroSnr"/>
    public bool RescaleBetasZeroSnr { get; init; }

    private protected override ConfigEnum<BetaSchedule> BetaSchedules => DdpmBetaSchedules;

    internal override void Validate(ConfigContext context)
    {
        base.Validate(context);
        ValidateThresholding(context, DynamicThresholdingRatio, SampleMaxValue);
    }
}
