using System.Text.Json.Nodes;

namespace StableDiffusion.Schedulers;

/// <summary>
/// The configuration of <see cref="DpmSolverMultistepScheduler"/> (diffusers' <c>DPMSolverMultistepScheduler</c>), with
/// diffusers' defaults: DPM-Solver++ of order 2 ("DPM++ 2M").
/// </summary>
public sealed record DpmSolverMultistepSchedulerOptions : SchedulerOptions
{
    internal static readonly ConfigSchema<DpmSolverMultistepSchedulerOptions> Schema =
        SharedKeys<DpmSolverMultistepSchedulerOptions>(DpmSolverMultistepScheduler.DiffusersName, ConfigNames.StandardBetaSchedules, ConfigNames.PredictionTypes)
            .Int("solver_order", o => o.SolverOrder, (o, v) => o with { SolverOrder = v })
            .Bool("thresholding", o => o.Thresholding, (o, v) => o with { Thresholding = v })
            .Double("dynamic_thresholding_ratio", o => o.DynamicThresholdingRatio, (o, v) => o with { DynamicThresholdingRatio = v })
            .Double("sample_max_value", o => o.SampleMaxValue, (o, v) => o with { SampleMaxValue = v })
            .Enum("algorithm_type", o => o.AlgorithmType, (o, v) => o with { AlgorithmType = v }, ConfigNames.DpmSolverAlgorithms)
            .Enum("solver_type", o => o.SolverType, (o, v) => o with { SolverType = v }, ConfigNames.DpmSolverTypes)
            .Bool("lower_order_final", o => o.LowerOrderFinal, (o, v) => o with { LowerOrderFinal = v })
            .Bool("euler_at_final", o => o.EulerAtFinal, (o, v) => o with { EulerAtFinal = v })
            .Bool("use_karras_sigmas", o => o.UseKarrasSigmas, (o, v) => o with { UseKarrasSigmas = v })
            .Bool("use_exponential_sigmas", o => o.UseExponentialSigmas, (o, v) => o with { UseExponentialSigmas = v })
            .Bool("use_beta_sigmas", o => o.UseBetaSigmas, (o, v) => o with { UseBetaSigmas = v })
            .Bool("use_lu_lambdas", o => o.UseLuLambdas, (o, v) => o with { UseLuLambdas = v })
            .Only("use_flow_sigmas", JsonValue.Create(false), FlowMatchingReason)
            .Ignored("flow_shift")
            .Enum("final_sigmas_type", o => o.FinalSigmasType, (o, v) => o with { FinalSigmasType = v }, ConfigNames.FinalSigmasTypes)
            .Double("lambda_min_clipped", o => o.LambdaMinClipped, (o, v) => o with { LambdaMinClipped = v })
            .Only("variance_type", null, LearnedVarianceReason)
            .Enum("timestep_spacing", o => o.TimestepSpacing, (o, v) => o with { TimestepSpacing = v }, ConfigNames.TimestepSpacings)
            .Int("steps_offset", o => o.StepsOffset, (o, v) => o with { StepsOffset = v })
            .Bool("rescale_betas_zero_snr", o => o.RescaleBetasZeroSnr, (o, v) => o with { RescaleBetasZeroSnr = v })
            .Only("use_dynamic_shifting", JsonValue.Create(false), FlowMatchingReason)
            .Ignored("time_shift_type")
            .NullableDouble("sigma_min", o => o.SigmaMin, (o, v) => o with { SigmaMin = v })
            .NullableDouble("sigma_max", o => o.SigmaMax, (o, v) => o with { SigmaMax = v });

    internal const string FlowMatchingReason = "flow-matching sigmas and dynamic shifting are for flow models (SD3, Flux), outside the scope of this package.";

    internal const string LearnedVarianceReason = "it is for models that also predict their variance, which Stable Diffusion's UNet does not.";

    /// <summary>The solver order (<c>solver_order</c>, 1 to 3): 2 is recommended for guided sampling, 3 for unconditional.</summary>
    public int SolverOrder { get; init; } = 2;

    /// <inheritdoc cref="DdimSchedulerOptions.Thresholding"/>
    public bool Thresholding { get; init; }

    /// <inheritdoc cref="DdimSchedulerOptions.DynamicThresholdingRatio"/>
    public double DynamicThresholdingRatio { get; init; } = 0.995;

    /// <inheritdoc cref="DdimSchedulerOptions.SampleMaxValue"/>
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

    internal override void Validate(ConfigContext context)
    {
        base.Validate(context);
        ValidateSolverOrder(context, SolverOrder, 3);
        ValidateThresholding(context, DynamicThresholdingRatio, SampleMaxValue);
        ValidateSigmaSpacing(context, UseKarrasSigmas, UseExponentialSigmas, UseBetaSigmas);
        if (AlgorithmType is DpmSolverAlgorithmType.DpmSolver or DpmSolverAlgorithmType.SdeDpmSolver && FinalSigmasType == FinalSigmasType.Zero)
        {
            throw context.Contradiction(
                $"\"final_sigmas_type\" \"zero\" is not supported with \"algorithm_type\" \"{ConfigNames.DpmSolverAlgorithms.NameOf(AlgorithmType)}\": use \"sigma_min\" or DPM-Solver++.");
        }
    }
}
