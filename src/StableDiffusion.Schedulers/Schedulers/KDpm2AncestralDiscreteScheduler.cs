using System.Numerics;
using System.Runtime.CompilerServices;

namespace StableDiffusion.Schedulers;

/// <summary>
/// DPM-Solver-2 with ancestral sampling ("DPM2 a"; "DPM2 a Karras" with
/// <see cref="KDpm2AncestralDiscreteSchedulerOptions.UseKarrasSigmas"/>): the second-order step descends below the next
/// noise level and adds fresh noise back up to it. Port of diffusers' <c>KDPM2AncestralDiscreteScheduler</c>.
/// </summary>
/// <remarks><see cref="Order"/> is 2. The second evaluation of each step draws noise, so a generator is required.</remarks>
public sealed class KDpm2AncestralDiscreteScheduler : DiffusionScheduler<KDpm2AncestralDiscreteScheduler, KDpm2AncestralDiscreteSchedulerOptions>
{
    /// <summary>The diffusers class name.</summary>
    public const string DiffusersName = "KDPM2AncestralDiscreteScheduler";

    private KDpm2Schedule _schedule;
    private float[]? _originalSample;
    private float[]? _firstSample;
    private float[]? _noise;
    private bool _inSecondOrder;

    /// <summary>Creates the scheduler from options (diffusers' defaults when null).</summary>
    /// <param name="options">The options.</param>
    /// <exception cref="SchedulerConfigException">The options contradict each other.</exception>
    public KDpm2AncestralDiscreteScheduler(KDpm2AncestralDiscreteSchedulerOptions? options = null)
        : base(options)
    {
        // diffusers sets a schedule of all training timesteps at construction (its respacing does not move the largest sigma).
        _schedule = KDpm2Schedule.Create(Noise, Options, Options.NumTrainTimesteps, ancestral: true, respaced: false);
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
        _schedule = KDpm2Schedule.Create(Noise, Options, numInferenceSteps, ancestral: true);
        SigmaArray = _schedule.Sigmas;
        return _schedule.Timesteps;
    }

    private protected override void ResetState() => _inSecondOrder = false;

    private protected override void ScaleModelInputCore(ReadOnlySpan<float> sample, float timestep, Span<float> destination)
    {
        int index = CurrentStepIndex(timestep);
        KDiffusionMath.ScaleModelInput(sample, _inSecondOrder ? _schedule.SigmasInterpol[index - 1] : SigmaArray[index], destination);
    }

    private protected override void StepCore(ReadOnlySpan<float> modelOutput, float timestep, ReadOnlySpan<float> sample, Span<float> prevSample, SchedulerStepOptions options, int batchSize)
    {
        int index = StepIndexForStep(timestep, TimestepArray.Length);
        float[] originalSample = Buffer(ref _originalSample, sample.Length);
        if (!_inSecondOrder)
        {
            // Euler step to the midpoint between σ and the level the ancestral step descends to.
            float sigma = SigmaArray[index];
            float sigmaInterpol = _schedule.SigmasInterpol[index];
            Prediction.SigmaOriginalSample(Options.PredictionType, sigma, sigma, sample, modelOutput, originalSample);
            sample.CopyTo(Buffer(ref _firstSample, sample.Length));
            Elementwise.Apply(new KDiffusionMath.EulerFromOriginal(sigma, sigmaInterpol - sigma), sample, originalSample, prevSample);
            _inSecondOrder = true;
        }
        else
        {
            // From the first sample down to σ_down with the midpoint slope, then fresh noise up by σ_up.
            float sigma = SigmaArray[index - 1];
            float sigmaInterpol = _schedule.SigmasInterpol[index - 1];
            float sigmaUp = _schedule.SigmasUp[index - 1];
            float sigmaDown = _schedule.SigmasDown[index - 1];
            Prediction.SigmaOriginalSample(Options.PredictionType, sigmaInterpol, sigmaInterpol, sample, modelOutput, originalSample);
            float[] noise = Buffer(ref _noise, sample.Length);
            RequireGenerator(options, "adds fresh noise at the second evaluation of every step").FillStandardNormal(noise);
            Elementwise.Apply(new AncestralSecondOrderStep(sigmaInterpol, sigmaDown - sigma, sigmaUp), _firstSample, sample, originalSample, noise, prevSample);
            _inSecondOrder = false;
        }

        AdvanceStepIndex();
    }

    private protected override void AddNoiseCore(ReadOnlySpan<float> originalSamples, ReadOnlySpan<float> noise, float timestep, Span<float> destination) =>
        AddNoiseAtSigma(SigmaArray, originalSamples, noise, timestep, destination);

    /// <summary>d = (x − x₀)/σ_interpol; (x_first + d·dt) + z·σ_up.</summary>
    private readonly struct AncestralSecondOrderStep(float sigmaInterpol, float dt, float sigmaUp) : IElementwiseOp4
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float first, float x, float x0, float z) => first + (x - x0) / sigmaInterpol * dt + z * sigmaUp;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> first, Vector<float> x, Vector<float> x0, Vector<float> z) =>
            first + (x - x0) / sigmaInterpol * dt + z * sigmaUp;
    }
}
