namespace StableDiffusion.Schedulers;

/// <summary>The configuration of <see cref="PndmScheduler"/> (diffusers' <c>PNDMScheduler</c>), with diffusers' defaults.</summary>
public sealed record PndmSchedulerOptions : SchedulerOptions
{
    internal static readonly ConfigSchema<PndmSchedulerOptions> Schema =
        SharedKeys<PndmSchedulerOptions>(PndmScheduler.DiffusersName, ConfigNames.StandardBetaSchedules, PndmPredictionTypes)
            .Bool("skip_prk_steps", o => o.SkipPrkSteps, (o, v) => o with { SkipPrkSteps = v })
            .Bool("set_alpha_to_one", o => o.SetAlphaToOne, (o, v) => o with { SetAlphaToOne = v })
            .Enum("timestep_spacing", o => o.TimestepSpacing, (o, v) => o with { TimestepSpacing = v }, ConfigNames.TimestepSpacings)
            .Int("steps_offset", o => o.StepsOffset, (o, v) => o with { StepsOffset = v });

    private static ConfigEnum<PredictionType> PndmPredictionTypes => ConfigNames.PredictionTypes.Only(PredictionType.Epsilon, PredictionType.VPrediction);

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

    private protected override ConfigEnum<PredictionType> PredictionTypes => PndmPredictionTypes;
}
