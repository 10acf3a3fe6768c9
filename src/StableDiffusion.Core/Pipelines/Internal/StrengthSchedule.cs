using StableDiffusion.Schedulers;

namespace StableDiffusion.Pipelines.Internal;

/// <summary>
/// diffusers' <c>get_timesteps</c> for image-to-image and inpainting: of <c>steps</c> steps, the last
/// <c>int(steps * strength)</c> run, starting at <c>Timesteps[t_start * order]</c>, where the input is noised to.
/// </summary>
/// <remarks>The PyTorch pipelines' formula, not the old ONNX img2img pipeline's, which noises one step too early for
/// every scheduler but PNDM (see docs/parity.md).</remarks>
internal static class StrengthSchedule
{
    public static void Validate(double strength)
    {
        if (!double.IsFinite(strength) || strength < 0 || strength > 1)
        {
            throw new ArgumentOutOfRangeException("Strength", strength, "Strength must be between 0 and 1: 0 keeps the image, 1 replaces it entirely.");
        }
    }

    /// <summary>Sets the scheduler's begin index and returns the timesteps the loop runs over.</summary>
    /// <exception cref="ArgumentException">The strength leaves no step to run.</exception>
    public static IReadOnlyList<float> Apply(IScheduler scheduler, int steps, double strength)
    {
        // Python computes int(steps * strength) in double precision; so does this (0.7 * 10 is 7, not 6).
        int initTimestep = Math.Min((int)(steps * strength), steps);
        int tStart = Math.Max(steps - initTimestep, 0);
        if (steps - tStart < 1)
        {
            throw new ArgumentException(
                $"Strength {strength} with {steps} steps leaves no denoising step (int({steps} x {strength}) = 0). Raise Strength or NumInferenceSteps; a strength of 0 would return the input unchanged.",
                "Strength");
        }

        int begin = tStart * scheduler.Order;
        scheduler.SetBeginIndex(begin);
        return scheduler.Timesteps.Skip(begin).ToArray();
    }
}
