using System.Numerics;
using System.Runtime.CompilerServices;

namespace StableDiffusion.Schedulers;

/// <summary>
/// UniPC (Zhao et al., 2023): a multistep predictor with a corrector that reuses the next model evaluation, so it gains an
/// order at no extra cost ("UniPC" in UIs). Port of diffusers' <c>UniPCMultistepScheduler</c>.
/// </summary>
/// <remarks>The model sees integer timesteps and unscaled input; runs work well from about 10 steps.</remarks>
public sealed class UniPCMultistepScheduler : DiffusionScheduler<UniPCMultistepScheduler, UniPCMultistepSchedulerOptions>
{
    /// <summary>The diffusers class name.</summary>
    public const string DiffusersName = "UniPCMultistepScheduler";

    // With a spare slot: the corrector still reads the history while the newest output is being converted.
    private readonly ModelOutputHistory _history;
    private int _thisOrder;
    private float[]? _lastSample;
    private bool _hasLastSample;
    private float[]? _residual;
    private float[]? _scratch;

    /// <summary>Creates the scheduler from options (diffusers' defaults when null).</summary>
    /// <param name="options">The options.</param>
    /// <exception cref="SchedulerConfigException">The options contradict each other.</exception>
    public UniPCMultistepScheduler(UniPCMultistepSchedulerOptions? options = null)
        : base(options, finiteTerminalSigma: true)
    {
        SigmaArray = Noise.Sigmas;
        _history = new ModelOutputHistory(Options.SolverOrder, spareSlot: true);
    }

    private protected override bool HasStepState => _history.Count > 0;

    private protected override float[] ComputeTimesteps(int numInferenceSteps)
    {
        long[] solverTimesteps = TimestepSchedules.Solver(Options.TimestepSpacing, NumTrainTimesteps, NumTrainTimesteps, numInferenceSteps, Options.StepsOffset);
        (float[] timesteps, double[] sigmas, bool respaced) = SigmaSchedules.AtSolverTimesteps(Noise, solverTimesteps, numInferenceSteps, Options);
        // With respaced sigmas "sigma_min" means the last spaced sigma.
        float last = Options.FinalSigmasType == FinalSigmasType.Zero ? 0f : respaced ? (float)sigmas[^1] : Noise.Sigmas[0];
        SigmaArray = [.. sigmas.Select(s => (float)s), last];
        return timesteps;
    }

    private protected override void ResetState()
    {
        _history.Clear();
        _thisOrder = 0;
        _hasLastSample = false;
    }

    private protected override void StepCore(ReadOnlySpan<float> modelOutput, float timestep, ReadOnlySpan<float> sample, Span<float> prevSample, SchedulerStepOptions options, int batchSize)
    {
        int count = TimestepArray.Length;
        int index = StepIndexForStep(timestep, count, lastIfMissing: true);
        int length = sample.Length;
        bool useCorrector = index > 0 && !Options.DisableCorrector.Contains(index - 1) && _hasLastSample;

        // The converted output goes into the spare slot; the history (oldest first) stays as it was for the corrector.
        float[] converted = _history.NextBuffer(length);
        ConvertModelOutput(DpmSolverMath.At(SigmaArray[index]), sample, modelOutput, converted, batchSize);

        float[] lastSample = Buffer(ref _lastSample, length);
        if (useCorrector)
        {
            // UniC: correct the previous step's result with the new evaluation; the corrected sample replaces `sample`.
            Correct(index, converted, lastSample);
        }
        else
        {
            sample.CopyTo(lastSample);
        }

        _history.Append(converted);

        int thisOrder = Options.LowerOrderFinal ? Math.Min(Options.SolverOrder, count - index) : Options.SolverOrder;
        _thisOrder = Math.Min(thisOrder, _history.LowerOrderNums + 1);
        _hasLastSample = true;
        Predict(index, lastSample, prevSample);

        _history.CompleteStep();
        AdvanceStepIndex();
    }

    private protected override void AddNoiseCore(ReadOnlySpan<float> originalSamples, ReadOnlySpan<float> noise, float timestep, Span<float> destination) =>
        AddNoiseVariancePreserving(SigmaArray, originalSamples, noise, timestep, destination);

