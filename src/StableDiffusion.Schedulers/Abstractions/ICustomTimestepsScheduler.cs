namespace StableDiffusion.Schedulers;

/// <summary>
/// A scheduler that can also run an explicit list of timesteps instead of a step count: diffusers'
/// <c>set_timesteps(timesteps=...)</c>, which pipelines expose as their <c>timesteps</c> argument (for example for the
/// "Align Your Steps" schedules). DDPM, Euler, Heun, DPM-Solver (multistep and singlestep) and LCM implement it.
/// </summary>
public interface ICustomTimestepsScheduler : IScheduler
{
    /// <summary>
    /// Prepares the schedule to evaluate the model at <paramref name="timesteps"/>, largest first, and resets the step
    /// state. <see cref="IScheduler.NumInferenceSteps"/> becomes their count.
    /// </summary>
    /// <param name="timesteps">The timesteps in denoising order, within the training range.</param>
    /// <exception cref="ArgumentException">The list is empty, not finite, out of range or (where the scheduler requires it) not descending.</exception>
    /// <exception cref="InvalidOperationException">The configuration derives its own timesteps (for example Karras sigmas).</exception>
    void SetTimesteps(IReadOnlyList<float> timesteps);
}

/// <summary>
/// A scheduler that can run an explicit list of noise levels: diffusers' <c>set_timesteps(sigmas=...)</c>, which pipelines
/// expose as their <c>sigmas</c> argument. EulerDiscreteScheduler implements it.
/// </summary>
public interface ICustomSigmasScheduler : IScheduler
{
    /// <summary>
    /// Prepares the schedule for the noise levels <paramref name="sigmas"/>, largest first and ending with the final one
    /// (usually 0), so one more than the steps; the timesteps are derived from them. Resets the step state.
    /// </summary>
    /// <param name="sigmas">The sigmas, at least two, finite and non-negative.</param>
    /// <exception cref="ArgumentException">The list is too short or holds a negative or non-finite value.</exception>
    void SetSigmas(IReadOnlyList<float> sigmas);
}
