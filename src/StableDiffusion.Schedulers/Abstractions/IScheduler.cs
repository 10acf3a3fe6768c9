using System.Numerics.Tensors;

namespace StableDiffusion.Schedulers;

/// <summary>
/// A diffusion scheduler: decides which timesteps the denoising model sees and how each prediction moves the sample.
/// The .NET shape of diffusers' <c>SchedulerMixin</c> API (<c>set_timesteps</c>, <c>scale_model_input</c>, <c>step</c>,
/// <c>add_noise</c>, <c>init_noise_sigma</c>, <c>order</c>).
/// </summary>
/// <remarks>
/// <para>
/// A scheduler is stateful (it counts steps and, for multistep solvers, remembers earlier predictions), so one instance
/// serves one denoising loop at a time. Pipelines call <see cref="Clone"/> for every generation, so the instance a user
/// assigns to a pipeline is a template that is never mutated by it.
/// </para>
/// <para>
/// Tensors are dense, row-major, single precision, usually latents of shape [batch, channels, height, width].
/// Implement this interface to plug a custom scheduler into the pipelines.
/// </para>
/// </remarks>
public interface IScheduler
{
    /// <summary>The configuration this scheduler was built from, as diffusers' <c>scheduler.config</c>.</summary>
    SchedulerConfig Config { get; }

    /// <summary>
    /// How many model evaluations make one solver step (diffusers' <c>order</c>): 2 for Heun and KDPM2, 1 for most others.
    /// </summary>
    int Order { get; }

    /// <summary>The standard deviation of the initial noise: pipelines multiply the initial latents by it.</summary>
    float InitNoiseSigma { get; }

    /// <summary>The timesteps the model is evaluated at, in order, after <see cref="SetTimesteps"/>; they can be fractional.</summary>
    IReadOnlyList<float> Timesteps { get; }

    /// <summary>The number of inference steps set by <see cref="SetTimesteps"/>, or 0 before it is called.</summary>
    int NumInferenceSteps { get; }

    /// <summary>Prepares the schedule for <paramref name="numInferenceSteps"/> denoising steps and resets the step state.</summary>
    /// <param name="numInferenceSteps">The number of denoising steps, at least 1 and at most the training timesteps.</param>
    /// <remarks>
    /// <see cref="Timesteps"/> can hold more entries than steps: PLMS repeats one timestep (N + 1 evaluations) and
    /// second-order schedulers evaluate the model twice per step (2N − 1). Loop over <see cref="Timesteps"/>.
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException">The number of steps is out of range for this configuration.</exception>
    void SetTimesteps(int numInferenceSteps);

    /// <summary>
    /// Starts the loop at <c>Timesteps[beginIndex]</c> rather than at the first timestep (diffusers' <c>set_begin_index</c>,
    /// used by image-to-image and inpainting with <c>beginIndex = t_start · Order</c>). Call after <see cref="SetTimesteps"/>.
    /// </summary>
    /// <param name="beginIndex">Index into <see cref="Timesteps"/> of the first timestep the loop will use.</param>
    /// <remarks>Schedulers that step by timestep value (PNDM, DDIM, DDPM) need no begin index, as in diffusers.</remarks>
    /// <exception cref="InvalidOperationException"><see cref="SetTimesteps"/> has not been called.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="beginIndex"/> is not an index into <see cref="Timesteps"/>.</exception>
    void SetBeginIndex(int beginIndex);

    /// <summary>Scales the denoising model's input for the current timestep (diffusers' <c>scale_model_input</c>).</summary>
    /// <param name="sample">The current sample.</param>
    /// <param name="timestep">The current timestep, one of <see cref="Timesteps"/>.</param>
    /// <param name="destination">Where the scaled input goes; may be the same memory as <paramref name="sample"/>.</param>
    void ScaleModelInput(ReadOnlyTensorSpan<float> sample, float timestep, TensorSpan<float> destination);

