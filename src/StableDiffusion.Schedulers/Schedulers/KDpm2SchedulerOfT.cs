using System.Diagnostics.CodeAnalysis;

namespace StableDiffusion.Schedulers;

/// <summary>
/// The second-order DPM-Solver-2 sampler of k-diffusion, which <see cref="KDpm2DiscreteScheduler"/> ("DPM2") and
/// <see cref="KDpm2AncestralDiscreteScheduler"/> ("DPM2 a") share: each step takes an Euler step to a midpoint noise
/// level, evaluates the model there, and redoes the step from its start with the midpoint's slope; the ancestral variant
/// ends that step below the next noise level and adds fresh noise back up to it.
/// </summary>
/// <remarks>
/// <see cref="Order"/> is 2: N steps take 2N − 1 model evaluations, the midpoint timesteps being fractional.
/// </remarks>
/// <typeparam name="TSelf">The scheduler class itself.</typeparam>
/// <typeparam name="TOptions">Its options record.</typeparam>
public abstract class KDpm2Scheduler<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors | DynamicallyAccessedMemberTypes.PublicFields)] TSelf, [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties | DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] TOptions> : DiffusionScheduler<TSelf, TOptions>
    where TSelf : KDpm2Scheduler<TSelf, TOptions>
    where TOptions : KDpm2SchedulerOptions, new()
{
    private KDpm2Schedule _schedule;
    private float[]? _originalSample;
    private float[]? _firstSample;
    private float[]? _noise;
    private bool _inSecondOrder;

    private protected KDpm2Scheduler(TOptions? options, bool ancestral)
        : base(options)
    {
        // diffusers sets a schedule of all training timesteps at construction (its respacing does not move the largest sigma).
        _schedule = KDpm2Schedule.Create(Noise, Options, NumTrainTimesteps, ancestral, respaced: false);
        SigmaArray = _schedule.Sigmas;
    }

    /// <inheritdoc />
    public override int Order => 2;

    /// <summary>The interpolated (midpoint) sigmas of the second-order evaluations (diffusers' <c>sigmas_interpol</c>).</summary>
    public IReadOnlyList<float> SigmasInterpol => Array.AsReadOnly(_schedule.SigmasInterpol);

    /// <inheritdoc />
    /// <remarks>The largest sigma; for leading spacing √(σ_max² + 1), as diffusers has it.</remarks>
    public override float InitNoiseSigma => _schedule.InitNoiseSigma;

    private protected override bool HasStepState => _inSecondOrder;

    private protected override float[] ComputeTimesteps(int numInferenceSteps)
    {
        _schedule = KDpm2Schedule.Create(Noise, Options, numInferenceSteps, _schedule.Ancestral);
        SigmaArray = _schedule.Sigmas;
        return _schedule.Timesteps;
    }

    private protected override void ResetState() => _inSecondOrder = false;

    private protected override void ScaleModelInputCore(ReadOnlySpan<float> sample, float timestep, Span<float> destination)
    {
        int index = CurrentStepIndex(timestep);
        KDiffusionMath.ScaleModelInput(sample, _inSecondOrder ? _schedule.Midpoint(index - 1) : SigmaArray[index], destination);
    }

    private protected override void StepCore(ReadOnlySpan<float> modelOutput, float timestep, ReadOnlySpan<float> sample, Span<float> prevSample, SchedulerStepOptions options, int batchSize)
    {
        int index = StepIndexForStep(timestep, TimestepArray.Length);
        float[] originalSample = Buffer(ref _originalSample, sample.Length);
        if (!_inSecondOrder)
        {
            // Euler step to the midpoint σ_interpol; the full step starts again from this sample.
            float sigma = SigmaArray[index];
            float sigmaInterpol = _schedule.Midpoint(index);
            Prediction.SigmaOriginalSample(Options.PredictionType, sigma, sigma, sample, modelOutput, originalSample);
            sample.CopyTo(Buffer(ref _firstSample, sample.Length));
            Elementwise.Apply(new KDiffusionMath.EulerFromOriginal(sigma, sigmaInterpol - sigma), sample, originalSample, prevSample);
            _inSecondOrder = true;
        }
        else
        {
            // The full step from the first sample with the slope measured at the midpoint: to the next σ, or down to σ_down
            // and then fresh noise up by σ_up.
            float sigma = SigmaArray[index - 1];
            float sigmaInterpol = _schedule.Midpoint(index - 1);
            Prediction.SigmaOriginalSample(Options.PredictionType, sigmaInterpol, sigmaInterpol, sample, modelOutput, originalSample);
            if (_schedule.Ancestral)
            {
                float[] noise = Buffer(ref _noise, sample.Length);
                RequireGenerator(options, "adds fresh noise at the second evaluation of every step").FillStandardNormal(noise);
                var ancestralStep = new KDpm2Schedule.AncestralSecondOrderStep(sigmaInterpol, _schedule.SigmasDown[index - 1] - sigma, _schedule.SigmasUp[index - 1]);
                Elementwise.Apply(ancestralStep, _firstSample, sample, originalSample, noise, prevSample);
            }
            else
            {
                Elementwise.Apply(new KDpm2Schedule.SecondOrderStep(sigmaInterpol, SigmaArray[index] - sigma), _firstSample, sample, originalSample, prevSample);
            }

            _inSecondOrder = false;
        }

        AdvanceStepIndex();
    }

    private protected override void AddNoiseCore(ReadOnlySpan<float> originalSamples, ReadOnlySpan<float> noise, float timestep, Span<float> destination) =>
        AddNoiseAtSigma(SigmaArray, originalSamples, noise, timestep, destination);
}
