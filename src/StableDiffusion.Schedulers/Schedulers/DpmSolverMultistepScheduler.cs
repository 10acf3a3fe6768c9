using System.Numerics;
using System.Runtime.CompilerServices;

namespace StableDiffusion.Schedulers;

/// <summary>
/// DPM-Solver and DPM-Solver++ (Lu et al., 2022), multistep: each step reuses the previous model outputs instead of extra
/// evaluations. The default is DPM-Solver++ of order 2, "DPM++ 2M" in UIs; with Karras sigmas "DPM++ 2M Karras", with
/// <see cref="DpmSolverAlgorithmType.SdeDpmSolverPlusPlus"/> "DPM++ 2M SDE". Port of diffusers' <c>DPMSolverMultistepScheduler</c>.
/// </summary>
/// <remarks>
/// The model sees integer timesteps and unscaled input (<see cref="IScheduler.InitNoiseSigma"/> is 1). Runs shorter than
/// 15 steps end with lower-order steps, as diffusers does by default.
/// </remarks>
public sealed class DpmSolverMultistepScheduler : DiffusionScheduler<DpmSolverMultistepScheduler, DpmSolverMultistepSchedulerOptions>, ICustomTimestepsScheduler
{
    /// <summary>The diffusers class name.</summary>
    public const string DiffusersName = "DPMSolverMultistepScheduler";

    private readonly ModelOutputHistory _history;
    private float[]? _noise;
    private float[]? _scratch;

    /// <summary>Creates the scheduler from options (diffusers' defaults when null).</summary>
    /// <param name="options">The options.</param>
    /// <exception cref="SchedulerConfigException">The options contradict each other.</exception>
    public DpmSolverMultistepScheduler(DpmSolverMultistepSchedulerOptions? options = null)
        : base(options, finiteTerminalSigma: true)
    {
        SigmaArray = Noise.Sigmas;
        _history = new ModelOutputHistory(Options.SolverOrder);
    }

    private protected override bool HasStepState => _history.Count > 0;

    /// <inheritdoc />
    /// <remarks>
    /// The timesteps are truncated to integers and the sigmas interpolated at them, as diffusers does; Karras,
    /// exponential, beta and Lu spacing do not apply.
    /// </remarks>
    public void SetTimesteps(IReadOnlyList<float> timesteps)
    {
        float[] custom = CustomList(timesteps, nameof(timesteps));
        RequireNoRespacedSigmas(Options, Options.UseLuLambdas);
        float[] truncated = custom.Select(t => (float)(long)t).ToArray();
        SetSigmas(SigmaSchedules.Interpolate(truncated, Noise.Sigmas));
        InstallTimesteps(truncated, truncated.Length);
    }

    private protected override float[] ComputeTimesteps(int numInferenceSteps)
    {
        int lastTimestep = NumTrainTimesteps - Noise.ClippedTimesteps(Options.LambdaMinClipped);
        long[] solverTimesteps = TimestepSchedules.Solver(Options.TimestepSpacing, NumTrainTimesteps, lastTimestep, numInferenceSteps, Options.StepsOffset);
        // diffusers truncates rather than rounds the timesteps of respaced cosine schedules.
        bool roundRespaced = Options.BetaSchedule != BetaSchedule.SquaredCosCapV2;
        float[] timesteps;
        double[] sigmas;
        if (Options.UseLuLambdas && !Options.UseKarrasSigmas)
        {
            // diffusers checks Lu lambdas after Karras and before the other spacings.
            sigmas = SigmaSchedules.LuLambdas(Noise.LogSigmas, numInferenceSteps);
            timesteps = SigmaSchedules.ToTimesteps(sigmas, Noise.LogSigmas, round: roundRespaced).Select(t => (float)(long)t).ToArray();
        }
        else
        {
            (timesteps, sigmas, _) = SigmaSchedules.AtSolverTimesteps(Noise, solverTimesteps, numInferenceSteps, Options, roundKarras: roundRespaced);
        }

        SetSigmas(sigmas);
        return timesteps;
    }

    private void SetSigmas(IEnumerable<double> sigmas) => SigmaArray = [.. sigmas.Select(s => (float)s), Noise.FinalSigma(Options.FinalSigmasType)];

    private protected override void ResetState() => _history.Clear();

