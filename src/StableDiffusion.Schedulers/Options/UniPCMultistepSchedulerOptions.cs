using System.Text.Json.Nodes;

namespace StableDiffusion.Schedulers;

/// <summary>
/// The configuration of <see cref="UniPCMultistepScheduler"/> (diffusers' <c>UniPCMultistepScheduler</c>), with diffusers'
/// defaults: UniPC with B(h) = e^h − 1, order 2, corrector on every step.
/// </summary>
public sealed record UniPCMultistepSchedulerOptions : SchedulerOptions
{
    internal static readonly ConfigSchema<UniPCMultistepSchedulerOptions> Schema =
        SharedKeys<UniPCMultistepSchedulerOptions>(UniPCMultistepScheduler.DiffusersName, ConfigNames.StandardBetaSchedules, ConfigNames.PredictionTypes)
            .Int("solver_order", o => o.SolverOrder, (o, v) => o with { SolverOrder = v })
            .Bool("thresholding", o => o.Thresholding, (o, v) => o with { Thresholding = v })
            .Double("dynamic_thresholding_ratio", o => o.DynamicThresholdingRatio, (o, v) => o with { DynamicThresholdingRatio = v })
            .Double("sample_max_value", o => o.SampleMaxValue, (o, v) => o with { SampleMaxValue = v })
            .Bool("predict_x0", o => o.PredictX0, (o, v) => o with { PredictX0 = v })
            .Enum("solver_type", o => o.SolverType, (o, v) => o with { SolverType = v }, ConfigNames.UniPCSolverTypes)
            .Bool("lower_order_final", o => o.LowerOrderFinal, (o, v) => o with { LowerOrderFinal = v })
            .IntList("disable_corrector", o => o.DisableCorrector, (o, v) => o with { DisableCorrector = v })
            .Only("solver_p", null, "a second scheduler as predictor cannot be given in a configuration file; this package uses UniPC's own predictor.")
            .Bool("use_karras_sigmas", o => o.UseKarrasSigmas, (o, v) => o with { UseKarrasSigmas = v })
            .Bool("use_exponential_sigmas", o => o.UseExponentialSigmas, (o, v) => o with { UseExponentialSigmas = v })
            .Bool("use_beta_sigmas", o => o.UseBetaSigmas, (o, v) => o with { UseBetaSigmas = v })
            .Only("use_flow_sigmas", JsonValue.Create(false), DpmSolverMultistepSchedulerOptions.FlowMatchingReason)
            .Ignored("flow_shift")
            .Enum("timestep_spacing", o => o.TimestepSpacing, (o, v) => o with { TimestepSpacing = v }, ConfigNames.TimestepSpacings)
            .Int("steps_offset", o => o.StepsOffset, (o, v) => o with { StepsOffset = v })
            .Enum("final_sigmas_type", o => o.FinalSigmasType, (o, v) => o with { FinalSigmasType = v }, ConfigNames.FinalSigmasTypes)
            .Bool("rescale_betas_zero_snr", o => o.RescaleBetasZeroSnr, (o, v) => o with { RescaleBetasZeroSnr = v })
            .Only("use_dynamic_shifting", JsonValue.Create(false), DpmSolverMultistepSchedulerOptions.FlowMatchingReason)
            .Ignored("time_shift_type")
            .NullableDouble("sigma_min", o => o.SigmaMin, (o, v) => o with { SigmaMin = v })
            .NullableDouble("sigma_max", o => o.SigmaMax, (o, v) => o with { SigmaMax = v })
            .Only("shift_terminal", null, DpmSolverMultistepSchedulerOptions.FlowMatchingReason);

    // Higher orders are numerically meaningless; the bound keeps the per-step linear solve on the stack.
    private const int MaxSolverOrder = 8;

    /// <summary>The order of the predictor (<c>solver_order</c>, 1 to 8): 2 for guided sampling, 3 for unconditional.</summary>
    public int SolverOrder { get; init; } = 2;

    /// <inheritdoc cref="DdimSchedulerOptions.Thresholding"/>
    public bool Thresholding { get; init; }

    /// <inheritdoc cref="DdimSchedulerOptions.DynamicThresholdingRatio"/>
    public double DynamicThresholdingRatio { get; init; } = 0.995;

    /// <inheritdoc cref="DdimSchedulerOptions.SampleMaxValue"/>
    public double SampleMaxValue { get; init; } = 1.0;

    /// <summary>Whether to solve on the data prediction rather than the noise prediction (<c>predict_x0</c>, default true).</summary>
    public bool PredictX0 { get; init; } = true;

    /// <summary>The B(h) function (<c>solver_type</c>; diffusers maps the DPM-Solver and DEIS names to bh2).</summary>
    public UniPCSolverType SolverType { get; init; } = UniPCSolverType.Bh2;

    /// <inheritdoc cref="DpmSolverMultistepSchedulerOptions.LowerOrderFinal"/>
    public bool LowerOrderFinal { get; init; } = true;

    /// <summary>The steps (0-based) whose corrector is skipped (<c>disable_corrector</c>); skipping early ones helps large guidance.</summary>
    public IReadOnlyList<int> DisableCorrector { get; init; } = [];

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

    /// <summary>
    /// The sigma the last step ends at (<c>final_sigmas_type</c>); with Karras, exponential or beta spacing
    /// <see cref="FinalSigmasType.SigmaMin"/> means the last spaced sigma.
    /// </summary>
    public FinalSigmasType FinalSigmasType { get; init; } = FinalSigmasType.Zero;

    /// <inheritdoc cref="DdimSchedulerOptions.RescaleBetasZeroSnr"/>
    public bool RescaleBetasZeroSnr { get; init; }

    /// <inheritdoc cref="EulerDiscreteSchedulerOptions.SigmaMin"/>
    public double? SigmaMin { get; init; }

    /// <inheritdoc cref="EulerDiscreteSchedulerOptions.SigmaMax"/>
    public double? SigmaMax { get; init; }

    internal override void Validate(ConfigContext context)
    {
        base.Validate(context);
        ValidateSolverOrder(context, SolverOrder, MaxSolverOrder);
        ValidateThresholding(context, DynamicThresholdingRatio, SampleMaxValue);
        ValidateSigmaSpacing(context, UseKarrasSigmas, UseExponentialSigmas, UseBetaSigmas);
        if (!PredictX0 && FinalSigmasType == FinalSigmasType.Zero)
        {
            // The noise-prediction update multiplies σ_t = 0 by e^h = ∞ at the last step; diffusers returns NaN latents.
            throw context.Contradiction("\"predict_x0\" false with \"final_sigmas_type\" \"zero\" makes the last step NaN (as in diffusers): use \"sigma_min\", or predict_x0.");
        }
    }
}
