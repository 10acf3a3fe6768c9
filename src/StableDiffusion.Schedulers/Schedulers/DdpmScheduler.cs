namespace StableDiffusion.Schedulers;

/// <summary>
/// Denoising diffusion probabilistic models (Ho et al., 2020): ancestral sampling that adds fresh noise every step.
/// Port of diffusers' <c>DDPMScheduler</c>.
/// </summary>
public sealed class DdpmScheduler : DiffusionScheduler<DdpmScheduler, DdpmSchedulerOptions>, ICustomTimestepsScheduler
{
    /// <summary>The diffusers class name.</summary>
    public const string DiffusersName = "DDPMScheduler";

    private float[]? _originalSample;
    private float[]? _noise;
    private float[]? _scratch;

    /// <summary>Creates the scheduler from options (diffusers' defaults when null).</summary>
    /// <param name="options">The options.</param>
    /// <exception cref="SchedulerConfigException">The options contradict each other.</exception>
    public DdpmScheduler(DdpmSchedulerOptions? options = null)
        : base(options)
    {
    }

    /// <inheritdoc />
    /// <remarks>The timesteps must be whole, strictly descending and below num_train_timesteps; each step goes to the next one (−1 after the last).</remarks>
    public void SetTimesteps(IReadOnlyList<float> timesteps)
    {
        float[] custom = DescendingTrainingTimesteps(timesteps);
        InstallTimesteps(custom, custom.Length);
    }

    private protected override float[] ComputeTimesteps(int numInferenceSteps) =>
        TrainingTableTimesteps(Options, numInferenceSteps).Select(t => (float)t).ToArray();

    private protected override void StepCore(ReadOnlySpan<float> modelOutput, float timestep, ReadOnlySpan<float> sample, Span<float> prevSample, SchedulerStepOptions options, int batchSize)
    {
        int t = TrainingTimestep(timestep);
        int prevT = PreviousTimestep(t, timestep);
        float alphaProd = Noise.AlphasCumprod[t];
        float alphaProdPrev = prevT >= 0 ? Noise.AlphasCumprod[prevT] : 1f;
        float betaProd = 1f - alphaProd;
        float betaProdPrev = 1f - alphaProdPrev;
        float currentAlpha = alphaProd / alphaProdPrev;
        float currentBeta = 1f - currentAlpha;
        int length = sample.Length;

        // 1. The predicted original sample, kept in range.
        float[] originalSample = Buffer(ref _originalSample, length);
        Prediction.DiscreteOriginalSample(Options.PredictionType, MathF.Sqrt(alphaProd), MathF.Sqrt(betaProd), sample, modelOutput, originalSample);
        KeepInRange(originalSample, batchSize, Options, ref _scratch);

        // 2. The posterior mean, formula (7) of the DDPM paper.
        float originalCoefficient = MathF.Sqrt(alphaProdPrev) * currentBeta / betaProd;
        float sampleCoefficient = MathF.Sqrt(currentAlpha) * betaProdPrev / betaProd;
        if (t == 0)
        {
            Elementwise.LinearCombination(originalCoefficient, originalSample, sampleCoefficient, sample, prevSample);
            return;
        }

        // 3. Plus noise of the posterior variance.
        float[] noise = Buffer(ref _noise, length);
        RequireGenerator(options, "adds noise at every step but the last").FillStandardNormal(noise);
        float variance = MathF.Max(betaProdPrev / betaProd * currentBeta, 1e-20f);
        float stdDev = Options.VarianceType switch
        {
            DdpmVarianceType.FixedSmallLog => MathF.Exp(0.5f * MathF.Log(variance)),
            DdpmVarianceType.FixedLarge => MathF.Sqrt(currentBeta),
            _ => MathF.Sqrt(variance),
        };
        Elementwise.LinearCombination(originalCoefficient, originalSample, sampleCoefficient, sample, stdDev, noise, prevSample);
    }

    private protected override void AddNoiseCore(ReadOnlySpan<float> originalSamples, ReadOnlySpan<float> noise, float timestep, Span<float> destination) =>
        AddNoiseAtTrainingTimestep(originalSamples, noise, timestep, destination);

    // diffusers' previous_timestep: the next entry of the schedule (−1 after the last).
    private int PreviousTimestep(int t, float timestep)
    {
        float[] timesteps = TimestepArray;
        int index = Array.IndexOf(timesteps, timestep);
        if (index < 0)
        {
            throw new ArgumentException($"Timestep {t} is not one of {ClassName}'s Timesteps.", nameof(timestep));
        }

        return index == timesteps.Length - 1 ? -1 : (int)timesteps[index + 1];
    }
}
