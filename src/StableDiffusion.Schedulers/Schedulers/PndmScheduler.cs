using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace StableDiffusion.Schedulers;

/// <summary>
/// Pseudo numerical methods for diffusion models (Liu et al., 2022): a Runge-Kutta warm-up then a linear multistep method;
/// with <see cref="PndmSchedulerOptions.SkipPrkSteps"/> it is PLMS, Stable Diffusion 1.x's default scheduler. Port of
/// diffusers' <c>PNDMScheduler</c>.
/// </summary>
/// <remarks>
/// PLMS runs N + 1 model evaluations for N steps: the second timestep is repeated to correct the first step
/// (for N = 50: 981, 961, 961, 941, …, 21, 1). With the Runge-Kutta warm-up the first three steps take four evaluations
/// each, which needs at least 4 steps.
/// </remarks>
public sealed class PndmScheduler : DiffusionScheduler<PndmScheduler, PndmSchedulerOptions>
{
    /// <summary>The diffusers class name.</summary>
    public const string DiffusersName = "PNDMScheduler";

    private const int PndmOrder = 4;

    private int[] _prkTimesteps = [];
    private int _counter;
    private int _stepRatio;

    // Runge-Kutta and multistep state: earlier model outputs (newest last), the weighted sum of the current Runge-Kutta
    // step's outputs, and the sample that step started from.
    private readonly List<float[]> _ets = [];
    private readonly Stack<float[]> _freeEts = new();
    private float[]? _curModelOutput;
    private float[]? _curSample;
    private float[]? _combined;

    /// <summary>Creates the scheduler from options (diffusers' defaults when null).</summary>
    /// <param name="options">The options.</param>
    /// <exception cref="SchedulerConfigException">The options contradict each other.</exception>
    public PndmScheduler(PndmSchedulerOptions? options = null)
        : base(options)
    {
    }

    private protected override bool HasStepState => _counter > 0;

    private protected override float[] ComputeTimesteps(int numInferenceSteps)
    {
        if (!Options.SkipPrkSteps && numInferenceSteps < PndmOrder)
        {
            throw new ArgumentOutOfRangeException(
                nameof(numInferenceSteps),
                numInferenceSteps,
                $"PNDMScheduler with Runge-Kutta warm-up (skip_prk_steps = false) needs at least {PndmOrder} steps (diffusers fails below that). Use more steps, or set skip_prk_steps for PLMS.");
        }

        int trainTimesteps = NumTrainTimesteps;
        _stepRatio = trainTimesteps / numInferenceSteps;
        long[] ascending = TrainingTableTimesteps(Options, numInferenceSteps).Reverse().ToArray();

        long[] plms;
        if (Options.SkipPrkSteps)
        {
            // The second-to-last entry is repeated: PLMS's first step is redone with averaged model outputs.
            _prkTimesteps = [];
            // Python's _ts[-2:-1] is empty for a single step.
            long[] repeated = ascending.Length > 1 ? [ascending[^2]] : [];
            plms = [.. ascending[..^1], .. repeated, ascending[^1]];
            Array.Reverse(plms);
        }
        else
        {
            // Each of the last four timesteps twice, offset alternately by half a step, then each entry doubled and trimmed.
            int halfStep = trainTimesteps / numInferenceSteps / 2;
            long[] last = ascending[^PndmOrder..];
            var pairs = new long[2 * PndmOrder];
            for (int i = 0; i < pairs.Length; i++)
            {
                pairs[i] = last[i / 2] + (i % 2 == 0 ? 0 : halfStep);
            }

            var doubled = pairs[..^1].SelectMany(t => new[] { t, t }).ToArray();
            long[] prk = doubled[1..^1].Reverse().ToArray();
            RequireTrainingRange(prk, "Runge-Kutta warm-up");
            _prkTimesteps = prk.Select(t => (int)t).ToArray();
            plms = ascending[..^3].Reverse().ToArray();
        }

        return [.. _prkTimesteps.Select(t => (float)t), .. plms.Select(t => (float)t)];
    }

    private protected override void ResetState()
    {
        foreach (float[] buffer in _ets)
        {
            _freeEts.Push(buffer);
        }

        _ets.Clear();
        _counter = 0;
    }

