using System.ComponentModel.DataAnnotations;

namespace StableDiffusion.Schedulers;

/// <summary>The configuration of <see cref="DdpmScheduler"/> (diffusers' <c>DDPMScheduler</c>), with diffusers' defaults.</summary>
public sealed record DdpmSchedulerOptions : SchedulerOptions, ITimestepSpacingOptions, IThresholdingOptions, ISampleClippingOptions, IZeroTerminalSnrOptions
{
    /// <summary>The variance of the noise added at each step (<c>variance_type</c>).</summary>
    public DdpmVarianceType VarianceType { get; init; } = DdpmVarianceType.FixedSmall;

    /// <inheritdoc cref="DdimSchedulerOptions.ClipSample"/>
    public bool ClipSample { get; init; } = true;

    /// <inheritdoc cref="DdimSchedulerOptions.Thresholding"/>
    public bool Thresholding { get; init; }

    /// <inheritdoc cref="DdimSchedulerOptions.DynamicThresholdingRatio"/>
    [Range(0.0, 1.0)]
    public double DynamicThresholdingRatio { get; init; } = 0.995;

    /// <inheritdoc cref="DdimSchedulerOptions.ClipSampleRange"/>
    public double ClipSampleRange { get; init; } = 1.0;

    /// <inheritdoc cref="DdimSchedulerOptions.SampleMaxValue"/>
    [Range(0.0, double.PositiveInfinity, MinimumIsExclusive = true)]
    public double SampleMaxValue { get; init; } = 1.0;

    /// <inheritdoc cref="DdimSchedulerOptions.TimestepSpacing"/>
    public TimestepSpacing TimestepSpacing { get; init; } = TimestepSpacing.Leading;

    /// <inheritdoc cref="DdimSchedulerOptions.StepsOffset"/>
    public int StepsOffset { get; init; }

    /// <inheritdoc cref="DdimSchedulerOptions.RescaleBetasZeroSnr"/>
    public bool RescaleBetasZeroSnr { get; init; }

    internal override void DescribeKeys(ConfigKeyRules keys) => keys.Names(
        nameof(BetaSchedule),
        ConfigNames.BetaSchedules.Only(BetaSchedule.Linear, BetaSchedule.ScaledLinear, BetaSchedule.SquaredCosCapV2, BetaSchedule.Laplace, BetaSchedule.Sigmoid));
}
