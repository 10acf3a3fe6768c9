using System.Numerics;
using System.Runtime.CompilerServices;

namespace StableDiffusion.Schedulers;

/// <summary>
/// Diffusion exponential integrator sampler (Zhang and Chen, 2022), log-ρ multistep variant ("DEIS").
/// Port of diffusers' <c>DEISMultistepScheduler</c>.
/// </summary>
/// <remarks>
/// The model sees integer timesteps and unscaled input. The last step ends at the smallest training sigma rather than
/// zero, as in diffusers.
/// </remarks>
public sealed class DeisMultistepScheduler : DiffusionScheduler<DeisMultistepScheduler, DeisMultistepSchedulerOptions>
{
    /// <summary>The diffusers class name.</summary>
    public const string DiffusersName = "DEISMultistepScheduler";

    private readonly ModelOutputHistory _history;
    private float[]? _scratch;

    /// <summary>Creates the scheduler from options (diffusers' defaults when null).</summary>
    /// <param name="options">The options.</param>
    /// <exception cref="SchedulerConfigException">The options contradict each other.</exception>
    public DeisMultistepScheduler(DeisMultistepSchedulerOptions? options = null)
        : base(options)
    {
        SigmaArray = Noise.Sigmas;
        _history = new ModelOutputHistory(Options.SolverOrder);
    }

    private protected override bool HasStepState => _history.Count > 0;

    private protected override float[] ComputeTimesteps(int numInferenceSteps)
    {
        long[] solverTimesteps = TimestepSchedules.Solver(Options.TimestepSpacing, NumTrainTimesteps, NumTrainTimesteps, numInferenceSteps, Options.StepsOffset);
        (float[] timesteps, double[] sigmas, bool respaced) = SigmaSchedules.AtSolverTimesteps(Noise, solverTimesteps, numInferenceSteps, Options);
        // The last spaced sigma, or the smallest training sigma, is the final one.
        SigmaArray = [.. sigmas.Select(s => (float)s), respaced ? (float)sigmas[^1] : Noise.Sigmas[0]];
        return timesteps;
    }

    private protected override void ResetState() => _history.Clear();

