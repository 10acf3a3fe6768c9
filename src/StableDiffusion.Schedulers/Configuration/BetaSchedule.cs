namespace StableDiffusion.Schedulers;

/// <summary>How the per-step noise variances (betas) are laid out over the training timesteps (diffusers' <c>beta_schedule</c>).</summary>
public enum BetaSchedule
{
    /// <summary><c>"linear"</c>: betas evenly spaced from <c>beta_start</c> to <c>beta_end</c>.</summary>
    Linear,

    /// <summary><c>"scaled_linear"</c>: the square roots of the betas evenly spaced, then squared (Stable Diffusion).</summary>
    ScaledLinear,

    /// <summary><c>"squaredcos_cap_v2"</c>: the cosine schedule of Improved DDPM (Glide), betas capped at 0.999.</summary>
    SquaredCosCapV2,

    /// <summary><c>"exp"</c>: an exponential alpha-bar schedule (HeunDiscreteScheduler only).</summary>
    Exp,

    /// <summary><c>"laplace"</c>: the Laplace noise schedule (DDPMScheduler only).</summary>
    Laplace,

    /// <summary><c>"sigmoid"</c>: betas along a sigmoid from <c>beta_start</c> to <c>beta_end</c> (DDPMScheduler only).</summary>
    Sigmoid,
}