    // x₀ (predict_x0) or ε from the model output.
    private void ConvertModelOutput(DpmSolverMath.Point point, ReadOnlySpan<float> sample, ReadOnlySpan<float> modelOutput, Span<float> destination, int batchSize)
    {
        if (Options.PredictX0)
        {
            Prediction.VpOriginalSample(Options.PredictionType, point.Alpha, point.Sigma, sample, modelOutput, destination);
            if (Options.Thresholding)
            {
                SampleClipping.Threshold(destination, batchSize, Options.DynamicThresholdingRatio, Options.SampleMaxValue, Buffer(ref _scratch, sample.Length));
            }
        }
        else
        {
            Prediction.VpEpsilon(Options.PredictionType, point.Alpha, point.Sigma, sample, modelOutput, destination);
        }
    }

    // UniP-B(h): predict x_{t_{i+1}} from lastSample with the current output m0 and `order − 1` earlier outputs.
    private void Predict(int index, ReadOnlySpan<float> x, Span<float> prevSample)
    {
        int order = _thisOrder;
        DpmSolverMath.Point t = DpmSolverMath.At(SigmaArray[index + 1]);
        DpmSolverMath.Point s0 = DpmSolverMath.At(SigmaArray[index]);
        float h = t.Lambda - s0.Lambda;
        float[] m0 = _history[0];

        Span<float> rks = stackalloc float[order];
        for (int k = 1; k < order; k++)
        {
            rks[k - 1] = (DpmSolverMath.At(SigmaArray[index - k]).Lambda - s0.Lambda) / h;
        }

        rks[order - 1] = 1f;
        Span<float> b = stackalloc float[order];
        (float hPhi1, float bH) = Coefficients(h, b);

        // x_t = (σ_t/σ_s0)·x − α_t·h_φ1·m0 − α_t·B(h)·pred_res  (predict_x0; with α and σ swapped otherwise), where
        // pred_res = Σ_k ρ_k·(m_k − m0)/r_k with ρ = 0.5 at order 2, else R⁻¹b over the first order − 1 conditions.
        float sampleCoefficient = Options.PredictX0 ? t.Sigma / s0.Sigma : t.Alpha / s0.Alpha;
        float outputCoefficient = Options.PredictX0 ? -(t.Alpha * hPhi1) : -(t.Sigma * hPhi1);
        float residualCoefficient = Options.PredictX0 ? -(t.Alpha * bH) : -(t.Sigma * bH);
        switch (order)
        {
            case 1:
                // pred_res = 0.
                Elementwise.Apply(new PredictorUpdate(sampleCoefficient, outputCoefficient, 0f), x, m0, x, prevSample);
                break;
            case 2:
                Elementwise.Apply(new SecondOrderPredictorUpdate(sampleCoefficient, outputCoefficient, residualCoefficient, 0.5f, rks[0]), x, m0, _history[1], prevSample);
                break;
            default:
                Span<float> rhos = stackalloc float[order - 1];
                Solve(rks[..^1], b[..^1], rhos);
                float[] pred = Buffer(ref _residual, x.Length);
                AccumulateResidual(rhos, rks, m0, pred);
                Elementwise.Apply(new PredictorUpdate(sampleCoefficient, outputCoefficient, residualCoefficient), x, m0, pred, prevSample);
                break;
        }
    }

