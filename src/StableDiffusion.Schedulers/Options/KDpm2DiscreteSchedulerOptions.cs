namespace StableDiffusion.Schedulers;

/// <summary>The configuration of <see cref="KDpm2DiscreteScheduler"/> (diffusers' <c>KDPM2DiscreteScheduler</c>), with diffusers' defaults.</summary>
public sealed record KDpm2DiscreteSchedulerOptions : SchedulerOptions, ITimestepSpacingOptions, ISigmaSpacingOptions
{
    /// <summary>Creates the options with the class defaults (diffusers' KDPM2 defaults to Stable Diffusion's beta range).</summary>
    public KDpm2DiscreteSchedulerOptions()
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

    internal override void DescribeKeys(ConfigKeyRules keys) =>
        keys.Names(nameof(PredictionType), ConfigNames.PredictionTypesWithoutSample(KDpm2DiscreteScheduler.DiffusersName));
}
