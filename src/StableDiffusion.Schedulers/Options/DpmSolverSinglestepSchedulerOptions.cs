using System.Text.Json.Nodes;

namespace StableDiffusion.Schedulers;

/// <summary>
/// The configuration of <see cref="DpmSolverSinglestepScheduler"/> (diffusers' <c>DPMSolverSinglestepScheduler</c>), with
/// diffusers' defaults: DPM-Solver++ of order 2 ("DPM++ 2S"). The class always spaces its timesteps linearly.
/// </summary>
public sealed record DpmSolverSinglestepSchedulerOptions : SchedulerOptions
{
    internal static readonly ConfigSchema<DpmSolverSinglestepSchedulerOptions> Schema =
        SharedKeys<DpmSolverSinglestepSchedulerOptions>(DpmSolverSinglestepScheduler.DiffusersName, ConfigNames.StandardBetaSchedules, ConfigNames.PredictionTypes)
            .Int("solver_order", o => o.SolverOrder, (o, v) => o with { SolverOrder = v })
            .Bool("thresholding", o => o.Thresholding, (o, v) => o with { Thresholding = v })
            .Double("dynamic_thresholding_ratio", o => o.DynamicThresholdingRatio, (o, v) => o with { DynamicThresholdingRatio = v })
            .Double("sample_max_value", o => o.SampleMaxValue, (o, v) => o with { SampleMaxValue = v })
            .Enum("algorithm_type", o => o.AlgorithmType, (o, v) => o with { AlgorithmType = v }, SinglestepAlgorithms)
            .Enum("solver_type", o => o.SolverType, (o, v) => o with { SolverType = v }, ConfigNames.DpmSolverTypes)
            .Bool("lower_order_final", o => o.LowerOrderFinal, (o, v) => o with { LowerOrderFinal = v })
            .Bool("use_karras_sigmas", o => o.UseKarrasSigmas, (o, v) => o with { UseKarrasSigmas = v })
            .Bool("use_exponential_sigmas", o => o.UseExponentialSigmas, (o, v) => o with { UseExponentialSigmas = v })
            .Bool("use_beta_sigmas", o => o.UseBetaSigmas, (o, v) => o with { UseBetaSigmas = v })
            .Only("use_flow_sigmas", JsonValue.Create(false), DpmSolverMultistepSchedulerOptions.FlowMatchingReason)
            .Ignored("flow_shift")
            .Enum("final_sigmas_type", o => o.FinalSigmasType, (o, v) => o with { FinalSigmasType = v }, ConfigNames.FinalSigmasTypes)
            .Double("lambda_min_clipped", o => o.LambdaMinClipped, (o, v) => o with { LambdaMinClipped = v })
            .Only("variance_type", null, DpmSolverMultistepSchedulerOptions.LearnedVarianceReason)
            .Only("use_dynamic_shifting", JsonValue.Create(false), DpmSolverMultistepSchedulerOptions.FlowMatchingReason)
            .Ignored("time_shift_type")
            .NullableDouble("sigma_min", o => o.SigmaMin, (o, v) => o with { SigmaMin = v })
            .NullableDouble("sigma_max", o => o.SigmaMax, (o, v) => o with { SigmaMax = v });

    private static ConfigEnum<DpmSolverAlgorithmType> SinglestepAlgorithms => ConfigNames.DpmSolverAlgorithms.Only(
        DpmSolverAlgorithmType.DpmSolver, DpmSolverAlgorithmType.DpmSolverPlusPlus, DpmSolverAlgorithmType.SdeDpmSolverPlusPlus);

    /// <inheritdoc cref="DpmSolverMultistepSchedulerOptions.SolverOrder"/>
    public int SolverOrder { get; init; } = 2;

    /// <inheritdoc cref="DdimSchedulerOptions.Thresholding"/>
    public bool Thresholding { get; init; }

    /// <inheritdoc cref="DdimSchedulerOptions.DynamicThresholdingRatio"/>
    public double DynamicThresholdingRatio { get; init; } = 0.995;

    /// <inheritdoc cref="DdimSchedulerOptions.SampleMaxValue"/>
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

    internal override void Validate(ConfigContext context)
    {
        base.Validate(context);
        ValidateSolverOrder(context, SolverOrder, 3);
        ValidateThresholding(context, DynamicThresholdingRatio, SampleMaxValue);
        ValidateSigmaSpacing(context, UseKarrasSigmas, UseExponentialSigmas, UseBetaSigmas);
        if (!SinglestepAlgorithms.Accepts(AlgorithmType))
        {
            throw context.Contradiction($"\"algorithm_type\" {AlgorithmType} is not implemented by {context.ClassName}.");
        }

        if (AlgorithmType == DpmSolverAlgorithmType.DpmSolver && FinalSigmasType == FinalSigmasType.Zero)
        {
            throw context.Contradiction("\"final_sigmas_type\" \"zero\" is not supported with \"algorithm_type\" \"dpmsolver\": use \"sigma_min\" or DPM-Solver++.");
        }
    }
}
