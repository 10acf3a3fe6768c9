using System.Numerics;
using System.Runtime.CompilerServices;

namespace StableDiffusion.Schedulers;

/// <summary>
/// Heun's second-order method (Karras et al., 2022, algorithm 1): an Euler step, then a correction with the average of
/// the two slopes. Port of diffusers' <c>HeunDiscreteScheduler</c>.
/// </summary>
/// <remarks>
/// <see cref="Order"/> is 2: N steps take 2N − 1 model evaluations (each timestep after the first appears twice), the
/// last being a plain Euler step to σ = 0.
/// </remarks>
public sealed class HeunDiscreteScheduler : DiffusionScheduler<HeunDiscreteScheduler, HeunDiscreteSchedulerOptions>, ICustomTimestepsScheduler
{
    /// <summary>The diffusers class name.</summary>
    public const string DiffusersName = "HeunDiscreteScheduler";

    private float[]? _originalSample;
    private float[]? _prevDerivative;
    private float[]? _firstSample;
    private float? _dt;

    /// <summary>Creates the scheduler from options (diffusers' defaults when null).</summary>
    /// <param name="options">The options.</param>
    /// <exception cref="SchedulerConfigException">The options contradict each other.</exception>
    public HeunDiscreteScheduler(HeunDiscreteSchedulerOptions? options = null)
        : base(options)
    {
        // diffusers sets a schedule of all training timesteps at construction.
        SigmaArray = Interleave(Noise.Sigmas.Reverse());
    }

    /// <inheritdoc />
    public override int Order => 2;

    /// <inheritdoc />
    /// <remarks>The largest sigma; for leading spacing √(σ_max² + 1), as diffusers has it.</remarks>
    public override float InitNoiseSigma => KDiffusionMath.InitNoiseSigma(SigmaArray, Options.TimestepSpacing);

    private protected override bool HasStepState => _dt is not null;

    /// <inheritdoc />
    /// <remarks>
    /// One timestep per step: the schedule evaluates each after the first twice, as with a step count. The sigmas are
    /// interpolated at the given timesteps; Karras, exponential and beta spacing do not apply.
    /// </remarks>
    public void SetTimesteps(IReadOnlyList<float> timesteps)
    {
        float[] custom = CustomList(timesteps, nameof(timesteps));
        RequireNoRespacedSigmas(Options);
        double[] sigmas = SigmaSchedules.Interpolate(custom, Noise.Sigmas);
        InstallTimesteps(Interleaved(custom, sigmas), custom.Length);
    }

    private protected override float[] ComputeTimesteps(int numInferenceSteps)
    {
        SigmaSpacing spacing = SigmaSchedules.SpacingOf(Options);
        (float[] timesteps, double[] sigmas) = SigmaSchedules.KDiffusion(
            Noise, Options.TimestepSpacing, Options.StepsOffset, numInferenceSteps, spacing, Options.SigmaMin, Options.SigmaMax);
        return Interleaved(timesteps, sigmas);
    }

    // Sets the interleaved sigmas and returns [t0, t1, t1, t2, t2, …]: every timestep after the first is evaluated twice.
    private float[] Interleaved(float[] timesteps, double[] sigmas)
    {
        SigmaArray = Interleave(sigmas.Select(s => (float)s));
        return KDiffusionMath.RepeatAfterFirst(timesteps);
    }

    private protected override void ResetState() => _dt = null;

    private protected override void ScaleModelInputCore(ReadOnlySpan<float> sample, float timestep, Span<float> destination) =>
        KDiffusionMath.ScaleModelInput(sample, SigmaArray[CurrentStepIndex(timestep)], destination);

    private protected override void StepCore(ReadOnlySpan<float> modelOutput, float timestep, ReadOnlySpan<float> sample, Span<float> prevSample, SchedulerStepOptions options, int batchSize)
    {
        int index = StepIndexForStep(timestep, TimestepArray.Length);
        bool firstOrder = _dt is null;
        float sigma = firstOrder ? SigmaArray[index] : SigmaArray[index - 1];
        float sigmaNext = firstOrder ? SigmaArray[index + 1] : SigmaArray[index];

        float[] originalSample = Buffer(ref _originalSample, sample.Length);
        float sigmaInput = firstOrder ? sigma : sigmaNext;
        Prediction.SigmaOriginalSample(Options.PredictionType, sigmaInput, sigmaInput, sample, modelOutput, originalSample);
        if (Options.ClipSample)
        {
            SampleClipping.Clip(originalSample, (float)Options.ClipSampleRange);
        }

        if (firstOrder)
        {
            // Euler step to σ_next; keep its slope and starting point for the correction.
            float dt = sigmaNext - sigma;
            float[] derivative = Buffer(ref _prevDerivative, sample.Length);
            Elementwise.Apply(new Slope(sigma), sample, originalSample, derivative);
            sample.CopyTo(Buffer(ref _firstSample, sample.Length));
            Elementwise.Apply(new EulerUpdate(dt), sample, derivative, prevSample);
            _dt = dt;
        }
        else
        {
            // Redo the step from its starting point with the average of both slopes.
            Elementwise.Apply(new HeunCorrection(sigmaNext, _dt!.Value), _firstSample, sample, originalSample, _prevDerivative, prevSample);
            _dt = null;
        }

        AdvanceStepIndex();
    }

    private protected override void AddNoiseCore(ReadOnlySpan<float> originalSamples, ReadOnlySpan<float> noise, float timestep, Span<float> destination) =>
        AddNoiseAtSigma(SigmaArray, originalSamples, noise, timestep, destination);

    // [s0, s1, s1, s2, s2, …, s_{N−1}, s_{N−1}, 0]: the interior sigmas twice, then the final zero.
    private static float[] Interleave(IEnumerable<float> sigmas) => [.. KDiffusionMath.RepeatAfterFirst([.. sigmas]), 0f];

    private readonly struct Slope(float sigma) : IElementwiseOp2
    {
        public float Invoke(float x, float x0) => (x - x0) / sigma;

        public Vector<float> Invoke(Vector<float> x, Vector<float> x0) => (x - x0) / sigma;
    }

    private readonly struct EulerUpdate(float dt) : IElementwiseOp2
    {
        public float Invoke(float x, float d) => x + d * dt;

        public Vector<float> Invoke(Vector<float> x, Vector<float> d) => x + d * dt;
    }

    /// <summary>x_first + ((d_first + (x − x₀)/σ_next) / 2)·dt.</summary>
    private readonly struct HeunCorrection(float sigmaNext, float dt) : IElementwiseOp4
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float first, float x, float x0, float firstSlope) => first + (firstSlope + (x - x0) / sigmaNext) / 2f * dt;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> first, Vector<float> x, Vector<float> x0, Vector<float> firstSlope) =>
            first + (firstSlope + (x - x0) / sigmaNext) / 2f * dt;
    }
}
