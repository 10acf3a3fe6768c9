namespace StableDiffusion.Schedulers;

/// <summary>
/// Denoising diffusion implicit models (Song et al., 2020): deterministic sampling with η = 0, DDPM-like with η = 1.
/// Port of diffusers' <c>DDIMScheduler</c>.
/// </summary>
/// <remarks>
/// As in diffusers, the previous timestep is always <c>t − T/N</c> (the leading stride), whichever spacing produced the
/// schedule.
/// </remarks>
public sealed class DdimScheduler : DiffusionScheduler<DdimScheduler, DdimSchedulerOptions>
{
    /// <summary>The diffusers class name.</summary>
    public const string DiffusersName = "DDIMScheduler";

    private float[]? _originalSample;
    private float[]? _epsilon;
    private float[]? _noise;
    private float[]? _scratch;

    /// <summary>Creates the scheduler from options (diffusers' defaults when null).</summary>
    /// <param name="options">The options.</param>
    /// <exception cref="SchedulerConfigException">The options contradict each other.</exception>
    public DdimScheduler(DdimSchedulerOptions? options = null)
        : base(options)
    {
    }

    private protected override float[] ComputeTimesteps(int numInferenceSteps) =>
        TrainingTableTimesteps(Options, numInferenceSteps).Select(t => (float)t).ToArray();

    private protected override void StepCore(ReadOnlySpan<float> modelOutput, float timestep, ReadOnlySpan<float> sample, Span<float> prevSample, SchedulerStepOptions options, int batchSize)
    {
        float eta = options.Eta;
        if (!(eta >= 0) || float.IsInfinity(eta))
        {
            throw new ArgumentOutOfRangeException(nameof(options), eta, "SchedulerStepOptions.Eta must be a finite number of at least 0.");
        }

        int t = TrainingTimestep(timestep);
        int prevTimestep = t - NumTrainTimesteps / NumInferenceSteps;
        float alphaProd = Noise.AlphasCumprod[t];
        float alphaProdPrev = prevTimestep >= 0 ? Noise.AlphasCumprod[prevTimestep] : Noise.FinalAlphaCumprod(Options.SetAlphaToOne);
        float betaProd = 1f - alphaProd;
        float sqrtAlphaProd = MathF.Sqrt(alphaProd);
        float sqrtBetaProd = MathF.Sqrt(betaProd);
        int length = sample.Length;

        // 1. The predicted original sample and noise.
        float[] originalSample = Buffer(ref _originalSample, length);
        Prediction.DiscreteOriginalSample(Options.PredictionType, sqrtAlphaProd, sqrtBetaProd, sample, modelOutput, originalSample);
        ReadOnlySpan<float> epsilon = modelOutput;
        if (Options.PredictionType != PredictionType.Epsilon)
        {
            float[] epsilonBuffer = Buffer(ref _epsilon, length);
            Prediction.VpEpsilon(Options.PredictionType, sqrtAlphaProd, sqrtBetaProd, sample, modelOutput, epsilonBuffer);
            epsilon = epsilonBuffer;
        }

        // 2. Keep it in range.
        KeepInRange(originalSample, batchSize, Options, ref _scratch);

        // 3. σ_t = η·sqrt(variance), formula (16) of the DDIM paper.
        float betaProdPrev = 1f - alphaProdPrev;
        float variance = betaProdPrev / betaProd * (1f - alphaProd / alphaProdPrev);
        float stdDev = eta * MathF.Sqrt(variance);
        if (options.UseClippedModelOutput)
        {
            float[] epsilonBuffer = Buffer(ref _epsilon, length);
            Elementwise.Apply(new Prediction.SubtractScaledThenDivide(sqrtAlphaProd, sqrtBetaProd), sample, originalSample, epsilonBuffer);
            epsilon = epsilonBuffer;
        }

        // 4. x_{t−1} = √ᾱ_{t−1}·x₀ + √(1 − ᾱ_{t−1} − σ_t²)·ε (+ σ_t·z).
        float directionSquared = 1f - alphaProdPrev - stdDev * stdDev;
        if (directionSquared < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), eta, $"SchedulerStepOptions.Eta = {eta} is too large at timestep {t}: the remaining noise variance would be negative.");
        }

        float sqrtAlphaProdPrev = MathF.Sqrt(alphaProdPrev);
        float directionCoefficient = MathF.Sqrt(directionSquared);
        if (eta > 0)
        {
            float[] noise = Buffer(ref _noise, length);
            RequireGenerator(options, "draws variance noise when eta > 0").FillStandardNormal(noise);
            Elementwise.LinearCombination(sqrtAlphaProdPrev, originalSample, directionCoefficient, epsilon, stdDev, noise, prevSample);
        }
        else
        {
            Elementwise.LinearCombination(sqrtAlphaProdPrev, originalSample, directionCoefficient, epsilon, prevSample);
        }
    }

    private protected override void AddNoiseCore(ReadOnlySpan<float> originalSamples, ReadOnlySpan<float> noise, float timestep, Span<float> destination) =>
        AddNoiseAtTrainingTimestep(originalSamples, noise, timestep, destination);
}