    // UniC-B(h): the previous step redone with the new output `modelT`; written into `lastSample` in place.
    private void Correct(int index, ReadOnlySpan<float> modelT, float[] lastSample)
    {
        int order = _thisOrder;
        DpmSolverMath.Point t = DpmSolverMath.At(SigmaArray[index]);
        DpmSolverMath.Point s0 = DpmSolverMath.At(SigmaArray[index - 1]);
        float h = t.Lambda - s0.Lambda;
        float[] m0 = _history[0];

        Span<float> rks = stackalloc float[order];
        for (int k = 1; k < order; k++)
        {
            rks[k - 1] = (DpmSolverMath.At(SigmaArray[index - (k + 1)]).Lambda - s0.Lambda) / h;
        }

        rks[order - 1] = 1f;
        Span<float> b = stackalloc float[order];
        (float hPhi1, float bH) = Coefficients(h, b);
        Span<float> rhos = stackalloc float[order];
        if (order == 1)
        {
            rhos[0] = 0.5f;
        }
        else
        {
            Solve(rks, b, rhos);
        }

        // corr_res = Σ_{k<order−1} ρ_k·(m_k − m0)/r_k, then x_t = x_t_ − α_t·B(h)·(corr_res + ρ_last·(m_t − m0)).
        float sampleCoefficient = Options.PredictX0 ? t.Sigma / s0.Sigma : t.Alpha / s0.Alpha;
        float outputCoefficient = Options.PredictX0 ? -(t.Alpha * hPhi1) : -(t.Sigma * hPhi1);
        float correctionCoefficient = Options.PredictX0 ? -(t.Alpha * bH) : -(t.Sigma * bH);
        if (order == 1)
        {
            Elementwise.Apply(new FirstOrderCorrectorUpdate(sampleCoefficient, outputCoefficient, correctionCoefficient, rhos[0]), lastSample, m0, modelT, lastSample);
            return;
        }

        if (order == 2)
        {
            var op = new SecondOrderCorrectorUpdate(sampleCoefficient, outputCoefficient, correctionCoefficient, rhos[0], rks[0], rhos[1]);
            Elementwise.Apply(op, lastSample, m0, _history[1], modelT, lastSample);
            return;
        }

        float[] corr = Buffer(ref _residual, lastSample.Length);
        AccumulateResidual(rhos[..^1], rks, m0, corr);
        Elementwise.Apply(new CorrectorUpdate(sampleCoefficient, outputCoefficient, correctionCoefficient, rhos[^1]), lastSample, m0, corr, modelT, lastSample);
    }

    // Σ_k ρ_k·(m_k − m0)/r_k, m_k being the output k + 1 steps older than the newest of the history.
    private void AccumulateResidual(ReadOnlySpan<float> rhos, ReadOnlySpan<float> rks, float[] m0, float[] destination)
    {
        for (int k = 0; k < rhos.Length; k++)
        {
            float[] mk = _history[k + 1];
            if (k == 0)
            {
                Elementwise.Apply(new ResidualTerm(rhos[k], rks[k]), mk, m0, destination);
            }
            else
            {
                Elementwise.Apply(new AccumulateResidualTerm(rhos[k], rks[k]), destination, mk, m0, destination);
            }
        }
    }

    // h_φ1 = expm1(hh) and B(h), and b_k = h_φk·k!/B(h) with h_φ(k+1) = h_φk/hh − 1/(k+1)!, hh = −h for x₀ prediction.
    private (float HPhi1, float BH) Coefficients(float h, Span<float> b)
    {
        float hh = Options.PredictX0 ? -h : h;
        float hPhi1 = ExpM1(hh);
        float hPhiK = hPhi1 / hh - 1f;
        float factorial = 1f;
        float bH = Options.SolverType == UniPCSolverType.Bh1 ? hh : ExpM1(hh);
        for (int k = 1; k <= b.Length; k++)
        {
            b[k - 1] = hPhiK * factorial / bH;
            factorial *= k + 1;
            hPhiK = hPhiK / hh - 1f / factorial;
        }

        return (hPhi1, bH);
    }

    // torch.expm1 in float32; in double the subtraction loses nothing that float32 keeps unless |x| is tiny.
    private static float ExpM1(float x) => Math.Abs(x) < 1e-5f ? x + x * x / 2f : (float)(Math.Exp(x) - 1.0);

    // Solves R·ρ = b for R_ij = r_j^i (a Vandermonde system of the r_k), in double precision with partial pivoting.
    private static void Solve(ReadOnlySpan<float> rks, ReadOnlySpan<float> b, Span<float> result)
    {
        int n = b.Length;
        int width = n + 1;
        Span<double> matrix = stackalloc double[n * width];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                matrix[i * width + j] = Math.Pow(rks[j], i);
            }

