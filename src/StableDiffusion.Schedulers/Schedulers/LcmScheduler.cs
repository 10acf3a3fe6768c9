using System.Numerics;
using System.Runtime.CompilerServices;

namespace StableDiffusion.Schedulers;

/// <summary>
/// The multistep consistency sampler of latent consistency models (Luo et al., 2023), for LCM-distilled models and
/// LCM-LoRA: each step predicts the clean sample and re-noises it to the next timestep. Port of diffusers' <c>LCMScheduler</c>.
/// </summary>
/// <remarks>
/// The timesteps are a subset of the schedule the model was distilled on
/// (<see cref="LcmSchedulerOptions.OriginalInferenceSteps"/>), so at most that many steps can be run. Every step but the
/// last draws noise, so a generator is required.
/// </remarks>
public sealed class LcmScheduler : DiffusionScheduler<LcmScheduler, LcmSchedulerOptions>, ICustomTimestepsScheduler
{
    /// <summary>The diffusers class name.</summary>
    public const string DiffusersName = "LCMScheduler";

    private const float SigmaDataSquared = 0.25f;

    private float[]? _originalSample;
    private float[]? _noise;
    private float[]? _scratch;

    /// <summary>Creates the scheduler from options (diffusers' defaults when null).</summary>
    /// <param name="options">The options.</param>
    /// <exception cref="SchedulerConfigException">The options contradict each other.</exception>
    public LcmScheduler(LcmSchedulerOptions? options = null)
        : base(options)
    {
    }

    /// <summary>
    /// Prepares the schedule as diffusers' <c>set_timesteps(num_inference_steps, original_inference_steps=, strength=)</c>
    /// does: the steps are taken from the first <c>original·strength</c> timesteps of the distillation schedule, which
    /// image-to-image shortens through <paramref name="strength"/>.
    /// </summary>
    /// <param name="numInferenceSteps">The number of steps.</param>
    /// <param name="originalInferenceSteps">The distillation schedule's length; null for <see cref="LcmSchedulerOptions.OriginalInferenceSteps"/>.</param>
    /// <param name="strength">The fraction of the distillation schedule to draw from, in (0, 1].</param>
    /// <exception cref="ArgumentOutOfRangeException">An argument is out of range, or the schedule has fewer timesteps than steps.</exception>
    public void SetTimesteps(int numInferenceSteps, int? originalInferenceSteps, double strength = 1.0)
    {
        if (numInferenceSteps < 1 || numInferenceSteps > NumTrainTimesteps)
        {
            throw new ArgumentOutOfRangeException(nameof(numInferenceSteps), numInferenceSteps, $"The number of inference steps must be between 1 and num_train_timesteps ({NumTrainTimesteps}).");
        }

        if (!(strength > 0 && strength <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(strength), strength, "The strength must lie in (0, 1].");
        }

        InstallTimesteps(LcmTimesteps(numInferenceSteps, originalInferenceSteps ?? Options.OriginalInferenceSteps, strength), numInferenceSteps);
    }

    /// <inheritdoc />
    /// <remarks>
    /// The timesteps must be whole, strictly descending and below num_train_timesteps. diffusers warns when they are not
    /// on the distillation schedule; they are used as given.
    /// </remarks>
    public void SetTimesteps(IReadOnlyList<float> timesteps)
    {
        float[] custom = DescendingTrainingTimesteps(timesteps);
        InstallTimesteps(custom, custom.Length);
    }

    private protected override float[] ComputeTimesteps(int numInferenceSteps) =>
        LcmTimesteps(numInferenceSteps, Options.OriginalInferenceSteps, 1.0);

