namespace StableDiffusion.Schedulers;

/// <summary>
/// The configuration of <see cref="EulerAncestralDiscreteScheduler"/> (diffusers' <c>EulerAncestralDiscreteScheduler</c>),
/// with diffusers' defaults.
/// </summary>
public sealed record EulerAncestralDiscreteSchedulerOptions : SchedulerOptions, ITimestepSpacingOptions, IZeroTerminalSnrOptions
{
    /// <inheritdoc cref="DdimSchedulerOptions.TimestepSpacing"/>
    public TimestepSpacing TimestepSpacing { get; init; } = TimestepSpacing.Linspace;

    /// <inheritdoc cref="DdimSchedulerOptions.StepsOffset"/>
    public int StepsOffset { get; init; }

    /// <inheritdoc cref="DdimSchedulerOptions.RescaleBetasZeroSnr"/>
    public bool RescaleBetasZeroSnr { get; init; }

    internal override void DescribeKeys(ConfigKeyRules keys) =>
        keys.Names(nameof(PredictionType), ConfigNames.PredictionTypesWithoutSample(EulerAncestralDiscreteScheduler.DiffusersName));
}
