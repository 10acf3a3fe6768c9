using System.ComponentModel.DataAnnotations;

namespace StableDiffusion.Schedulers;

/// <summary>The configuration of <see cref="DdimScheduler"/> (diffusers' <c>DDIMScheduler</c>), with diffusers' defaults.</summary>
public sealed record DdimSchedulerOptions : SchedulerOptions, ITimestepSpacingOptions, IThresholdingOptions, ISampleClippingOptions, IZeroTerminalSnrOptions
{
    /// <summary>
    /// Whether to clamp the predicted original sample to ±<see cref="ClipSampleRange"/> (<c>clip_sample</c>; diffusers' class
    /// default is true, Stable Diffusion's configuration sets false).
    /// </summary>
    public bool ClipSample { get; init; } = true;

    /// <summary>The bound of <see cref="ClipSample"/> (<c>clip_sample_range</c>, default 1).</summary>
    public double ClipSampleRange { get; init; } = 1.0;

    /// <summary>
    /// Whether the step after the last timestep uses a cumulative alpha of 1 (<c>set_alpha_to_one</c>); when false it uses
    /// the cumulative alpha of timestep 0.
    /// </summary>
    public bool SetAlphaToOne { get; init; } = true;

    /// <summary>An offset added to the timesteps of <see cref="TimestepSpacing.Leading"/> spacing (<c>steps_offset</c>; Stable Diffusion uses 1).</summary>
    public int StepsOffset { get; init; }

    /// <summary>
    /// Whether to apply dynamic thresholding (Imagen) to the predicted original sample (<c>thresholding</c>); unsuited to
    /// latent-space models such as Stable Diffusion.
    /// </summary>
    public bool Thresholding { get; init; }

    /// <summary>The quantile of absolute values dynamic thresholding clamps at (<c>dynamic_thresholding_ratio</c>, default 0.995).</summary>
    [Range(0.0, 1.0)]
    public double DynamicThresholdingRatio { get; init; } = 0.995;

    /// <summary>The largest threshold dynamic thresholding may use (<c>sample_max_value</c>, default 1).</summary>
    [Range(0.0, double.PositiveInfinity, MinimumIsExclusive = true)]
    public double SampleMaxValue { get; init; } = 1.0;

    /// <summary>How the inference timesteps are spaced (<c>timestep_spacing</c>).</summary>
    public TimestepSpacing TimestepSpacing { get; init; } = TimestepSpacing.Leading;

    /// <summary>
    /// Whether to rescale the betas to zero terminal SNR (<c>rescale_betas_zero_snr</c>, arXiv 2305.08891), for models
    /// trained that way.
    /// </summary>
    public bool RescaleBetasZeroSnr { get; init; }
}
