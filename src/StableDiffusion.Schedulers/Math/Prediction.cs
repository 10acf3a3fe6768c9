using System.Numerics;
using System.Runtime.CompilerServices;

namespace StableDiffusion.Schedulers;

/// <summary>
/// The model-output conversions diffusers repeats in every scheduler: from what the model predicts (noise, sample or
/// velocity) to the predicted original sample x₀ or the noise ε, in the three parameterisations schedulers use.
/// </summary>
internal static class Prediction
{
    /// <summary>
    /// x₀ in the DDPM parameterisation x = √ᾱ·x₀ + √(1 − ᾱ)·ε: epsilon <c>(x − √(1−ᾱ)·ε) / √ᾱ</c>, sample <c>ε</c>,
    /// v-prediction <c>√ᾱ·x − √(1−ᾱ)·v</c>.
    /// </summary>
    public static void DiscreteOriginalSample(PredictionType type, float sqrtAlphaProd, float sqrtBetaProd, ReadOnlySpan<float> sample, ReadOnlySpan<float> modelOutput, Span<float> destination)
    {
        switch (type)
        {
            case PredictionType.Epsilon:
                Elementwise.Apply(new SubtractScaledThenDivide(sqrtBetaProd, sqrtAlphaProd), sample, modelOutput, destination);
                break;
            case PredictionType.Sample:
                modelOutput.CopyTo(destination);
                break;
            default:
                Elementwise.LinearCombination(sqrtAlphaProd, sample, -sqrtBetaProd, modelOutput, destination);
                break;
        }
    }

    /// <summary>
    /// x₀ in the variance-exploding (k-diffusion) parameterisation x = x₀ + σ·ε: epsilon <c>x − σ·ε</c>, sample <c>ε</c>,
    /// v-prediction <c>v·(−σ/√(σ²+1)) + x/(σ²+1)</c>.
    /// </summary>
    /// <param name="type">The prediction type.</param>
    /// <param name="sigma">The σ the noise is scaled by (σ̂ for Euler's churn).</param>
    /// <param name="sigmaV">The σ of the v-prediction formula (diffusers' Euler uses σ there even with churn).</param>
    /// <param name="sample">The sample x.</param>
    /// <param name="modelOutput">The model output.</param>
    /// <param name="destination">Where x₀ goes.</param>
    public static void SigmaOriginalSample(PredictionType type, float sigma, float sigmaV, ReadOnlySpan<float> sample, ReadOnlySpan<float> modelOutput, Span<float> destination)
    {
        switch (type)
        {
            case PredictionType.Epsilon:
                Elementwise.LinearCombination(1f, sample, -sigma, modelOutput, destination);
                break;
            case PredictionType.Sample:
                modelOutput.CopyTo(destination);
                break;
            default:
                float denominator = sigmaV * sigmaV + 1f;
                Elementwise.Apply(new VelocityToOriginal(-sigmaV / MathF.Sqrt(denominator), denominator), modelOutput, sample, destination);
                break;
        }
    }

    /// <summary>
    /// x₀ in the variance-preserving parameterisation x = α·x₀ + σ·ε of the DPM-Solver family: epsilon <c>(x − σ·ε)/α</c>,
    /// sample <c>ε</c>, v-prediction <c>α·x − σ·v</c>.
    /// </summary>
    public static void VpOriginalSample(PredictionType type, float alpha, float sigma, ReadOnlySpan<float> sample, ReadOnlySpan<float> modelOutput, Span<float> destination) =>
        DiscreteOriginalSample(type, alpha, sigma, sample, modelOutput, destination);

    /// <summary>
    /// ε in the variance-preserving parameterisation: epsilon <c>ε</c>, sample <c>(x − α·x₀)/σ</c>, v-prediction
    /// <c>α·v + σ·x</c>.
    /// </summary>
    public static void VpEpsilon(PredictionType type, float alpha, float sigma, ReadOnlySpan<float> sample, ReadOnlySpan<float> modelOutput, Span<float> destination)
    {
        switch (type)
        {
            case PredictionType.Epsilon:
                modelOutput.CopyTo(destination);
                break;
            case PredictionType.Sample:
                Elementwise.Apply(new SubtractScaledThenDivide(alpha, sigma), sample, modelOutput, destination);
                break;
            default:
                Elementwise.LinearCombination(alpha, modelOutput, sigma, sample, destination);
                break;
        }
    }

    /// <summary><c>(x − s·y) / d</c>.</summary>
    internal readonly struct SubtractScaledThenDivide(float scale, float divisor) : IElementwiseOp2
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float x, float y) => (x - scale * y) / divisor;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> x, Vector<float> y) => (x - scale * y) / divisor;
    }

    /// <summary><c>v·c + x/d</c>.</summary>
    private readonly struct VelocityToOriginal(float c, float d) : IElementwiseOp2
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float v, float x) => v * c + x / d;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> v, Vector<float> x) => v * c + x / d;
    }
}
