using System.Numerics;
using System.Runtime.CompilerServices;

namespace StableDiffusion.Schedulers;

/// <summary>
/// Euler steps with ancestral sampling ("Euler a" in UIs): each step goes below the next noise level and adds fresh noise
/// back up to it. Port of diffusers' <c>EulerAncestralDiscreteScheduler</c>.
/// </summary>
/// <remarks>Every step draws noise (the last one too, scaled by zero, as diffusers does), so a generator is required.</remarks>
public sealed class EulerAncestralDiscreteScheduler : DiffusionScheduler<EulerAncestralDiscreteScheduler, EulerAncestralDiscreteSchedulerOptions>
{
    /// <summary>The diffusers class name.</summary>
    public const string DiffusersName = "EulerAncestralDiscreteScheduler";

    private float[]? _originalSample;
    private float[]? _noise;

    /// <summary>Creates the scheduler from options (diffusers' defaults when null).</summary>
    /// <param name="options">The options.</param>
    /// <exception cref="SchedulerConfigException">The options contradict each other.</exception>
    public EulerAncestralDiscreteScheduler(EulerAncestralDiscreteSchedulerOptions? options = null)
        : base(options, finiteTerminalSigma: true)
    {
        SigmaArray = [.. Noise.Sigmas.Reverse(), 0f];
    }

    /// <inheritdoc />
    /// <remarks>The largest sigma; for leading spacing √(σ_max² + 1), as diffusers has it.</remarks>
    public override float InitNoiseSigma => KDiffusionMath.InitNoiseSigma(SigmaArray, Options.TimestepSpacing);

    private protected override float[] ComputeTimesteps(int numInferenceSteps)
    {
        (float[] timesteps, double[] sigmas) = SigmaSchedules.KDiffusion(
            Noise, Options.TimestepSpacing, Options.StepsOffset, numInferenceSteps, SigmaSpacing.Interpolated, null, null);
        SigmaArray = [.. sigmas.Select(s => (float)s), 0f];
        return timesteps;
    }

    private protected override void ScaleModelInputCore(ReadOnlySpan<float> sample, float timestep, Span<float> destination) =>
        KDiffusionMath.ScaleModelInput(sample, SigmaArray[CurrentStepIndex(timestep)], destination);

    private protected override void StepCore(ReadOnlySpan<float> modelOutput, float timestep, ReadOnlySpan<float> sample, Span<float> prevSample, SchedulerStepOptions options, int batchSize)
    {
        int index = StepIndexForStep(timestep, SigmaArray.Length - 1);
        float sigma = SigmaArray[index];
        float sigmaTo = SigmaArray[index + 1];
        float sigmaUp = MathF.Sqrt(sigmaTo * sigmaTo * (sigma * sigma - sigmaTo * sigmaTo) / (sigma * sigma));
        float sigmaDown = MathF.Sqrt(sigmaTo * sigmaTo - sigmaUp * sigmaUp);

        float[] originalSample = Buffer(ref _originalSample, sample.Length);
        Prediction.SigmaOriginalSample(Options.PredictionType, sigma, sigma, sample, modelOutput, originalSample);
        float[] noise = Buffer(ref _noise, sample.Length);
        RequireGenerator(options, "adds fresh noise at every step").FillStandardNormal(noise);
        Elementwise.Apply(new AncestralStep(sigma, sigmaDown - sigma, sigmaUp), sample, originalSample, noise, prevSample);
        AdvanceStepIndex();
    }

    private protected override void AddNoiseCore(ReadOnlySpan<float> originalSamples, ReadOnlySpan<float> noise, float timestep, Span<float> destination) =>
        AddNoiseAtSigma(SigmaArray, originalSamples, noise, timestep, destination);

    /// <summary>d = (x − x₀)/σ; (x + d·dt) + z·σ_up.</summary>
    private readonly struct AncestralStep(float sigma, float dt, float sigmaUp) : IElementwiseOp3
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float x, float x0, float z) => x + (x - x0) / sigma * dt + z * sigmaUp;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> x, Vector<float> x0, Vector<float> z) => x + (x - x0) / sigma * dt + z * sigmaUp;
    }
}
