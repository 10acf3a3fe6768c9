namespace StableDiffusion.Schedulers;

/// <summary>
/// The second-order DPM-Solver-2 sampler of k-diffusion ("DPM2"; "DPM2 Karras" with
/// <see cref="KDpm2DiscreteSchedulerOptions.UseKarrasSigmas"/>): each step evaluates the model again at the geometric
/// midpoint of the two noise levels. Port of diffusers' <c>KDPM2DiscreteScheduler</c>.
/// </summary>
/// <remarks><see cref="Order"/> is 2: N steps take 2N − 1 model evaluations, the midpoint timesteps being fractional.</remarks>
public sealed class KDpm2DiscreteScheduler : DiffusionScheduler<KDpm2DiscreteScheduler, KDpm2DiscreteSchedulerOptions>
{
    /// <summary>The diffusers class name.</summary>
    public const string DiffusersName = "KDPM2DiscreteScheduler";

    private KDpm2Schedule _schedule;
    private float[]? _originalSample;
    private float[]? _firstSample;
    private bool _inSecondOrder;

    /// <summary>Creates the scheduler from options (diffusers' defaults when null).</summary>
    /// <param name="options">The options.</param>
    /// <exception cref="SchedulerConfigException">The options contradict each other.</exception>
    public KDpm2DiscreteScheduler(KDpm2DiscreteSchedulerOptions? options = null)
        : base(options)
    {
        // diffusers sets a schedule of all training timesteps at construction (its respacing does not move the largest sigma).
        _schedule = KDpm2Schedule.Create(Noise, Options, Options.NumTrainTimesteps, ancestral: false, respaced: false);
        SigmaArray = _schedule.Sigmas;
    }

    /// <inheritdoc />
    public override int Order => 2;

    /// <summary>The interpolated (midpoint) sigmas of the second-order evaluations (diffusers' <c>sigmas_interpol</c>).</summary>
    public IReadOnlyList<float> SigmasInterpol => Array.AsReadOnly(_schedule.SigmasInterpol);

    /// <inheritdoc />
    /// <remarks>The largest sigma; for leading spacing √(σ_max² + 1), as diffusers has it.</remarks>
    public override float InitNoiseSigma => KDiffusionMath.InitNoiseSigma(SigmaArray, Options.TimestepSpacing);

    private protected override bool HasStepState => _inSecondOrder;

    private protected override float[] ComputeTimesteps(int numInferenceSteps)
    {
        _schedule = KDpm2Schedule.Create(Noise, Options, numInferenceSteps, ancestral: false);
        SigmaArray = _schedule.Sigmas;
        return _schedule.Timesteps;
    }

    private protected override void ResetState() => _inSecondOrder = false;

    private protected override void ScaleModelInputCore(ReadOnlySpan<float> sample, float timestep, Span<float> destination)
    {
        int index = CurrentStepIndex(timestep);
        KDiffusionMath.ScaleModelInput(sample, _inSecondOrder ? _schedule.SigmasInterpol[index] : SigmaArray[index], destination);
    }

    private protected override void StepCore(ReadOnlySpan<float> modelOutput, float timestep, ReadOnlySpan<float> sample, Span<float> prevSample, SchedulerStepOptions options, int batchSize)
    {
        int index = StepIndexForStep(timestep, TimestepArray.Length);
        float[] sigmas = SigmaArray;
        float[] interpol = _schedule.SigmasInterpol;
        float[] originalSample = Buffer(ref _originalSample, sample.Length);
        if (!_inSecondOrder)
        {
            // Euler step to the midpoint σ_interpol.
            float sigma = sigmas[index];
            float sigmaInterpol = interpol[index + 1];
            Prediction.SigmaOriginalSample(Options.PredictionType, sigma, sigma, sample, modelOutput, originalSample);
            sample.CopyTo(Buffer(ref _firstSample, sample.Length));
            Elementwise.Apply(new KDiffusionMath.EulerFromOriginal(sigma, sigmaInterpol - sigma), sample, originalSample, prevSample);
            _inSecondOrder = true;
        }
        else
        {
            // The full step from the first sample, with the slope measured at the midpoint.
            float sigma = sigmas[index - 1];
            float sigmaInterpol = interpol[index];
            float sigmaNext = sigmas[index];
            Prediction.SigmaOriginalSample(Options.PredictionType, sigmaInterpol, sigmaInterpol, sample, modelOutput, originalSample);
            Elementwise.Apply(new KDpm2Schedule.SecondOrderStep(sigmaInterpol, sigmaNext - sigma), _firstSample, sample, originalSample, prevSample);
            _inSecondOrder = false;
        }

        AdvanceStepIndex();
    }

    private protected override void AddNoiseCore(ReadOnlySpan<float> originalSamples, ReadOnlySpan<float> noise, float timestep, Span<float> destination) =>
        AddNoiseAtSigma(SigmaArray, originalSamples, noise, timestep, destination);
}
