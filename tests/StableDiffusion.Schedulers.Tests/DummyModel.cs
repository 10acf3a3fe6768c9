using System.Numerics.Tensors;

namespace StableDiffusion.Schedulers.Tests;

/// <summary>
/// The stand-in denoiser of the reference's scheduler section: model(x, t) = 0.2·x·cos(t/500) + 0.3·sin(x) + 0.01·(t/1000),
/// evaluated in float32 as torch does.
/// </summary>
internal static class DummyModel
{
    public static void Evaluate(ReadOnlySpan<float> x, float t, Span<float> output)
    {
        float cosine = MathF.Cos(t / 500f);
        float offset = 0.01f * (t / 1000f);
        for (int i = 0; i < x.Length; i++)
        {
            output[i] = 0.2f * x[i] * cosine + 0.3f * MathF.Sin(x[i]) + offset;
        }
    }

    /// <summary>A pipeline's denoising loop over the scheduler's timesteps with this model, in place on <paramref name="sample"/>.</summary>
    public static void Denoise(IScheduler scheduler, float[] sample, nint[] shape, SchedulerStepOptions? options = null)
    {
        var input = new float[sample.Length];
        var output = new float[sample.Length];
        foreach (float t in scheduler.Timesteps)
        {
            scheduler.ScaleModelInput(new ReadOnlyTensorSpan<float>(sample, shape), t, new TensorSpan<float>(input, shape));
            Evaluate(input, t, output);
            scheduler.Step(new ReadOnlyTensorSpan<float>(output, shape), t, new ReadOnlyTensorSpan<float>(sample, shape), new TensorSpan<float>(sample, shape), options);
        }
    }
}