    private protected override void StepCore(ReadOnlySpan<float> modelOutput, float timestep, ReadOnlySpan<float> sample, Span<float> prevSample, SchedulerStepOptions options, int batchSize)
    {
        int count = TimestepArray.Length;
        int index = StepIndexForStep(timestep, count, lastIfMissing: true);
        bool lowerOrderFinal = index == count - 1
            && (Options.EulerAtFinal || (Options.LowerOrderFinal && count < 15) || Options.FinalSigmasType == FinalSigmasType.Zero);
        bool lowerOrderSecond = index == count - 2 && Options.LowerOrderFinal && count < 15;

        // The converted output joins the history; the oldest buffer is reused for it.
        float[] converted = _history.AppendNext(sample.Length);
        DpmSolverModelOutput.Convert(
            Options.AlgorithmType, Options.PredictionType, DpmSolverMath.At(SigmaArray[index]), sample, modelOutput, converted,
            Options.Thresholding, Options.DynamicThresholdingRatio, Options.SampleMaxValue, batchSize, ref _scratch);

        ReadOnlySpan<float> noise = sample;
        bool stochastic = Options.AlgorithmType is DpmSolverAlgorithmType.SdeDpmSolverPlusPlus or DpmSolverAlgorithmType.SdeDpmSolver;
        if (stochastic)
        {
            float[] noiseBuffer = Buffer(ref _noise, sample.Length);
            RequireGenerator(options, "draws noise at every step of its SDE solver").FillStandardNormal(noiseBuffer);
            noise = noiseBuffer;
        }

        DpmSolverMath.Point t = DpmSolverMath.At(SigmaArray[index + 1]);
        DpmSolverMath.Point s0 = DpmSolverMath.At(SigmaArray[index]);
        float[] m0 = _history[0];
        switch (_history.StepOrder(lowerOrderFinal, lowerOrderSecond))
        {
            case 1:
            {
                DpmSolverMath.Coefficients c = DpmSolverMath.FirstOrder(Options.AlgorithmType, t, s0);
                Elementwise.LinearCombination(c.X, sample, c.D0, m0, c.Noise, noise, prevSample);
                break;
            }

            case 2:
            {
                DpmSolverMath.Point s1 = DpmSolverMath.At(SigmaArray[index - 1]);
                float h = t.Lambda - s0.Lambda;
                float r0 = (s0.Lambda - s1.Lambda) / h;
                DpmSolverMath.Coefficients c = DpmSolverMath.SecondOrder(Options.AlgorithmType, Options.SolverType, t, s0, h);
                Elementwise.Apply(new DpmSolverMath.SecondOrderUpdate(c, 1f / r0), sample, m0, m0, _history[1], noise, prevSample);
                break;
            }

            default:
            {
                DpmSolverMath.Point s1 = DpmSolverMath.At(SigmaArray[index - 1]);
                DpmSolverMath.Point s2 = DpmSolverMath.At(SigmaArray[index - 2]);
                float h = t.Lambda - s0.Lambda;
                float r0 = (s0.Lambda - s1.Lambda) / h;
                float r1 = (s1.Lambda - s2.Lambda) / h;
                DpmSolverMath.Coefficients c = DpmSolverMath.ThirdOrder(Options.AlgorithmType, t, s0, h);
                Elementwise.Apply(new ThirdOrderUpdate(c, r0, r1), sample, m0, _history[1], _history[2], noise, prevSample);
                break;
            }
        }

        _history.CompleteStep();
        AdvanceStepIndex();
    }

    private protected override void AddNoiseCore(ReadOnlySpan<float> originalSamples, ReadOnlySpan<float> noise, float timestep, Span<float> destination) =>
        AddNoiseVariancePreserving(SigmaArray, originalSamples, noise, timestep, destination);

    /// <summary>
    /// D₁₀ = (m0 − m1)/r0, D₁₁ = (m1 − m2)/r1, D₁ = D₁₀ + r0/(r0 + r1)·(D₁₀ − D₁₁), D₂ = (D₁₀ − D₁₁)/(r0 + r1);
    /// x_t = X·x + D0·m0 + D1·D₁ + D2·D₂ + N·z.
    /// </summary>
    private readonly struct ThirdOrderUpdate(DpmSolverMath.Coefficients c, float r0, float r1) : IElementwiseOp5
    {
        private readonly float _k0 = 1f / r0;
        private readonly float _k1 = 1f / r1;
        private readonly float _q = r0 / (r0 + r1);
        private readonly float _p = 1f / (r0 + r1);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float x, float m0, float m1, float m2, float z)
        {
            float d10 = _k0 * (m0 - m1);
            float d11 = _k1 * (m1 - m2);
            return c.X * x + c.D0 * m0 + c.D1 * (d10 + _q * (d10 - d11)) + c.D2 * (_p * (d10 - d11)) + c.Noise * z;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> x, Vector<float> m0, Vector<float> m1, Vector<float> m2, Vector<float> z)
        {
            Vector<float> d10 = _k0 * (m0 - m1);
            Vector<float> d11 = _k1 * (m1 - m2);
            return c.X * x + c.D0 * m0 + c.D1 * (d10 + _q * (d10 - d11)) + c.D2 * (_p * (d10 - d11)) + c.Noise * z;
        }
    }
}
