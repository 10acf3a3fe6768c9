namespace StableDiffusion.Schedulers;

/// <summary>The variance of the noise DDPM adds at each step (diffusers' <c>variance_type</c>).</summary>
/// <remarks>The learned variants need a model that predicts its own variance, which Stable Diffusion does not; they are not supported.</remarks>
public enum DdpmVarianceType
{
    /// <summary><c>"fixed_small"</c>: the posterior variance β̃ (the default).</summary>
    FixedSmall,

    /// <summary><c>"fixed_small_log"</c>: the posterior variance β̃, computed through its logarithm.</summary>
    FixedSmallLog,

    /// <summary><c>"fixed_large"</c>: the forward-process variance β.</summary>
    FixedLarge,
}