    /// <summary>Moves the sample one step back in the diffusion process (diffusers' <c>step(...).prev_sample</c>).</summary>
    /// <param name="modelOutput">The model's prediction for <paramref name="sample"/> at <paramref name="timestep"/>.</param>
    /// <param name="timestep">The current timestep, one of <see cref="Timesteps"/>.</param>
    /// <param name="sample">The current sample (not the scaled model input).</param>
    /// <param name="prevSample">Where the previous sample goes; may be the same memory as <paramref name="sample"/>.</param>
    /// <param name="options">The generator for stochastic schedulers and <c>eta</c> where it applies; null for the defaults.</param>
    /// <exception cref="InvalidOperationException">
    /// <see cref="SetTimesteps"/> was not called, every step of the schedule has been taken, or the step draws noise and
    /// <see cref="SchedulerStepOptions.Generator"/> is null.
    /// </exception>
    /// <exception cref="ArgumentException">The tensors differ in shape, or <paramref name="timestep"/> is not in the schedule.</exception>
    void Step(ReadOnlyTensorSpan<float> modelOutput, float timestep, ReadOnlyTensorSpan<float> sample, TensorSpan<float> prevSample, SchedulerStepOptions? options = null);

    /// <summary>Noises <paramref name="originalSamples"/> to the level of <paramref name="timestep"/> (diffusers' <c>add_noise</c>).</summary>
    /// <param name="originalSamples">The clean samples.</param>
    /// <param name="noise">Standard-normal noise of the same shape.</param>
    /// <param name="timestep">The timestep whose noise level to reach.</param>
    /// <param name="destination">Where the noised samples go; may be the same memory as <paramref name="originalSamples"/>.</param>
    void AddNoise(ReadOnlyTensorSpan<float> originalSamples, ReadOnlyTensorSpan<float> noise, float timestep, TensorSpan<float> destination);

    /// <summary>
    /// A new scheduler of the same kind and configuration with no state, as <c>from_config(scheduler.config)</c> gives.
    /// </summary>
    IScheduler Clone();
}

/// <summary>Per-step arguments of <see cref="IScheduler.Step"/> that only some schedulers use (diffusers' extra <c>step</c> arguments).</summary>
/// <param name="Generator">
/// The noise source of stochastic steps: DDPM, DDIM with <paramref name="Eta"/> &gt; 0, Euler ancestral, KDPM2 ancestral,
/// the SDE variants of DPM-Solver, LCM, and Euler with <paramref name="SChurn"/> &gt; 0. Each draw matches one
/// <c>randn_tensor</c> call of diffusers, so a seeded generator reproduces diffusers' trajectory. A stochastic step without
/// a generator throws rather than drawing unseeded noise.
/// </param>
/// <param name="Eta">DDIM's η (<c>eta</c>): 0 is deterministic DDIM, 1 is DDPM-like. Other schedulers ignore it.</param>
/// <param name="UseClippedModelOutput">
/// DDIM's <c>use_clipped_model_output</c>: recompute the noise from the clipped x₀. Other schedulers ignore it.
/// </param>
/// <param name="SChurn">EulerDiscreteScheduler's <c>s_churn</c>: how much noise to add back per step (0 adds none). Other schedulers ignore it.</param>
/// <param name="STMin">EulerDiscreteScheduler's <c>s_tmin</c>: the smallest sigma churn applies to.</param>
/// <param name="STMax">EulerDiscreteScheduler's <c>s_tmax</c>: the largest sigma churn applies to.</param>
/// <param name="SNoise">EulerDiscreteScheduler's <c>s_noise</c>: the scale of the churn noise.</param>
public sealed record SchedulerStepOptions(
    INoiseGenerator? Generator = null,
    float Eta = 0f,
    bool UseClippedModelOutput = false,
    float SChurn = 0f,
    float STMin = 0f,
    float STMax = float.PositiveInfinity,
    float SNoise = 1f)
{
    /// <summary>The options diffusers' <c>step</c> defaults to: no generator, η = 0, no churn.</summary>
    public static SchedulerStepOptions Default { get; } = new();
}
