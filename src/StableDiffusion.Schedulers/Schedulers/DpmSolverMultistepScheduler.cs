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

    private float[] _sigmas;
    private readonly float[]?[] _modelOutputs;
    private int _storedOutputs;
    private int _lowerOrderNums;
    private float[]? _noise;
    private float[]? _scratch;

    /// <summary>Creates the scheduler from options (diffusers' defaults when null).</summary>
    /// <param name="options">The options.</param>
    /// <exception cref="SchedulerConfigException">The options contradict each other.</exception>
    public DpmSolverMultistepScheduler(DpmSolverMultistepSchedulerOptions? options = null)
        : base(options, finiteTerminalSigma: true)
    {
        _sigmas = Noise.Sigmas;
        _modelOutputs = new float[]?[Options.SolverOrder];
    }

    /// <inheritdoc />
    public override IReadOnlyList<float> Sigmas => Array.AsReadOnly(_sigmas);

    private protected override bool HasStepState => _storedOutputs > 0;

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
        SetInterpolatedSigmas(truncated);
        InstallTimesteps(truncated, truncated.Length);
    }

    private protected override float[] ComputeTimesteps(int numInferenceSteps)
    {
        int lastTimestep = NumTrainTimesteps - ClippedIndex(Noise, Options.LambdaMinClipped);
        long[] timesteps = TimestepSchedules.Solver(Options.TimestepSpacing, NumTrainTimesteps, lastTimestep, numInferenceSteps, Options.StepsOffset);
        bool roundRespaced = Options.BetaSchedule != BetaSchedule.SquaredCosCapV2;
        float[] table = Noise.Sigmas;
        double[] sigmas;
        SigmaSpacing spacing = SigmaSchedules.SpacingOf(Options);
        if (Options.UseLuLambdas && !Options.UseKarrasSigmas)
        {
            // diffusers checks Lu lambdas after Karras and before the other spacings.
            sigmas = SigmaSchedules.LuLambdas(Noise.LogSigmas, numInferenceSteps);
            timesteps = SigmaSchedules.ToTimesteps(sigmas, Noise.LogSigmas, round: roundRespaced).Select(t => (long)t).ToArray();
        }
        else if (spacing != SigmaSpacing.Interpolated)
        {
            // Bounds from the whole training table; timesteps are truncated to integers unless rounded (Karras).
            sigmas = SigmaSchedules.Space(spacing, Options.SigmaMin ?? table[0], Options.SigmaMax ?? table[^1], numInferenceSteps);
            timesteps = SigmaSchedules.ToTimesteps(sigmas, Noise.LogSigmas, round: spacing == SigmaSpacing.Karras && roundRespaced)
                .Select(t => (long)t).ToArray();
        }
        else
        {
            float[] interpolated = timesteps.Select(t => (float)t).ToArray();
            SetInterpolatedSigmas(interpolated);
            return interpolated;
        }

        _sigmas = [.. sigmas.Select(s => (float)s), Noise.FinalSigma(Options.FinalSigmasType)];
        return timesteps.Select(t => (float)t).ToArray();
    }

    private void SetInterpolatedSigmas(float[] timesteps) =>
        _sigmas = [.. SigmaSchedules.Interpolate(timesteps, Noise.Sigmas).Select(s => (float)s), Noise.FinalSigma(Options.FinalSigmasType)];

    private protected override void ResetState()
    {
        // The history buffers are kept for the next run; only the count of valid entries resets.
        _storedOutputs = 0;
        _lowerOrderNums = 0;
    }

    private protected override void StepCore(ReadOnlySpan<float> modelOutput, float timestep, ReadOnlySpan<float> sample, Span<float> prevSample, SchedulerStepOptions options, int batchSize)
    {
        int count = TimestepArray.Length;
        int index = StepIndexForStep(timestep, count, lastIfMissing: true);
        bool lowerOrderFinal = index == count - 1
            && (Options.EulerAtFinal || (Options.LowerOrderFinal && count < 15) || Options.FinalSigmasType == FinalSigmasType.Zero);
        bool lowerOrderSecond = index == count - 2 && Options.LowerOrderFinal && count < 15;

        // The converted output joins the history; the oldest buffer is reused for it.
        float[] converted = ModelOutputHistory.Rotate(_modelOutputs, ref _storedOutputs, sample.Length);
        DpmSolverModelOutput.Convert(
            Options.AlgorithmType, Options.PredictionType, DpmSolverMath.At(_sigmas[index]), sample, modelOutput, converted,
            Options.Thresholding, Options.DynamicThresholdingRatio, Options.SampleMaxValue, batchSize, ref _scratch);

        ReadOnlySpan<float> noise = sample;
        bool stochastic = Options.AlgorithmType is DpmSolverAlgorithmType.SdeDpmSolverPlusPlus or DpmSolverAlgorithmType.SdeDpmSolver;
        if (stochastic)
        {
            float[] noiseBuffer = Buffer(ref _noise, sample.Length);
            RequireGenerator(options, "draws noise at every step of its SDE solver").FillStandardNormal(noiseBuffer);
            noise = noiseBuffer;
        }

        DpmSolverMath.Point t = DpmSolverMath.At(_sigmas[index + 1]);
        DpmSolverMath.Point s0 = DpmSolverMath.At(_sigmas[index]);
        float[] m0 = _modelOutputs[^1]!;
        if (Options.SolverOrder == 1 || _lowerOrderNums < 1 || lowerOrderFinal)
        {
            DpmSolverMath.Coefficients c = DpmSolverMath.FirstOrder(Options.AlgorithmType, t, s0);
            Elementwise.LinearCombination(c.X, sample, c.D0, m0, c.Noise, noise, prevSample);
        }
        else if (Options.SolverOrder == 2 || _lowerOrderNums < 2 || lowerOrderSecond)
        {
            DpmSolverMath.Point s1 = DpmSolverMath.At(_sigmas[index - 1]);
            float h = t.Lambda - s0.Lambda;
            float r0 = (s0.Lambda - s1.Lambda) / h;
            DpmSolverMath.Coefficients c = DpmSolverMath.SecondOrder(Options.AlgorithmType, Options.SolverType, t, s0, h);
            float[] m1 = _modelOutputs[^2]!;
            Elementwise.Apply(new DpmSolverMath.SecondOrderUpdate(c, 1f / r0), sample, m0, m0, m1, noise, prevSample);
        }
        else
        {
            DpmSolverMath.Point s1 = DpmSolverMath.At(_sigmas[index - 1]);
            DpmSolverMath.Point s2 = DpmSolverMath.At(_sigmas[index - 2]);
            float h = t.Lambda - s0.Lambda;
            float r0 = (s0.Lambda - s1.Lambda) / h;
            float r1 = (s1.Lambda - s2.Lambda) / h;
            DpmSolverMath.Coefficients c = DpmSolverMath.ThirdOrder(Options.AlgorithmType, t, s0, h);
            Elementwise.Apply(new ThirdOrderUpdate(c, r0, r1), sample, m0, _modelOutputs[^2]!, _modelOutputs[^3]!, noise, prevSample);
        }

        if (_lowerOrderNums < Options.SolverOrder)
        {
            _lowerOrderNums++;
        }

        AdvanceStepIndex();
    }

    private protected override void AddNoiseCore(ReadOnlySpan<float> originalSamples, ReadOnlySpan<float> noise, float timestep, Span<float> destination) =>
        AddNoiseVariancePreserving(_sigmas, originalSamples, noise, timestep, destination);

    /// <summary>
    /// How many training timesteps at the noisy end have a log-SNR below <paramref name="lambdaMinClipped"/>
    /// (diffusers' <c>searchsorted</c> on the flipped λ table).
    /// </summary>
    internal static int ClippedIndex(NoiseSchedule noise, double lambdaMinClipped)
    {
        int clipped = 0;
        foreach (float alphaProd in noise.AlphasCumprod)
        {
            float lambda = MathF.Log(MathF.Sqrt(alphaProd)) - MathF.Log(MathF.Sqrt(1f - alphaProd));
            if (lambda < lambdaMinClipped)
            {
                clipped++;
            }
        }

        return clipped;
    }

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
