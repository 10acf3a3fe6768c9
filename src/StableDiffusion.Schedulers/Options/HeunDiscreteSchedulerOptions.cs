namespace StableDiffusion.Schedulers;

/// <summary>The configuration of <see cref="HeunDiscreteScheduler"/> (diffusers' <c>HeunDiscreteScheduler</c>), with diffusers' defaults.</summary>
public sealed record HeunDiscreteSchedulerOptions : SchedulerOptions, ITimestepSpacingOptions, ISigmaSpacingOptions, ISampleClippingOptions
{
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

    internal override void DescribeKeys(ConfigKeyRules keys) => keys.Names(
        nameof(BetaSchedule), ConfigNames.BetaSchedules.Only(BetaSchedule.Linear, BetaSchedule.ScaledLinear, BetaSchedule.SquaredCosCapV2, BetaSchedule.Exp));
}
