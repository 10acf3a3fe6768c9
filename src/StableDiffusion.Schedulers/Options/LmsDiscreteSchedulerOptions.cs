namespace StableDiffusion.Schedulers;

/// <summary>The configuration of <see cref="LmsDiscreteScheduler"/> (diffusers' <c>LMSDiscreteScheduler</c>), with diffusers' defaults.</summary>
public sealed record LmsDiscreteSchedulerOptions : SchedulerOptions, ITimestepSpacingOptions, ISigmaSpacingOptions
{
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
}
