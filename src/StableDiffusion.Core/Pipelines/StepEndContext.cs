using System.Numerics.Tensors;

namespace StableDiffusion.Pipelines;

/// <summary>What a step-end callback sees; one instance is reused for every step of a generation.</summary>
public sealed class StepEndContext
{
    internal StepEndContext(Tensor<float> latents, int totalSteps)
    {
        Latents = latents;
        TotalSteps = totalSteps;
    }

    /// <summary>The index of the step that just ended, from 0.</summary>
    public int StepIndex { get; internal set; }

    /// <summary>The number of UNet evaluations in the loop (diffusers' <c>len(timesteps)</c>).</summary>
    public int TotalSteps { get; }

    /// <summary>The timestep of the step that just ended.</summary>
    public float Timestep { get; internal set; }

    /// <summary>The latents after the step, [batch, 4, height / 8, width / 8]; changes made here are used by the next step.</summary>
    public Tensor<float> Latents { get; }

    /// <summary>Set to stop the loop after this step (diffusers' <c>pipe._interrupt</c>); the current latents are decoded.</summary>
    public bool Interrupt { get; set; }
}
