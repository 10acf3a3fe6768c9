using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace StableDiffusion.Schedulers;

/// <summary>The pieces the k-diffusion schedulers (Euler, Euler ancestral, LMS, Heun, KDPM2) share.</summary>
internal static class KDiffusionMath
{
    /// <summary>
    /// diffusers' <c>init_noise_sigma</c> of these schedulers: the largest sigma for linspace and trailing spacing, and
    /// √(σ_max² + 1) for leading.
    /// </summary>
    public static float InitNoiseSigma(ReadOnlySpan<float> sigmas, TimestepSpacing spacing)
    {
        float max = TensorPrimitives.Max(sigmas);
        return spacing is TimestepSpacing.Linspace or TimestepSpacing.Trailing ? max : MathF.Sqrt(max * max + 1f);
    }

    /// <summary>The model input x/√(σ² + 1).</summary>
    public static void ScaleModelInput(ReadOnlySpan<float> sample, float sigma, Span<float> destination) =>
        TensorPrimitives.Divide(sample, MathF.Sqrt(sigma * sigma + 1f), destination);

    /// <summary>
    /// [v₀, v₁, v₁, …, v_{n−1}, v_{n−1}], torch's <c>cat([v[:1], v[1:].repeat_interleave(2)])</c>: the layout of the
    /// second-order schedulers, which visit every point after the first twice.
    /// </summary>
    public static float[] RepeatAfterFirst(ReadOnlySpan<float> values)
    {
        var result = new float[2 * values.Length - 1];
        result[0] = values[0];
        for (int i = 1; i < values.Length; i++)
        {
            result[2 * i - 1] = result[2 * i] = values[i];
        }

        return result;
    }

    /// <summary>d = (x − x₀)/σ; x + d·dt.</summary>
    internal readonly struct EulerFromOriginal(float sigma, float dt) : IElementwiseOp2
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float x, float x0) => x + (x - x0) / sigma * dt;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> x, Vector<float> x0) => x + (x - x0) / sigma * dt;
    }
}
