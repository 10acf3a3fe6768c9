namespace StableDiffusion.Schedulers;

/// <summary>
/// The configuration of <see cref="LcmScheduler"/> (diffusers' <c>LCMScheduler</c>), with diffusers' defaults, which are
/// Stable Diffusion's beta schedule.
/// </summary>
public sealed record LcmSchedulerOptions : SchedulerOptions
{
    internal static readonly ConfigSchema<LcmSchedulerOptions> Schema =
        SharedKeys<LcmSchedulerOptions>(LcmScheduler.DiffusersName, ConfigNames.StandardBetaSchedules, ConfigNames.PredictionTypes)
            .Int("original_inference_steps", o => o.OriginalInferenceSteps, (o, v) => o with { OriginalInferenceSteps = v })
            .Bool("clip_sample", o => o.ClipSample, (o, v) => o with { ClipSample = v })
            .Double("clip_sample_range", o => o.ClipSampleRange, (o, v) => o with { ClipSampleRange = v })
            .Bool("set_alpha_to_one", o => o.SetAlphaToOne, (o, v) => o with { SetAlphaToOne = v })
            .Int("steps_offset", o => o.StepsOffset, (o, v) => o with { StepsOffset = v })
            .Bool("thresholding", o => o.Thresholding, (o, v) => o with { Thresholding = v })
            .Double("dynamic_thresholding_ratio", o => o.DynamicThresholdingRatio, (o, v) => o with { DynamicThresholdingRatio = v })
            .Double("sample_max_value", o => o.SampleMaxValue, (o, v) => o with { SampleMaxValue = v })
            .Enum("timestep_spacing", o => o.TimestepSpacing, (o, v) => o with { TimestepSpacing = v }, ConfigNames.TimestepSpacings)
            .Double("timestep_scaling", o => o.TimestepScaling, (o, v) => o with { TimestepScaling = v })
            .Bool("rescale_betas_zero_snr", o => o.RescaleBetasZeroSnr, (o, v) => o with { RescaleBetasZeroSnr = v });

    /// <summary>Creates the options with the class defaults.</summary>
    public LcmSchedulerOptions()
    {
        BetaStart = 0.00085;
        BetaEnd = 0.012;
        BetaSchedule = BetaSchedule.ScaledLinear;
    }

    /// <summary>
    /// The length of the timestep schedule the model was distilled on (<c>original_inference_steps</c>, default 50); the
    /// inference timesteps are a subset of it, so at most this many steps can be run.
    /// </summary>
    public int OriginalInferenceSteps { get; init; } = 50;

    /// <summary>Whether to clamp the predicted original sample to ±<see cref="ClipSampleRange"/> (<c>clip_sample</c>).</summary>
    public bool ClipSample { get; init; }

    /// <inheritdoc cref="DdimSchedulerOptions.ClipSampleRange"/>
    public double ClipSampleRange { get; init; } = 1.0;

    /// <inheritdoc cref="DdimSchedulerOptions.SetAlphaToOne"/>
    public bool SetAlphaToOne { get; init; } = true;

    /// <summary>Declared by diffusers' LCMScheduler (<c>steps_offset</c>) but not used by its timestep schedule.</summary>
    public int StepsOffset { get; init; }

    /// <inheritdoc cref="DdimSchedulerOptions.Thresholding"/>
    public bool Thresholding { get; init; }

    /// <inheritdoc cref="DdimSchedulerOptions.DynamicThresholdingRatio"/>
    public double DynamicThresholdingRatio { get; init; } = 0.995;

    /// <inheritdoc cref="DdimSchedulerOptions.SampleMaxValue"/>
    public double SampleMaxValue { get; init; } = 1.0;

    /// <summary>Declared by diffusers' LCMScheduler (<c>timestep_spacing</c>) but not used by its timestep schedule.</summary>
    public TimestepSpacing TimestepSpacing { get; init; } = TimestepSpacing.Leading;

    /// <summary>The factor the timestep is scaled by in the consistency boundary condition (<c>timestep_scaling</c>, default 10).</summary>
    public double TimestepScaling { get; init; } = 10.0;

    /// <inheritdoc cref="DdimSchedulerOptions.RescaleBetasZeroSnr"/>
    public bool RescaleBetasZeroSnr { get; init; }

    internal override void Validate(ConfigContext context)
    {
        base.Validate(context);
        ValidateThresholding(context, DynamicThresholdingRatio, SampleMaxValue);
        if (OriginalInferenceSteps < 1 || OriginalInferenceSteps > NumTrainTimesteps)
        {
            throw context.Contradiction(
                $"\"original_inference_steps\" must be between 1 and \"num_train_timesteps\" ({NumTrainTimesteps}), but it is {OriginalInferenceSteps}.");
        }
    }
}