            matrix[i * width + n] = b[i];
        }

        for (int col = 0; col < n; col++)
        {
            int pivot = col;
            for (int row = col + 1; row < n; row++)
            {
                if (Math.Abs(matrix[row * width + col]) > Math.Abs(matrix[pivot * width + col]))
                {
                    pivot = row;
                }
            }

            for (int j = 0; j < width; j++)
            {
                (matrix[col * width + j], matrix[pivot * width + j]) = (matrix[pivot * width + j], matrix[col * width + j]);
            }

            for (int row = col + 1; row < n; row++)
            {
                double factor = matrix[row * width + col] / matrix[col * width + col];
                for (int j = col; j < width; j++)
                {
                    matrix[row * width + j] -= factor * matrix[col * width + j];
                }
            }
        }

        for (int row = n - 1; row >= 0; row--)
        {
            double value = matrix[row * width + n];
            for (int j = row + 1; j < n; j++)
            {
                value -= matrix[row * width + j] * result[j];
            }

            result[row] = (float)(value / matrix[row * width + row]);
        }
    }

    /// <summary>ρ·(m_k − m0)/r.</summary>
    private readonly struct ResidualTerm(float rho, float r) : IElementwiseOp2
    {
        public float Invoke(float mk, float m0) => rho * ((mk - m0) / r);

        public Vector<float> Invoke(Vector<float> mk, Vector<float> m0) => rho * ((mk - m0) / r);
    }

    /// <summary>acc + ρ·(m_k − m0)/r.</summary>
    private readonly struct AccumulateResidualTerm(float rho, float r) : IElementwiseOp3
    {
        public float Invoke(float acc, float mk, float m0) => acc + rho * ((mk - m0) / r);

        public Vector<float> Invoke(Vector<float> acc, Vector<float> mk, Vector<float> m0) => acc + rho * ((mk - m0) / r);
    }

    /// <summary>(a·x + c·m0) + d·res.</summary>
    private readonly struct PredictorUpdate(float a, float c, float d) : IElementwiseOp3
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float x, float m0, float residual) => a * x + c * m0 + d * residual;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> x, Vector<float> m0, Vector<float> residual) => a * x + c * m0 + d * residual;
    }

    /// <summary>(a·x + c·m0) + d·(ρ·((m1 − m0)/r)): the order-2 predictor in one pass.</summary>
    private readonly struct SecondOrderPredictorUpdate(float a, float c, float d, float rho, float r) : IElementwiseOp3
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float x, float m0, float m1) => a * x + c * m0 + d * (rho * ((m1 - m0) / r));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> x, Vector<float> m0, Vector<float> m1) => a * x + c * m0 + d * (rho * ((m1 - m0) / r));
    }

    /// <summary>(a·x + c·m0) + d·(ρ₀·((m1 − m0)/r) + ρ₁·(m_t − m0)): the order-2 corrector in one pass.</summary>
    private readonly struct SecondOrderCorrectorUpdate(float a, float c, float d, float rho0, float r, float rho1) : IElementwiseOp4
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float x, float m0, float m1, float mt) => a * x + c * m0 + d * (rho0 * ((m1 - m0) / r) + rho1 * (mt - m0));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> x, Vector<float> m0, Vector<float> m1, Vector<float> mt) =>
            a * x + c * m0 + d * (rho0 * ((m1 - m0) / r) + rho1 * (mt - m0));
    }

    /// <summary>(a·x + c·m0) + d·(ρ·(m_t − m0)).</summary>
    private readonly struct FirstOrderCorrectorUpdate(float a, float c, float d, float rho) : IElementwiseOp3
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float x, float m0, float mt) => a * x + c * m0 + d * (rho * (mt - m0));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> x, Vector<float> m0, Vector<float> mt) => a * x + c * m0 + d * (rho * (mt - m0));
    }

    /// <summary>(a·x + c·m0) + d·(corr + ρ·(m_t − m0)).</summary>
    private readonly struct CorrectorUpdate(float a, float c, float d, float rho) : IElementwiseOp4
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float x, float m0, float corr, float mt) => a * x + c * m0 + d * (corr + rho * (mt - m0));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> x, Vector<float> m0, Vector<float> corr, Vector<float> mt) => a * x + c * m0 + d * (corr + rho * (mt - m0));
    }
}
