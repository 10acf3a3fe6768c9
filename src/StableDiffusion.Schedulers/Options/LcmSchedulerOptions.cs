using System.ComponentModel.DataAnnotations;

namespace StableDiffusion.Schedulers;

/// <summary>
/// The configuration of <see cref="LcmScheduler"/> (diffusers' <c>LCMScheduler</c>), with diffusers' defaults, which are
/// Stable Diffusion's beta schedule.
/// </summary>
public sealed record LcmSchedulerOptions : SchedulerOptions, IThresholdingOptions, ISampleClippingOptions, IZeroTerminalSnrOptions
{
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
    [Range(0.0, 1.0)]
    public double DynamicThresholdingRatio { get; init; } = 0.995;

    /// <inheritdoc cref="DdimSchedulerOptions.SampleMaxValue"/>
    [Range(0.0, double.PositiveInfinity, MinimumIsExclusive = true)]
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
        if (OriginalInferenceSteps < 1 || OriginalInferenceSteps > NumTrainTimesteps)
        {
            throw context.Contradiction(
                $"\"original_inference_steps\" must be between 1 and \"num_train_timesteps\" ({NumTrainTimesteps}), but it is {OriginalInferenceSteps}.");
        }
    }
}