    private protected override void StepCore(ReadOnlySpan<float> modelOutput, float timestep, ReadOnlySpan<float> sample, Span<float> prevSample, SchedulerStepOptions options, int batchSize)
    {
        float[] timesteps = TimestepArray;
        int index = StepIndexForStep(timestep, timesteps.Length);
        int t = TrainingTimestep(timestep);
        int prevT = index + 1 < timesteps.Length ? (int)timesteps[index + 1] : t;
        float alphaProd = Noise.AlphasCumprod[t];
        float alphaProdPrev = prevT >= 0 ? Noise.AlphasCumprod[prevT] : Noise.FinalAlphaCumprod(Options.SetAlphaToOne);
        float betaProd = 1f - alphaProd;
        float betaProdPrev = 1f - alphaProdPrev;

        // The consistency boundary condition: c_skip·x + c_out·x₀, with σ_data = 0.5.
        float scaledTimestep = t * (float)Options.TimestepScaling;
        float cSkip = SigmaDataSquared / (scaledTimestep * scaledTimestep + SigmaDataSquared);
        float cOut = scaledTimestep / MathF.Sqrt(scaledTimestep * scaledTimestep + SigmaDataSquared);

        int length = sample.Length;
        float[] originalSample = Buffer(ref _originalSample, length);
        Prediction.DiscreteOriginalSample(Options.PredictionType, MathF.Sqrt(alphaProd), MathF.Sqrt(betaProd), sample, modelOutput, originalSample);
        KeepInRange(originalSample, batchSize, Options, ref _scratch);

        if (index == NumInferenceSteps - 1)
        {
            Elementwise.LinearCombination(cOut, originalSample, cSkip, sample, prevSample);
        }
        else
        {
            // Re-noise the denoised sample to the next timestep.
            float[] noise = Buffer(ref _noise, length);
            RequireGenerator(options, "re-noises the denoised sample at every step but the last").FillStandardNormal(noise);
            Elementwise.Apply(new Renoise(cOut, cSkip, MathF.Sqrt(alphaProdPrev), MathF.Sqrt(betaProdPrev)), originalSample, sample, noise, prevSample);
        }

        AdvanceStepIndex();
    }

    private protected override void AddNoiseCore(ReadOnlySpan<float> originalSamples, ReadOnlySpan<float> noise, float timestep, Span<float> destination) =>
        AddNoiseAtTrainingTimestep(originalSamples, noise, timestep, destination);

    // The distillation schedule k−1, 2k−1, … (k = T // original) reversed, then N evenly spaced entries of it.
    private float[] LcmTimesteps(int numInferenceSteps, int originalSteps, double strength)
    {
        if (originalSteps < 1 || originalSteps > NumTrainTimesteps)
        {
            throw new ArgumentOutOfRangeException(nameof(originalSteps), originalSteps, $"original_inference_steps must be between 1 and num_train_timesteps ({NumTrainTimesteps}).");
        }

        int k = NumTrainTimesteps / originalSteps;
        int available = (int)(originalSteps * strength);
        if (available / numInferenceSteps < 1)
        {
            throw new ArgumentOutOfRangeException(
                nameof(numInferenceSteps),
                numInferenceSteps,
                $"LCMScheduler can take at most original_inference_steps × strength = {available} steps ({originalSteps} × {strength}); use fewer steps or a higher strength.");
        }

        if (numInferenceSteps > originalSteps)
        {
            throw new ArgumentOutOfRangeException(nameof(numInferenceSteps), numInferenceSteps, $"LCMScheduler can take at most original_inference_steps = {originalSteps} steps.");
        }

        double[] indices = NumpyCompat.Linspace(0, available, numInferenceSteps, endpoint: false);
        var timesteps = new float[numInferenceSteps];
        for (int i = 0; i < numInferenceSteps; i++)
        {
            int position = (int)Math.Floor(indices[i]);
            timesteps[i] = (available - position) * k - 1;
        }

        return timesteps;
    }

    /// <summary>d = c_out·x₀ + c_skip·x; √ᾱ_prev·d + √(1 − ᾱ_prev)·z.</summary>
    private readonly struct Renoise(float cOut, float cSkip, float sqrtAlphaPrev, float sqrtBetaPrev) : IElementwiseOp3
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float x0, float x, float z) => sqrtAlphaPrev * (cOut * x0 + cSkip * x) + sqrtBetaPrev * z;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> x0, Vector<float> x, Vector<float> z) => sqrtAlphaPrev * (cOut * x0 + cSkip * x) + sqrtBetaPrev * z;
    }
}
