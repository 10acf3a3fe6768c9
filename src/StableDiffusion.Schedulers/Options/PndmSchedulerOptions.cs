namespace StableDiffusion.Schedulers;

/// <summary>The configuration of <see cref="PndmScheduler"/> (diffusers' <c>PNDMScheduler</c>), with diffusers' defaults.</summary>
public sealed record PndmSchedulerOptions : SchedulerOptions, ITimestepSpacingOptions
{
    /// <summary>
    /// Whether to skip the Runge-Kutta warm-up and run pseudo linear multistep (PLMS) from the first step (<c>skip_prk_steps</c>;
    /// Stable Diffusion 1.x sets it). Without it the first three solver steps take four model evaluations each.
    /// </summary>
    public bool SkipPrkSteps { get; init; }

    /// <inheritdoc cref="DdimSchedulerOptions.SetAlphaToOne"/>
    public bool SetAlphaToOne { get; init; }

    /// <inheritdoc cref="DdimSchedulerOptions.TimestepSpacing"/>
    public TimestepSpacing TimestepSpacing { get; init; } = TimestepSpacing.Leading;

    /// <inheritdoc cref="DdimSchedulerOptions.StepsOffset"/>
    public int StepsOffset { get; init; }

    internal override void DescribeKeys(ConfigKeyRules keys) =>
        keys.Names(nameof(PredictionType), ConfigNames.PredictionTypes.Only(PredictionType.Epsilon, PredictionType.VPrediction));
}
