using System.Numerics.Tensors;

namespace StableDiffusion.Schedulers;

/// <summary>
/// Allocating conveniences over <see cref="IScheduler"/> for code that holds <see cref="Tensor{T}"/> values: each call
/// returns a new tensor. Denoising loops that care about allocations use the span overloads with a destination.
/// </summary>
public static class SchedulerExtensions
{
    /// <summary>The scaled model input for <paramref name="timestep"/>, as a new tensor (diffusers' <c>scale_model_input</c>).</summary>
    /// <param name="scheduler">The scheduler.</param>
    /// <param name="sample">The current sample.</param>
    /// <param name="timestep">The current timestep, one of <see cref="IScheduler.Timesteps"/>.</param>
    public static Tensor<float> ScaleModelInput(this IScheduler scheduler, Tensor<float> sample, float timestep)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        ArgumentNullException.ThrowIfNull(sample);
        Tensor<float> result = Tensor.CreateFromShapeUninitialized<float>(sample.Lengths);
        scheduler.ScaleModelInput(sample.AsReadOnlyTensorSpan(), timestep, result.AsTensorSpan());
        return result;
    }

    /// <summary>The previous sample, as a new tensor (diffusers' <c>step(...).prev_sample</c>).</summary>
    /// <param name="scheduler">The scheduler.</param>
    /// <param name="modelOutput">The model's prediction for <paramref name="sample"/> at <paramref name="timestep"/>.</param>
    /// <param name="timestep">The current timestep, one of <see cref="IScheduler.Timesteps"/>.</param>
    /// <param name="sample">The current sample.</param>
    /// <param name="options">The generator for stochastic schedulers and <c>eta</c> where it applies; null for the defaults.</param>
    public static Tensor<float> Step(this IScheduler scheduler, Tensor<float> modelOutput, float timestep, Tensor<float> sample, SchedulerStepOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        ArgumentNullException.ThrowIfNull(modelOutput);
        ArgumentNullException.ThrowIfNull(sample);
        Tensor<float> result = Tensor.CreateFromShapeUninitialized<float>(sample.Lengths);
        scheduler.Step(modelOutput.AsReadOnlyTensorSpan(), timestep, sample.AsReadOnlyTensorSpan(), result.AsTensorSpan(), options);
        return result;
    }

    /// <summary>The samples noised to <paramref name="timestep"/>, as a new tensor (diffusers' <c>add_noise</c>).</summary>
    /// <param name="scheduler">The scheduler.</param>
    /// <param name="originalSamples">The clean samples.</param>
    /// <param name="noise">Standard-normal noise of the same shape.</param>
    /// <param name="timestep">The timestep whose noise level to reach.</param>
    public static Tensor<float> AddNoise(this IScheduler scheduler, Tensor<float> originalSamples, Tensor<float> noise, float timestep)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        ArgumentNullException.ThrowIfNull(originalSamples);
        ArgumentNullException.ThrowIfNull(noise);
        Tensor<float> result = Tensor.CreateFromShapeUninitialized<float>(originalSamples.Lengths);
        scheduler.AddNoise(originalSamples.AsReadOnlyTensorSpan(), noise.AsReadOnlyTensorSpan(), timestep, result.AsTensorSpan());
        return result;
    }
}
