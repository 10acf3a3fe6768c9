using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace StableDiffusion.Schedulers;

/// <summary>
/// Euler's method on the probability-flow ODE, as in Karras et al. (2022) algorithm 2 ("Euler" in UIs; "Euler Karras"
/// with <see cref="EulerDiscreteSchedulerOptions.UseKarrasSigmas"/>). Port of diffusers' <c>EulerDiscreteScheduler</c>.
/// </summary>
/// <remarks>
/// Deterministic unless <see cref="SchedulerStepOptions.SChurn"/> adds noise back. Built from Stable Diffusion 1.x's
/// configuration it spaces timesteps linearly (999, 888, … for 10 steps), as diffusers does.
/// </remarks>
public sealed class EulerDiscreteScheduler : DiffusionScheduler<EulerDiscreteScheduler, EulerDiscreteSchedulerOptions>, ICustomTimestepsScheduler, ICustomSigmasScheduler
{
    /// <summary>The diffusers class name.</summary>
    public const string DiffusersName = "EulerDiscreteScheduler";

    private float[]? _churned;
    private float[]? _noise;
    private float[]? _originalSample;

    /// <summary>Creates the scheduler from options (diffusers' defaults when null).</summary>
    /// <param name="options">The options.</param>
    /// <exception cref="SchedulerConfigException">The options contradict each other.</exception>
    public EulerDiscreteScheduler(EulerDiscreteSchedulerOptions? options = null)
        : base(options, finiteTerminalSigma: true)
    {
        SigmaArray = [.. Noise.Sigmas.Reverse(), 0f];
    }

    /// <inheritdoc />
    /// <remarks>The largest sigma; for leading spacing √(σ_max² + 1), as diffusers has it.</remarks>
    public override float InitNoiseSigma => KDiffusionMath.InitNoiseSigma(SigmaArray, Options.TimestepSpacing);

    /// <inheritdoc />
    /// <remarks>The sigmas are interpolated at the given timesteps, as diffusers does; Karras, exponential and beta spacing do not apply.</remarks>
    public void SetTimesteps(IReadOnlyList<float> timesteps)
    {
        float[] custom = CustomList(timesteps, nameof(timesteps));
        RequireNoRespacedSigmas(Options);
        if (ContinuousTimesteps)
        {
            throw new InvalidOperationException("EulerDiscreteScheduler cannot take custom timesteps with timestep_type \"continuous\" and v-prediction: its timesteps come from the sigmas.");
        }

        double[] sigmas = Options.InterpolationType == InterpolationType.LogLinear
            ? LogLinearSigmas(custom.Length)
            : SigmaSchedules.Interpolate(custom, Noise.Sigmas);
        SigmaArray = [.. sigmas.Select(s => (float)s), Noise.FinalSigma(Options.FinalSigmasType)];
        InstallTimesteps(custom, custom.Length);
    }

    /// <inheritdoc />
    /// <remarks>The sigmas are used as given (the final one included); the timesteps are mapped back from them.</remarks>
    public void SetSigmas(IReadOnlyList<float> sigmas)
    {
        float[] custom = CustomList(sigmas, nameof(sigmas), minimumCount: 2);
        if (custom.Any(s => s < 0))
        {
            throw new ArgumentException("Sigmas must not be negative.", nameof(sigmas));
        }

        SigmaArray = custom;
        float[] timesteps = ContinuousTimesteps
            ? custom[..^1].Select(s => 0.25f * MathF.Log(s)).ToArray()
            : SigmaSchedules.ToTimesteps(custom[..^1].Select(s => (double)s), Noise.LogSigmas, round: false).Select(t => (float)t).ToArray();
        InstallTimesteps(timesteps, custom.Length - 1);
    }

    private bool ContinuousTimesteps => Options.TimestepType == TimestepType.Continuous && Options.PredictionType == PredictionType.VPrediction;

