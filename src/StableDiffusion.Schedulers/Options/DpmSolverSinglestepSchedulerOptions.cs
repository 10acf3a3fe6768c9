using System.ComponentModel.DataAnnotations;

namespace StableDiffusion.Schedulers;

/// <summary>
/// The configuration of <see cref="DpmSolverSinglestepScheduler"/> (diffusers' <c>DPMSolverSinglestepScheduler</c>), with
/// diffusers' defaults: DPM-Solver++ of order 2 ("DPM++ 2S"). The class always spaces its timesteps linearly.
/// </summary>
public sealed record DpmSolverSinglestepSchedulerOptions : SchedulerOptions, ISigmaSpacingOptions, IThresholdingOptions
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

    /// <summary>The solver variant (<c>algorithm_type</c>; the singlestep solver has no <c>"sde-dpmsolver"</c>).</summary>
    public DpmSolverAlgorithmType AlgorithmType { get; init; } = DpmSolverAlgorithmType.DpmSolverPlusPlus;

    /// <inheritdoc cref="DpmSolverMultistepSchedulerOptions.SolverType"/>
    public DpmSolverType SolverType { get; init; } = DpmSolverType.Midpoint;

    /// <summary>
    /// Whether to use lower-order steps at the end (<c>lower_order_final</c>, default false). diffusers turns it on at
    /// <c>set_timesteps</c> when the steps do not divide by the order or the final sigma is zero, as this class does.
    /// </summary>
    public bool LowerOrderFinal { get; init; }

    /// <inheritdoc cref="EulerDiscreteSchedulerOptions.UseKarrasSigmas"/>
    public bool UseKarrasSigmas { get; init; }

    /// <inheritdoc cref="EulerDiscreteSchedulerOptions.UseExponentialSigmas"/>
    public bool UseExponentialSigmas { get; init; }

    /// <inheritdoc cref="EulerDiscreteSchedulerOptions.UseBetaSigmas"/>
    public bool UseBetaSigmas { get; init; }

    /// <inheritdoc cref="EulerDiscreteSchedulerOptions.FinalSigmasType"/>
    public FinalSigmasType FinalSigmasType { get; init; } = FinalSigmasType.Zero;

    /// <inheritdoc cref="DpmSolverMultistepSchedulerOptions.LambdaMinClipped"/>
    public double LambdaMinClipped { get; init; } = double.NegativeInfinity;

    /// <inheritdoc cref="HeunDiscreteSchedulerOptions.SigmaMin"/>
    public double? SigmaMin { get; init; }

    /// <inheritdoc cref="HeunDiscreteSchedulerOptions.SigmaMax"/>
    public double? SigmaMax { get; init; }

    internal override void DescribeKeys(ConfigKeyRules keys) => keys
        .Names(
            nameof(AlgorithmType),
            ConfigNames.DpmSolverAlgorithms.Only(DpmSolverAlgorithmType.DpmSolver, DpmSolverAlgorithmType.DpmSolverPlusPlus, DpmSolverAlgorithmType.SdeDpmSolverPlusPlus))
        .RejectFlowMatching()
        .Only("variance_type", null, ConfigKeyRules.LearnedVariance);

    internal override void Validate(ConfigContext context)
    {
        base.Validate(context);
        context.RequireImplemented(nameof(AlgorithmType), AlgorithmType);
        if (AlgorithmType == DpmSolverAlgorithmType.DpmSolver && FinalSigmasType == FinalSigmasType.Zero)
        {
            throw context.Contradiction("\"final_sigmas_type\" \"zero\" is not supported with \"algorithm_type\" \"dpmsolver\": use \"sigma_min\" or DPM-Solver++.");
        }
    }
}
