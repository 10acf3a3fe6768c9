namespace StableDiffusion.Schedulers;

// Groups of configuration keys that several classes share. An options record that has the keys implements the group,
// so the shared math (Math/) and checks (SchedulerOptions.Validate) take the group rather than its values one by one.

/// <summary><c>timestep_spacing</c> and <c>steps_offset</c>: how the inference timesteps are picked.</summary>
internal interface ITimestepSpacingOptions
{
    /// <summary>How the inference timesteps are spaced.</summary>
    TimestepSpacing TimestepSpacing { get; }

    /// <summary>The offset of leading spacing.</summary>
    int StepsOffset { get; }
}

/// <summary>The respaced sigmas of the k-diffusion and multistep schedulers: Karras, exponential or beta, between bounds.</summary>
internal interface ISigmaSpacingOptions
{
    /// <summary><c>use_karras_sigmas</c>.</summary>
    bool UseKarrasSigmas { get; }

    /// <summary><c>use_exponential_sigmas</c>.</summary>
    bool UseExponentialSigmas { get; }

    /// <summary><c>use_beta_sigmas</c>.</summary>
    bool UseBetaSigmas { get; }

    /// <summary><c>sigma_min</c>; null for the schedule's own.</summary>
    double? SigmaMin { get; }

    /// <summary><c>sigma_max</c>; null for the schedule's own.</summary>
    double? SigmaMax { get; }
}

/// <summary>Imagen's dynamic thresholding of the predicted x₀ (<c>thresholding</c> and its two parameters).</summary>
internal interface IThresholdingOptions
{
    /// <summary><c>thresholding</c>.</summary>
    bool Thresholding { get; }

    /// <summary><c>dynamic_thresholding_ratio</c>.</summary>
    double DynamicThresholdingRatio { get; }

    /// <summary><c>sample_max_value</c>.</summary>
    double SampleMaxValue { get; }
}

/// <summary>Static clipping of the predicted x₀ (<c>clip_sample</c>, <c>clip_sample_range</c>).</summary>
internal interface ISampleClippingOptions
{
    /// <summary><c>clip_sample</c>.</summary>
    bool ClipSample { get; }

    /// <summary><c>clip_sample_range</c>.</summary>
    double ClipSampleRange { get; }
}

/// <summary><c>rescale_betas_zero_snr</c>: the training schedule rescaled to zero terminal SNR.</summary>
internal interface IZeroTerminalSnrOptions
{
    /// <summary><c>rescale_betas_zero_snr</c>.</summary>
    bool RescaleBetasZeroSnr { get; }
}
