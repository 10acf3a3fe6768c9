namespace StableDiffusion.Schedulers;

/// <summary>
/// The configuration keys of the two KDPM2 schedulers (<see cref="KDpm2DiscreteSchedulerOptions"/> and
/// <see cref="KDpm2AncestralDiscreteSchedulerOptions"/>), with diffusers' defaults, which are Stable Diffusion's beta range.
/// </summary>
public abstract record KDpm2SchedulerOptions : SchedulerOptions, ITimestepSpacingOptions, ISigmaSpacingOptions
{
    private protected KDpm2SchedulerOptions()
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
}