    private protected override void StepCore(ReadOnlySpan<float> modelOutput, float timestep, ReadOnlySpan<float> sample, Span<float> prevSample, SchedulerStepOptions options, int batchSize)
    {
        int count = TimestepArray.Length;
        int index = StepIndexForStep(timestep, count, lastIfMissing: true);
        bool lowerOrderFinal = index == count - 1 && Options.LowerOrderFinal && count < 15;
        bool lowerOrderSecond = index == count - 2 && Options.LowerOrderFinal && count < 15;

        // DEIS works on ε, recomputed from the (optionally thresholded) x₀.
        float[] converted = _history.AppendNext(sample.Length);
        DpmSolverMath.Point s0 = DpmSolverMath.At(SigmaArray[index]);
        if (Options.PredictionType == PredictionType.Epsilon && !Options.Thresholding)
        {
            Elementwise.Apply(new EpsilonRoundTrip(s0.Alpha, s0.Sigma), sample, modelOutput, converted);
        }
        else
        {
            Prediction.VpOriginalSample(Options.PredictionType, s0.Alpha, s0.Sigma, sample, modelOutput, converted);
            if (Options.Thresholding)
            {
                SampleClipping.Threshold(converted, batchSize, Options.DynamicThresholdingRatio, Options.SampleMaxValue, Buffer(ref _scratch, sample.Length));
            }

            Elementwise.Apply(new Prediction.SubtractScaledThenDivide(s0.Alpha, s0.Sigma), sample, converted, converted);
        }

        DpmSolverMath.Point t = DpmSolverMath.At(SigmaArray[index + 1]);
        float[] m0 = _history[0];
        switch (_history.StepOrder(lowerOrderFinal, lowerOrderSecond))
        {
            case 1:
            {
                // DEIS's first order is DPM-Solver's on ε.
                DpmSolverMath.Coefficients c = DpmSolverMath.FirstOrder(DpmSolverAlgorithmType.DpmSolver, t, s0);
                Elementwise.LinearCombination(c.X, sample, c.D0, m0, prevSample);
                break;
            }

            case 2:
            {
                DpmSolverMath.Point s1 = DpmSolverMath.At(SigmaArray[index - 1]);
                float rhoT = t.Sigma / t.Alpha, rho0 = s0.Sigma / s0.Alpha, rho1 = s1.Sigma / s1.Alpha;
                float c0 = Integral2(rhoT, rho0, rho1) - Integral2(rho0, rho0, rho1);
                float c1 = Integral2(rhoT, rho1, rho0) - Integral2(rho0, rho1, rho0);
                Elementwise.Apply(new DeisUpdate(t.Alpha, s0.Alpha, c0, c1, 0f), sample, m0, _history[1], m0, prevSample);
                break;
            }

            default:
            {
                DpmSolverMath.Point s1 = DpmSolverMath.At(SigmaArray[index - 1]);
                DpmSolverMath.Point s2 = DpmSolverMath.At(SigmaArray[index - 2]);
                float rhoT = t.Sigma / t.Alpha, rho0 = s0.Sigma / s0.Alpha, rho1 = s1.Sigma / s1.Alpha, rho2 = s2.Sigma / s2.Alpha;
                float c0 = Integral3(rhoT, rho0, rho1, rho2) - Integral3(rho0, rho0, rho1, rho2);
                float c1 = Integral3(rhoT, rho1, rho2, rho0) - Integral3(rho0, rho1, rho2, rho0);
                float c2 = Integral3(rhoT, rho2, rho0, rho1) - Integral3(rho0, rho2, rho0, rho1);
                Elementwise.Apply(new DeisUpdate(t.Alpha, s0.Alpha, c0, c1, c2), sample, m0, _history[1], _history[2], prevSample);
                break;
            }
        }

        _history.CompleteStep();
        AdvanceStepIndex();
    }

    private protected override void AddNoiseCore(ReadOnlySpan<float> originalSamples, ReadOnlySpan<float> noise, float timestep, Span<float> destination) =>
        AddNoiseVariancePreserving(SigmaArray, originalSamples, noise, timestep, destination);

    // The antiderivative of the second-order log-ρ Lagrange basis (diffusers' ind_fn), in float32 as numpy evaluates it.
    private static float Integral2(float t, float b, float c) =>
        t * (-MathF.Log(c) + MathF.Log(t) - 1f) / (MathF.Log(b) - MathF.Log(c));

    // The third-order counterpart.
    private static float Integral3(float t, float b, float c, float d)
    {
        float logT = MathF.Log(t), logB = MathF.Log(b), logC = MathF.Log(c), logD = MathF.Log(d);
        float numerator = t * (logC * (logD - logT + 1f) - logD * logT + logD + logT * logT - 2f * logT + 2f);
        float denominator = (logB - logC) * (logB - logD);
        return numerator / denominator;
    }

    /// <summary>x₀ = (x − σ·ε)/α, then ε = (x − α·x₀)/σ, in one pass as diffusers' two float32 steps round.</summary>
    private readonly struct EpsilonRoundTrip(float alpha, float sigma) : IElementwiseOp2
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float x, float e) => (x - alpha * ((x - sigma * e) / alpha)) / sigma;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> x, Vector<float> e) => (x - alpha * ((x - sigma * e) / alpha)) / sigma;
    }

    /// <summary>α_t·(((x/α_s0 + c0·m0) + c1·m1) + c2·m2).</summary>
    private readonly struct DeisUpdate(float alphaT, float alphaS0, float c0, float c1, float c2) : IElementwiseOp4
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float x, float m0, float m1, float m2) => alphaT * (x / alphaS0 + c0 * m0 + c1 * m1 + c2 * m2);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> x, Vector<float> m0, Vector<float> m1, Vector<float> m2) => alphaT * (x / alphaS0 + c0 * m0 + c1 * m1 + c2 * m2);
    }
}
