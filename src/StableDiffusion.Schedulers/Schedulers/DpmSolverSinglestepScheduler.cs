using System.Numerics;
using System.Runtime.CompilerServices;

namespace StableDiffusion.Schedulers;

/// <summary>
/// DPM-Solver and DPM-Solver++ (Lu et al., 2022), singlestep: each higher-order update spans several evaluations that all
/// start from the same sample ("DPM++ 2S" in UIs, without the ancestral noise of A1111's "DPM++ 2S a"). Port of diffusers'
/// <c>DPMSolverSinglestepScheduler</c>.
/// </summary>
/// <remarks>The timesteps are always spaced linearly (the class has no <c>timestep_spacing</c>).</remarks>
public sealed class DpmSolverSinglestepScheduler : DiffusionScheduler<DpmSolverSinglestepScheduler, DpmSolverSinglestepSchedulerOptions>, ICustomTimestepsScheduler
{
    /// <summary>The diffusers class name.</summary>
    public const string DiffusersName = "DPMSolverSinglestepScheduler";

    private int[] _orders = [];
    private bool _lowerOrderFinal;
    private readonly ModelOutputHistory _history;
    private float[]? _startSample;
    private float[]? _noise;
    private float[]? _scratch;

    /// <summary>Creates the scheduler from options (diffusers' defaults when null).</summary>
    /// <param name="options">The options.</param>
    /// <exception cref="SchedulerConfigException">The options contradict each other.</exception>
    public DpmSolverSinglestepScheduler(DpmSolverSinglestepSchedulerOptions? options = null)
        : base(options)
    {
        SigmaArray = Noise.Sigmas;
        _history = new ModelOutputHistory(Options.SolverOrder);
        _lowerOrderFinal = Options.LowerOrderFinal;
    }

    private protected override bool HasStepState => _history.Count > 0;

    /// <inheritdoc />
    /// <remarks>
    /// The timesteps are truncated to integers and the sigmas interpolated at them, as diffusers does; Karras,
    /// exponential and beta spacing do not apply.
    /// </remarks>
    public void SetTimesteps(IReadOnlyList<float> timesteps)
    {
        float[] custom = CustomList(timesteps, nameof(timesteps));
        RequireNoRespacedSigmas(Options);
        float[] truncated = custom.Select(t => (float)(long)t).ToArray();
        double[] sigmas = SigmaSchedules.Interpolate(truncated, Noise.Sigmas);
        InstallTimesteps(Finish(truncated, sigmas), truncated.Length);
    }

    private protected override float[] ComputeTimesteps(int numInferenceSteps)
    {
        IEnumerable<long> linspace = NumpyCompat.Linspace(0, NumTrainTimesteps - 1 - Noise.ClippedTimesteps(Options.LambdaMinClipped), numInferenceSteps + 1)
            .Select(t => (long)NumpyCompat.Round(t)).Reverse().Take(numInferenceSteps);
        (float[] timesteps, double[] sigmas, _) = SigmaSchedules.AtSolverTimesteps(Noise, linspace, numInferenceSteps, Options);
        return Finish(timesteps, sigmas);
    }

    // Appends the final sigma and prepares the order of each step; returns the timesteps.
    private float[] Finish(float[] timesteps, double[] sigmas)
    {
        SigmaArray = [.. sigmas.Select(s => (float)s), Noise.FinalSigma(Options.FinalSigmasType)];

        // diffusers switches lower_order_final on for good (it rewrites its config) when the steps do not divide by the
        // order or the last sigma is zero.
        int steps = timesteps.Length;
        if (!_lowerOrderFinal && (steps % Options.SolverOrder != 0 || Options.FinalSigmasType == FinalSigmasType.Zero))
        {
            _lowerOrderFinal = true;
        }

        _orders = OrderList(steps);
        return timesteps;
    }

    private protected override void ResetState() => _history.Clear();

