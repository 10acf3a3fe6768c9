namespace StableDiffusion.Schedulers;

/// <summary>
/// How the inference timesteps are picked from the training timesteps (diffusers' <c>timestep_spacing</c>; table 2 of
/// "Common Diffusion Noise Schedules and Sample Steps are Flawed", arXiv 2305.08891).
/// </summary>
public enum TimestepSpacing
{
    /// <summary><c>"linspace"</c>: evenly spaced from the last training timestep down to 0.</summary>
    Linspace,

    /// <summary><c>"leading"</c>: multiples of <c>num_train_timesteps / steps</c> counted from 0, plus <c>steps_offset</c>.</summary>
    Leading,

    /// <summary><c>"trailing"</c>: multiples of <c>num_train_timesteps / steps</c> counted down from the last training timestep.</summary>
    Trailing,
}
