using System.Text.Json.Nodes;

namespace StableDiffusion.Schedulers;

/// <summary>
/// The configuration of <see cref="DeisMultistepScheduler"/> (diffusers' <c>DEISMultistepScheduler</c>), with diffusers'
/// defaults: log-ρ DEIS of order 2.
/// </summary>
public sealed record DeisMultistepSchedulerOptions : SchedulerOptions
{
    internal static readonly ConfigSchema<DeisMultistepSchedulerOptions> Schema =
        SharedKeys<DeisMultistepSchedulerOptions>(DeisMultistepScheduler.DiffusersName, ConfigNames.StandardBetaSchedules, ConfigNames.PredictionTypes)
            .Int("solver_order", o => o.SolverOrder, (o, v) => o with { SolverOrder = v })
            .Bool("thresholding", o => o.Thresholding, (o, v) => o with { Thresholding = v })
            .Double("dynamic_thresholding_ratio", o => o.DynamicThresholdingRatio, (o, v) => o with { DynamicThresholdingRatio = v })
            .Double("sample_max_value", o => o.SampleMaxValue, (o, v) => o with { SampleMaxValue = v })
            // DEIS implements only log-rho DEIS; diffusers maps the DPM-Solver and UniPC names onto it.
            .OneOf("algorithm_type", "deis", "dpmsolver", "dpmsolver++")
            .OneOf("solver_type", "logrho", "midpoint", "heun", "bh1", "bh2")
            .Bool("lower_order_final", o => o.LowerOrderFinal, (o, v) => o with { LowerOrderFinal = v })
            .Bool("use_karras_sigmas", o => o.UseKarrasSigmas, (o, v) => o with { UseKarrasSigmas = v })
            .Bool("use_exponential_sigmas", o => o.UseExponentialSigmas, (o, v) => o with { UseExponentialSigmas = v })
            .Bool("use_beta_sigmas", o => o.UseBetaSigmas, (o, v) => o with { UseBetaSigmas = v })
            .Only("use_flow_sigmas", JsonValue.Create(false), DpmSolverMultistepSchedulerOptions.FlowMatchingReason)
            .Ignored("flow_shift")
            .Enum("timestep_spacing", o => o.TimestepSpacing, (o, v) => o with { TimestepSpacing = v }, ConfigNames.TimestepSpacings)
            .Int("steps_offset", o => o.StepsOffset, (o, v) => o with { StepsOffset = v })
            .Only("use_dynamic_shifting", JsonValue.Create(false), DpmSolverMultistepSchedulerOptions.FlowMatchingReason)
            .Ignored("time_shift_type")
            .NullableDouble("sigma_min", o => o.SigmaMin, (o, v) => o with { SigmaMin = v })
            .NullableDouble("sigma_max", o => o.SigmaMax, (o, v) => o with { SigmaMax = v });

    /// <inheritdoc cref="DpmSolverMultistepSchedulerOptions.SolverOrder"/>
    public int SolverOrder { get; init; } = 2;

    /// <inheritdoc cref="DdimSchedulerOptions.Thresholding"/>
    public bool Thresholding { get; init; }

    /// <inheritdoc cref="DdimSchedulerOptions.DynamicThresholdingRatio"/>
    public double DynamicThresholdingRatio { get; init; } = 0.995;

    /// <inheritdoc cref="DdimSchedulerOptions.SampleMaxValue"/>
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

    internal override void Validate(ConfigContext context)
    {
        base.Validate(context);
        ValidateSolverOrder(context, SolverOrder, 3);
        ValidateThresholding(context, DynamicThresholdingRatio, SampleMaxValue);
        ValidateSigmaSpacing(context, UseKarrasSigmas, UseExponentialSigmas, UseBetaSigmas);
    }
}