    private protected override void StepCore(ReadOnlySpan<float> modelOutput, float timestep, ReadOnlySpan<float> sample, Span<float> prevSample, SchedulerStepOptions options, int batchSize)
    {
        if (_counter >= TimestepArray.Length)
        {
            throw new InvalidOperationException($"{ClassName} has taken all {TimestepArray.Length} steps of its schedule: call SetTimesteps to start another run.");
        }

        int t = TrainingTimestep(timestep);
        if (_counter < _prkTimesteps.Length && !Options.SkipPrkSteps)
        {
            StepPrk(modelOutput, t, sample, prevSample);
        }
        else
        {
            StepPlms(modelOutput, t, sample, prevSample);
        }

        _counter++;
    }

    private protected override void AddNoiseCore(ReadOnlySpan<float> originalSamples, ReadOnlySpan<float> noise, float timestep, Span<float> destination) =>
        AddNoiseAtTrainingTimestep(originalSamples, noise, timestep, destination);

    // Fourth-order Runge-Kutta: four evaluations per step, combined with weights 1/6, 1/3, 1/3, 1/6.
    private void StepPrk(ReadOnlySpan<float> modelOutput, int timestep, ReadOnlySpan<float> sample, Span<float> prevSample)
    {
        int length = sample.Length;
        int diffToPrev = _counter % 2 != 0 ? 0 : NumTrainTimesteps / NumInferenceSteps / 2;
        int prevTimestep = timestep - diffToPrev;
        int stepTimestep = _prkTimesteps[_counter / 4 * 4];
        float[] curModelOutput = Buffer(ref _curModelOutput, length);
        float[] curSample = Buffer(ref _curSample, length);
        ReadOnlySpan<float> output = modelOutput;

        // Each block of four starts afresh (diffusers resets its sum to 0 after the fourth), from the sample it started at.
        switch (_counter % 4)
        {
            case 0:
                TensorPrimitives.Multiply(modelOutput, (float)(1.0 / 6), curModelOutput);
                PushEt(modelOutput);
                sample.CopyTo(curSample);
                break;
            case 1:
            case 2:
                Elementwise.LinearCombination(1f, curModelOutput, (float)(1.0 / 3), modelOutput, curModelOutput);
                break;
            default:
                float[] combined = Buffer(ref _combined, length);
                Elementwise.LinearCombination(1f, curModelOutput, (float)(1.0 / 6), modelOutput, combined);
                output = combined;
                break;
        }

        PreviousSample(curSample, stepTimestep, prevTimestep, output, prevSample);
    }

    // Pseudo linear multistep: Adams-Bashforth combinations of up to four earlier model outputs.
    private void StepPlms(ReadOnlySpan<float> modelOutput, int timestep, ReadOnlySpan<float> sample, Span<float> prevSample)
    {
        if (!Options.SkipPrkSteps && _ets.Count < 3)
        {
            throw new InvalidOperationException($"{ClassName} can only run its multistep phase after 12 Runge-Kutta steps.");
        }

        int length = sample.Length;
        int prevTimestep = timestep - _stepRatio;
        if (_counter != 1)
        {
            while (_ets.Count > 3)
            {
                _freeEts.Push(_ets[0]);
                _ets.RemoveAt(0);
            }

            PushEt(modelOutput);
        }
        else
        {
            prevTimestep = timestep;
            timestep += _stepRatio;
        }

        float[] combined = Buffer(ref _combined, length);
        ReadOnlySpan<float> output;
        ReadOnlySpan<float> from = sample;
        int count = _ets.Count;
        if (count == 1 && _counter == 0)
        {
            output = modelOutput;
            sample.CopyTo(Buffer(ref _curSample, length));
        }
        else if (count == 1 && _counter == 1)
        {
            Elementwise.Apply(new Average(), modelOutput, _ets[^1], combined);
            output = combined;
            from = _curSample;
        }
        else if (count == 2)
        {
            Elementwise.Apply(new AdamsBashforth2(), _ets[^1], _ets[^2], combined);
            output = combined;
        }
        else if (count == 3)
        {
            Elementwise.Apply(new AdamsBashforth3(), _ets[^1], _ets[^2], _ets[^3], combined);
            output = combined;
        }
        else if (Options.PredictionType != PredictionType.VPrediction)
        {
            // The steady state: the combination and the update in one pass over the latents (the same float operations in
            // the same order as two passes, so the same rounding).
            Elementwise.Apply(new AdamsBashforth4Update(Update(timestep, prevTimestep)), _ets[^1], _ets[^2], _ets[^3], _ets[^4], from, prevSample);
            return;
        }
        else
        {
            Elementwise.Apply(new AdamsBashforth4(), _ets[^1], _ets[^2], _ets[^3], _ets[^4], combined);
            output = combined;
        }

        PreviousSample(from, timestep, prevTimestep, output, prevSample);
    }