    private protected override float[] ComputeTimesteps(int numInferenceSteps)
    {
        SigmaSpacing spacing = SigmaSchedules.SpacingOf(Options);
        float[] timesteps;
        double[] sigmas;
        if (Options.InterpolationType == InterpolationType.LogLinear)
        {
            timesteps = TimestepSchedules.Continuous(Options.TimestepSpacing, NumTrainTimesteps, numInferenceSteps, Options.StepsOffset);
            sigmas = LogLinearSigmas(numInferenceSteps);
            if (spacing != SigmaSpacing.Interpolated)
            {
                sigmas = SigmaSchedules.Space(spacing, Options.SigmaMin ?? sigmas[^1], Options.SigmaMax ?? sigmas[0], numInferenceSteps);
                timesteps = SigmaSchedules.ToTimesteps(sigmas, Noise.LogSigmas, round: false).Select(t => (float)t).ToArray();
            }
        }
        else
        {
            (timesteps, sigmas) = SigmaSchedules.KDiffusion(Noise, Options.TimestepSpacing, Options.StepsOffset, numInferenceSteps, spacing, Options.SigmaMin, Options.SigmaMax);
        }

        SigmaArray = [.. sigmas.Select(s => (float)s), Noise.FinalSigma(Options.FinalSigmasType)];
        return ContinuousTimesteps ? SigmaArray[..^1].Select(s => 0.25f * MathF.Log(s)).ToArray() : timesteps;
    }

    // diffusers spaces N + 1 sigmas evenly in log σ here (float32 torch), and appends the final sigma as well.
    private double[] LogLinearSigmas(int numInferenceSteps)
    {
        float[] table = Noise.Sigmas;
        return TorchCompat.LinspaceFloat32(MathF.Log(table[^1]), MathF.Log(table[0]), numInferenceSteps + 1).Select(l => (double)MathF.Exp(l)).ToArray();
    }

    private protected override void ScaleModelInputCore(ReadOnlySpan<float> sample, float timestep, Span<float> destination) =>
        KDiffusionMath.ScaleModelInput(sample, SigmaArray[CurrentStepIndex(timestep)], destination);

    private protected override void StepCore(ReadOnlySpan<float> modelOutput, float timestep, ReadOnlySpan<float> sample, Span<float> prevSample, SchedulerStepOptions options, int batchSize)
    {
        int index = StepIndexForStep(timestep, SigmaArray.Length - 1);
        float sigma = SigmaArray[index];

        // Churn (Karras et al., algorithm 2): raise the noise level to σ̂ = σ(γ + 1) by adding fresh noise.
        double gamma = options.STMin <= sigma && sigma <= options.STMax
            ? Math.Min((double)options.SChurn / (SigmaArray.Length - 1), Math.Sqrt(2) - 1)
            : 0;
        float sigmaHat = sigma * (float)(gamma + 1);
        if (gamma > 0)
        {
            float[] noise = Buffer(ref _noise, sample.Length);
            RequireGenerator(options, "adds churn noise when s_churn > 0").FillStandardNormal(noise);
            TensorPrimitives.Multiply(noise, options.SNoise, noise);
            float[] churned = Buffer(ref _churned, sample.Length);
            Elementwise.LinearCombination(1f, sample, MathF.Sqrt(sigmaHat * sigmaHat - sigma * sigma), noise, churned);
            sample = churned;
        }

        float dt = SigmaArray[index + 1] - sigmaHat;
        switch (Options.PredictionType)
        {
            case PredictionType.Epsilon:
                Elementwise.Apply(new EulerEpsilonStep(sigmaHat, dt), sample, modelOutput, prevSample);
                break;
            default:
                // x₀ first (v-prediction uses σ, not σ̂), then the Euler step from the derivative (x − x₀)/σ̂.
                float[] originalSample = Buffer(ref _originalSample, sample.Length);
                Prediction.SigmaOriginalSample(Options.PredictionType, sigmaHat, sigma, sample, modelOutput, originalSample);
                Elementwise.Apply(new KDiffusionMath.EulerFromOriginal(sigmaHat, dt), sample, originalSample, prevSample);
                break;
        }

        AdvanceStepIndex();
    }

    private protected override void AddNoiseCore(ReadOnlySpan<float> originalSamples, ReadOnlySpan<float> noise, float timestep, Span<float> destination) =>
        AddNoiseAtSigma(SigmaArray, originalSamples, noise, timestep, destination);

    /// <summary>x₀ = x − σ̂·ε; d = (x − x₀)/σ̂; x + d·dt, in diffusers' float32 order.</summary>
    private readonly struct EulerEpsilonStep(float sigmaHat, float dt) : IElementwiseOp2
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float x, float e) => x + (x - (x - sigmaHat * e)) / sigmaHat * dt;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> x, Vector<float> e) => x + (x - (x - sigmaHat * e)) / sigmaHat * dt;
    }
}