    private protected override void StepCore(ReadOnlySpan<float> modelOutput, float timestep, ReadOnlySpan<float> sample, Span<float> prevSample, SchedulerStepOptions options, int batchSize)
    {
        int count = TimestepArray.Length;
        int index = StepIndexForStep(timestep, count, lastIfMissing: true);

        float[] converted = _history.AppendNext(sample.Length);
        DpmSolverModelOutput.Convert(
            Options.AlgorithmType, Options.PredictionType, DpmSolverMath.At(SigmaArray[index]), sample, modelOutput, converted,
            Options.Thresholding, Options.DynamicThresholdingRatio, Options.SampleMaxValue, batchSize, ref _scratch);

        ReadOnlySpan<float> noise = sample;
        if (Options.AlgorithmType == DpmSolverAlgorithmType.SdeDpmSolverPlusPlus)
        {
            float[] noiseBuffer = Buffer(ref _noise, sample.Length);
            RequireGenerator(options, "draws noise at every step of its SDE solver").FillStandardNormal(noiseBuffer);
            noise = noiseBuffer;
        }

        // The order of this step, lowered while there are too few earlier outputs (after SetBeginIndex, for example).
        int order = Math.Min(_orders[index], _history.Count);
        float[] startSample = Buffer(ref _startSample, sample.Length);
        if (order == 1)
        {
            sample.CopyTo(startSample);
        }

        DpmSolverMath.Point t = DpmSolverMath.At(SigmaArray[index + 1]);
        float[] m0 = _history[0];
        switch (order)
        {
            case 1:
            {
                DpmSolverMath.Coefficients c = DpmSolverMath.FirstOrder(Options.AlgorithmType, t, DpmSolverMath.At(SigmaArray[index]));
                Elementwise.LinearCombination(c.X, startSample, c.D0, m0, c.Noise, noise, prevSample);
                break;
            }

            case 2:
            {
                DpmSolverMath.Point s0 = DpmSolverMath.At(SigmaArray[index]);
                DpmSolverMath.Point s1 = DpmSolverMath.At(SigmaArray[index - 1]);
                float h = t.Lambda - s1.Lambda;
                float r0 = (s0.Lambda - s1.Lambda) / h;
                DpmSolverMath.Coefficients c = DpmSolverMath.SecondOrder(Options.AlgorithmType, Options.SolverType, t, s1, h);
                float[] m1 = _history[1];
                Elementwise.Apply(new DpmSolverMath.SecondOrderUpdate(c, 1f / r0), startSample, m1, m0, m1, noise, prevSample);
                break;
            }

            default:
            {
                DpmSolverMath.Point s0 = DpmSolverMath.At(SigmaArray[index]);
                DpmSolverMath.Point s1 = DpmSolverMath.At(SigmaArray[index - 1]);
                DpmSolverMath.Point s2 = DpmSolverMath.At(SigmaArray[index - 2]);
                float h = t.Lambda - s2.Lambda;
                float r0 = (s0.Lambda - s2.Lambda) / h;
                float r1 = (s1.Lambda - s2.Lambda) / h;
                DpmSolverMath.Coefficients c = DpmSolverMath.ThirdOrder(Options.AlgorithmType, t, s2, h);
                var op = new ThirdOrderUpdate(c, r0, r1, Options.SolverType == DpmSolverType.Midpoint);
                Elementwise.Apply(op, startSample, m0, _history[1], _history[2], noise, prevSample);
                break;
            }
        }

        AdvanceStepIndex();
    }

    private protected override void AddNoiseCore(ReadOnlySpan<float> originalSamples, ReadOnlySpan<float> noise, float timestep, Span<float> destination) =>
        AddNoiseVariancePreserving(SigmaArray, originalSamples, noise, timestep, destination);

    // diffusers' get_order_list: the order of each step, cycling 1, 2(, 3) so that each higher-order update closes a block.
    private int[] OrderList(int steps)
    {
        int order = Options.SolverOrder;
        var orders = new List<int>();
        if (_lowerOrderFinal)
        {
            if (order == 3)
            {
                int blocks = steps % 3 == 0 ? steps / 3 - 1 : steps / 3;
                for (int i = 0; i < blocks; i++)
                {
                    orders.AddRange([1, 2, 3]);
                }

                int[] tail = (steps % 3) switch { 0 => [1, 2, 1], 1 => [1], _ => [1, 2] };
                orders.AddRange(tail);
            }
            else if (order == 2)
            {
                int blocks = steps % 2 == 0 ? steps / 2 - 1 : steps / 2;
                for (int i = 0; i < blocks; i++)
                {
                    orders.AddRange([1, 2]);
                }

                int[] tail = steps % 2 == 0 ? [1, 1] : [1];
                orders.AddRange(tail);
            }
            else
            {
                orders.AddRange(Enumerable.Repeat(1, steps));
            }
        }
        else
        {
            for (int i = 0; i < steps / order; i++)
            {
                orders.AddRange(Enumerable.Range(1, order));
            }
        }

        if (Options.FinalSigmasType == FinalSigmasType.Zero)
        {
            orders[^1] = 1;
        }

        return [.. orders];
    }

    /// <summary>
    /// Singlestep third order from the block's start sample: D₀ = m2, D₁₀ = (m1 − m2)/r1, D₁₁ = (m0 − m2)/r0; midpoint uses
    /// D₁₁, Heun D₁ = (r0·D₁₀ − r1·D₁₁)/(r0 − r1) and D₂ = 2(D₁₁ − D₁₀)/(r0 − r1).
    /// </summary>
    private readonly struct ThirdOrderUpdate(DpmSolverMath.Coefficients c, float r0, float r1, bool midpoint) : IElementwiseOp5
    {
        private readonly float _k0 = 1f / r1;
        private readonly float _k1 = 1f / r0;
        private readonly float _difference = r0 - r1;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float x, float m0, float m1, float m2, float z)
        {
            float d10 = _k0 * (m1 - m2);
            float d11 = _k1 * (m0 - m2);
            return midpoint
                ? c.X * x + c.D0 * m2 + c.D1 * d11 + c.Noise * z
                : c.X * x + c.D0 * m2 + c.D1 * ((r0 * d10 - r1 * d11) / _difference) + c.D2 * (2f * (d11 - d10) / _difference) + c.Noise * z;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> x, Vector<float> m0, Vector<float> m1, Vector<float> m2, Vector<float> z)
        {
            Vector<float> d10 = _k0 * (m1 - m2);
            Vector<float> d11 = _k1 * (m0 - m2);
            return midpoint
                ? c.X * x + c.D0 * m2 + c.D1 * d11 + c.Noise * z
                : c.X * x + c.D0 * m2 + c.D1 * ((r0 * d10 - r1 * d11) / _difference) + c.D2 * (2f * (d11 - d10) / _difference) + c.Noise * z;
        }
    }
}
