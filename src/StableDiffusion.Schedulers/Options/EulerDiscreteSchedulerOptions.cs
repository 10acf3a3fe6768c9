namespace StableDiffusion.Schedulers;

/// <summary>The configuration of <see cref="EulerDiscreteScheduler"/> (diffusers' <c>EulerDiscreteScheduler</c>), with diffusers' defaults.</summary>
public sealed record EulerDiscreteSchedulerOptions : SchedulerOptions, ITimestepSpacingOptions, ISigmaSpacingOptions, IZeroTerminalSnrOptions
{
    /// <summary>How the inference sigmas come from the training sigmas (<c>interpolation_type</c>).</summary>
    public InterpolationType InterpolationType { get; init; } = InterpolationType.Linear;

    /// <summary>
    /// Whether to space the sigmas as Karras et al. (2022) do, ρ = 7 (<c>use_karras_sigmas</c>); the timesteps then become
    /// fractional. This is what UIs call "Karras".
    /// </summary>
    public bool UseKarrasSigmas { get; init; }

    /// <summary>Whether to space the sigmas evenly in log space (<c>use_exponential_sigmas</c>).</summary>
    public bool UseExponentialSigmas { get; init; }

    /// <summary>Whether to space the sigmas along a Beta(0.6, 0.6) distribution (<c>use_beta_sigmas</c>, arXiv 2407.12173).</summary>
    public bool UseBetaSigmas { get; init; }

    /// <summary>The smallest sigma of Karras, exponential or beta spacing (<c>sigma_min</c>); null for the smallest training sigma.</summary>
    public double? SigmaMin { get; init; }

    /// <summary>The largest sigma of Karras, exponential or beta spacing (<c>sigma_max</c>); null for the largest training sigma.</summary>
    public double? SigmaMax { get; init; }

    /// <inheritdoc cref="DdimSchedulerOptions.TimestepSpacing"/>
    public TimestepSpacing TimestepSpacing { get; init; } = TimestepSpacing.Linspace;

    /// <summary>What the model is handed as the timestep (<c>timestep_type</c>); continuous applies to v-prediction only.</summary>
    public TimestepType TimestepType { get; init; } = TimestepType.Discrete;

    /// <inheritdoc cref="DdimSchedulerOptions.StepsOffset"/>
    public int StepsOffset { get; init; }

    /// <inheritdoc cref="DdimSchedulerOptions.RescaleBetasZeroSnr"/>
    public bool RescaleBetasZeroSnr { get; init; }

    /// <summary>The sigma the last step ends at (<c>final_sigmas_type</c>).</summary>
    public FinalSigmasType FinalSigmasType { get; init; } = FinalSigmasType.Zero;

    // diffusers' Euler also accepts "original_sample" for "sample".
    internal override void DescribeKeys(ConfigKeyRules keys) =>
        keys.Names(nameof(PredictionType), ConfigNames.PredictionTypes.WithAlias("original_sample", PredictionType.Sample, registered: false));
}