    // Formula (9) of the PNDM paper: x_{t−δ} from x_t and ε, with the v-prediction converted to ε first.
    private void PreviousSample(ReadOnlySpan<float> sample, int timestep, int prevTimestep, ReadOnlySpan<float> modelOutput, Span<float> prevSample)
    {
        if (Options.PredictionType == PredictionType.VPrediction)
        {
            float alphaProd = Noise.AlphasCumprod[timestep];
            float[] epsilon = Buffer(ref _combined, sample.Length);
            Elementwise.LinearCombination(MathF.Sqrt(alphaProd), modelOutput, MathF.Sqrt(1f - alphaProd), sample, epsilon);
            modelOutput = epsilon;
        }

        Elementwise.Apply(Update(timestep, prevTimestep), sample, modelOutput, prevSample);
    }

    // The coefficients of formula (9) from timestep to prevTimestep.
    private PndmUpdate Update(int timestep, int prevTimestep)
    {
        float alphaProd = Noise.AlphasCumprod[timestep];
        float alphaProdPrev = prevTimestep >= 0 ? Noise.AlphasCumprod[prevTimestep] : Noise.FinalAlphaCumprod(Options.SetAlphaToOne);
        float betaProd = 1f - alphaProd;
        float betaProdPrev = 1f - alphaProdPrev;
        float sampleCoefficient = MathF.Sqrt(alphaProdPrev / alphaProd);
        float denominator = alphaProd * MathF.Sqrt(betaProdPrev) + MathF.Sqrt(alphaProd * betaProd * alphaProdPrev);
        return new PndmUpdate(sampleCoefficient, alphaProdPrev - alphaProd, denominator);
    }

    private void PushEt(ReadOnlySpan<float> modelOutput)
    {
        float[] buffer = _freeEts.TryPop(out float[]? free) && free.Length == modelOutput.Length ? free : new float[modelOutput.Length];
        modelOutput.CopyTo(buffer);
        _ets.Add(buffer);
    }

    /// <summary><c>c·x − (d·ε) / denominator</c>.</summary>
    private readonly struct PndmUpdate(float sampleCoefficient, float alphaDifference, float denominator) : IElementwiseOp2
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float x, float e) => sampleCoefficient * x - alphaDifference * e / denominator;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> x, Vector<float> e) => sampleCoefficient * x - alphaDifference * e / denominator;
    }

    private readonly struct Average : IElementwiseOp2
    {
        public float Invoke(float a, float b) => (a + b) / 2f;

        public Vector<float> Invoke(Vector<float> a, Vector<float> b) => (a + b) / 2f;
    }

    private readonly struct AdamsBashforth2 : IElementwiseOp2
    {
        public float Invoke(float e1, float e2) => (3f * e1 - e2) / 2f;

        public Vector<float> Invoke(Vector<float> e1, Vector<float> e2) => (3f * e1 - e2) / 2f;
    }

    private readonly struct AdamsBashforth3 : IElementwiseOp3
    {
        public float Invoke(float e1, float e2, float e3) => (23f * e1 - 16f * e2 + 5f * e3) / 12f;

        public Vector<float> Invoke(Vector<float> e1, Vector<float> e2, Vector<float> e3) => (23f * e1 - 16f * e2 + 5f * e3) / 12f;
    }

    private readonly struct AdamsBashforth4 : IElementwiseOp4
    {
        private const float OneTwentyFourth = (float)(1.0 / 24);

        public float Invoke(float e1, float e2, float e3, float e4) => OneTwentyFourth * (55f * e1 - 59f * e2 + 37f * e3 - 9f * e4);

        public Vector<float> Invoke(Vector<float> e1, Vector<float> e2, Vector<float> e3, Vector<float> e4) =>
            OneTwentyFourth * (55f * e1 - 59f * e2 + 37f * e3 - 9f * e4);
    }

    /// <summary><see cref="AdamsBashforth4"/>'s combination fed straight into <see cref="PndmUpdate"/> with the sample.</summary>
    private readonly struct AdamsBashforth4Update(PndmUpdate update) : IElementwiseOp5
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float e1, float e2, float e3, float e4, float x) => update.Invoke(x, default(AdamsBashforth4).Invoke(e1, e2, e3, e4));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> e1, Vector<float> e2, Vector<float> e3, Vector<float> e4, Vector<float> x) =>
            update.Invoke(x, default(AdamsBashforth4).Invoke(e1, e2, e3, e4));
    }
}
