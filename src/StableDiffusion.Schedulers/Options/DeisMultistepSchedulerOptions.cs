using System.ComponentModel.DataAnnotations;

namespace StableDiffusion.Schedulers;

/// <summary>
/// The configuration of <see cref="DeisMultistepScheduler"/> (diffusers' <c>DEISMultistepScheduler</c>), with diffusers'
/// defaults: log-ρ DEIS of order 2.
/// </summary>
public sealed record DeisMultistepSchedulerOptions : SchedulerOptions, ITimestepSpacingOptions, ISigmaSpacingOptions, IThresholdingOptions
{
    /// <inheritdoc cref="DpmSolverMultistepSchedulerOptions.SolverOrder"/>
    [Range(1, 3)]
    public int SolverOrder { get; init; } = 2;

    /// <inheritdoc cref="DdimSchedulerOptions.Thresholding"/>
    public bool Thresholding { get; init; }

    /// <inheritdoc cref="DdimSchedulerOptions.DynamicThresholdingRatio"/>
    [Range(0.0, 1.0)]
    public double DynamicThresholdingRatio { get; init; } = 0.995;

    /// <inheritdoc cref="DdimSchedulerOptions.SampleMaxValue"/>
    [Range(0.0, double.PositiveInfinity, MinimumIsExclusive = true)]
    public double SampleMaxValue { get; init; } = 1.0;

    /// <inheritdoc cref="DpmSolverMultistepSchedulerOptions.LowerOrderFinal"/>
    public bool LowerOrderFinal { get; init; } = true;

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

    // DEIS implements only log-rho DEIS; diffusers maps the DPM-Solver and UniPC names onto it.
    internal override void DescribeKeys(ConfigKeyRules keys) => keys
        .OneOf("algorithm_type", "deis", "dpmsolver", "dpmsolver++")
        .OneOf("solver_type", "logrho", "midpoint", "heun", "bh1", "bh2")
        .RejectFlowMatching();
}
