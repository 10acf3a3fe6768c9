namespace StableDiffusion.Schedulers;

/// <summary>How EulerDiscreteScheduler derives the inference sigmas from the training sigmas (diffusers' <c>interpolation_type</c>).</summary>
public enum InterpolationType
{
    /// <summary><c>"linear"</c>: linear interpolation of the training sigmas at the inference timesteps.</summary>
    Linear,

    /// <summary><c>"log_linear"</c>: sigmas evenly spaced in log space between the largest and the smallest training sigma.</summary>
    LogLinear,
}
