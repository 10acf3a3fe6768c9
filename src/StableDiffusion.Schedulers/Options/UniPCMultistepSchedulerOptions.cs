using System.ComponentModel.DataAnnotations;

namespace StableDiffusion.Schedulers;

/// <summary>
/// The configuration of <see cref="UniPCMultistepScheduler"/> (diffusers' <c>UniPCMultistepScheduler</c>), with diffusers'
/// defaults: UniPC with B(h) = e^h − 1, order 2, corrector on every step.
/// </summary>
public sealed record UniPCMultistepSchedulerOptions : SchedulerOptions, ITimestepSpacingOptions, ISigmaSpacingOptions, IThresholdingOptions, IZeroTerminalSnrOptions
{
    // Higher orders are numerically meaningless; the bound keeps the per-step linear solve on the stack.
    private const int MaxSolverOrder = 8;

    /// <summary>The order of the predictor (<c>solver_order</c>, 1 to 8): 2 for guided sampling, 3 for unconditional.</summary>
    [Range(1, MaxSolverOrder)]
    public int SolverOrder { get; init; } = 2;

    /// <inheritdoc cref="DdimSchedulerOptions.Thresholding"/>
    public bool Thresholding { get; init; }

    /// <inheritdoc cref="DdimSchedulerOptions.DynamicThresholdingRatio"/>
    [Range(0.0, 1.0)]
    public double DynamicThresholdingRatio { get; init; } = 0.995;

    /// <inheritdoc cref="DdimSchedulerOptions.SampleMaxValue"/>
    [Range(0.0, double.PositiveInfinity, MinimumIsExclusive = true)]
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

    internal override void DescribeKeys(ConfigKeyRules keys) => keys
        .Only("solver_p", null, "a second scheduler as predictor cannot be given in a configuration file; this package uses UniPC's own predictor.")
        .RejectFlowMatching()
        .Only("shift_terminal", null, ConfigKeyRules.FlowMatching);

    internal override void Validate(ConfigContext context)
    {
        base.Validate(context);
        if (!PredictX0 && FinalSigmasType == FinalSigmasType.Zero)
        {
            // The noise-prediction update multiplies σ_t = 0 by e^h = ∞ at the last step; diffusers returns NaN latents.
            throw context.Contradiction("\"predict_x0\" false with \"final_sigmas_type\" \"zero\" makes the last step NaN (as in diffusers): use \"sigma_min\", or predict_x0.");
        }
    }
}
