using System.ComponentModel.DataAnnotations;

namespace StableDiffusion.Schedulers;

/// <summary>
/// The configuration of <see cref="DpmSolverMultistepScheduler"/> (diffusers' <c>DPMSolverMultistepScheduler</c>), with
/// diffusers' defaults: DPM-Solver++ of order 2 ("DPM++ 2M").
/// </summary>
public sealed record DpmSolverMultistepSchedulerOptions : SchedulerOptions, ITimestepSpacingOptions, ISigmaSpacingOptions, IThresholdingOptions, IZeroTerminalSnrOptions
{
    /// <summary>The solver order (<c>solver_order</c>, 1 to 3): 2 is recommended for guided sampling, 3 for unconditional.</summary>
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

    /// <summary>The solver variant (<c>algorithm_type</c>; diffusers maps <c>"deis"</c> to DPM-Solver++).</summary>
    public DpmSolverAlgorithmType AlgorithmType { get; init; } = DpmSolverAlgorithmType.DpmSolverPlusPlus;

    /// <summary>The second-order rule (<c>solver_type</c>; diffusers maps UniPC's and DEIS's names to midpoint).</summary>
    public DpmSolverType SolverType { get; init; } = DpmSolverType.Midpoint;

    /// <summary>
    /// Whether to use lower-order steps at the end (<c>lower_order_final</c>), which stabilises runs of fewer than 15 steps.
    /// </summary>
    public bool LowerOrderFinal { get; init; } = true;

    /// <summary>Whether the last step is a first-order (Euler) step (<c>euler_at_final</c>).</summary>
    public bool EulerAtFinal { get; init; }

    /// <inheritdoc cref="EulerDiscreteSchedulerOptions.UseKarrasSigmas"/>
    public bool UseKarrasSigmas { get; init; }

    /// <inheritdoc cref="EulerDiscreteSchedulerOptions.UseExponentialSigmas"/>
    public bool UseExponentialSigmas { get; init; }

    /// <inheritdoc cref="EulerDiscreteSchedulerOptions.UseBetaSigmas"/>
    public bool UseBetaSigmas { get; init; }

    /// <summary>Whether to space the steps evenly in log-SNR (<c>use_lu_lambdas</c>, Lu et al., DPM-Solver++).</summary>
    public bool UseLuLambdas { get; init; }

    /// <inheritdoc cref="EulerDiscreteSchedulerOptions.FinalSigmasType"/>
    public FinalSigmasType FinalSigmasType { get; init; } = FinalSigmasType.Zero;

    /// <summary>
    /// The smallest log-SNR the timesteps may reach (<c>lambda_min_clipped</c>, default −∞); clipping helps cosine schedules.
    /// </summary>
    public double LambdaMinClipped { get; init; } = double.NegativeInfinity;

    /// <inheritdoc cref="DdimSchedulerOptions.TimestepSpacing"/>
    public TimestepSpacing TimestepSpacing { get; init; } = TimestepSpacing.Linspace;

    /// <inheritdoc cref="DdimSchedulerOptions.StepsOffset"/>
    public int StepsOffset { get; init; }

    /// <inheritdoc cref="DdimSchedulerOptions.RescaleBetasZeroSnr"/>
    public bool RescaleBetasZeroSnr { get; init; }

    /// <inheritdoc cref="HeunDiscreteSchedulerOptions.SigmaMin"/>
    public double? SigmaMin { get; init; }

    /// <inheritdoc cref="HeunDiscreteSchedulerOptions.SigmaMax"/>
    public double? SigmaMax { get; init; }

    internal override void DescribeKeys(ConfigKeyRules keys) =>
        keys.RejectFlowMatching().Only("variance_type", null, ConfigKeyRules.LearnedVariance);

    internal override void Validate(ConfigContext context)
    {
        base.Validate(context);
        if (AlgorithmType is DpmSolverAlgorithmType.DpmSolver or DpmSolverAlgorithmType.SdeDpmSolver && FinalSigmasType == FinalSigmasType.Zero)
        {
            throw context.Contradiction(
                $"\"final_sigmas_type\" \"zero\" is not supported with \"algorithm_type\" \"{ConfigNames.DpmSolverAlgorithms.NameOf(AlgorithmType)}\": use \"sigma_min\" or DPM-Solver++.");
        }

        if (AlgorithmType == DpmSolverAlgorithmType.SdeDpmSolver && SolverOrder == 3)
        {
            throw context.Contradiction(
                "\"algorithm_type\" \"sde-dpmsolver\" has no third-order update in diffusers: use \"solver_order\" 1 or 2, or \"sde-dpmsolver++\".");
        }
    }
}
