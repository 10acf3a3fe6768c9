using System.Numerics;
using System.Runtime.CompilerServices;

namespace StableDiffusion.Schedulers;

/// <summary>
/// The linear multistep method of k-diffusion ("LMS"; "LMS Karras" with
/// <see cref="LmsDiscreteSchedulerOptions.UseKarrasSigmas"/>): an order-4 Adams-Bashforth method in σ whose coefficients
/// are integrals of Lagrange polynomials. Port of diffusers' <c>LMSDiscreteScheduler</c>.
/// </summary>
public sealed class LmsDiscreteScheduler : DiffusionScheduler<LmsDiscreteScheduler, LmsDiscreteSchedulerOptions>
{
    /// <summary>The diffusers class name.</summary>
    public const string DiffusersName = "LMSDiscreteScheduler";

    /// <summary>diffusers' default <c>order</c> argument of <c>step</c>, which pipelines never change.</summary>
    private const int LmsOrder = 4;

    // Gauss-Legendre nodes and weights on [-1, 1]: exact for the polynomials of degree at most 3 LMS integrates
    // (diffusers calls scipy.integrate.quad).
    private static readonly double[] GaussNodes = [-0.8611363115940526, -0.3399810435848563, 0.3399810435848563, 0.8611363115940526];
    private static readonly double[] GaussWeights = [0.3478548451374538, 0.6521451548625461, 0.6521451548625461, 0.3478548451374538];

    private readonly List<float[]> _derivatives = [];
    private readonly Stack<float[]> _free = new();
    private float[]? _originalSample;

    /// <summary>Creates the scheduler from options (diffusers' defaults when null).</summary>
    /// <param name="options">The options.</param>
    /// <exception cref="SchedulerConfigException">The options contradict each other.</exception>
    public LmsDiscreteScheduler(LmsDiscreteSchedulerOptions? options = null)
        : base(options)
    {
        SigmaArray = [.. Noise.Sigmas.Reverse(), 0f];
    }

    /// <inheritdoc />
    /// <remarks>The largest sigma; for leading spacing √(σ_max² + 1), as diffusers has it.</remarks>
    public override float InitNoiseSigma => KDiffusionMath.InitNoiseSigma(SigmaArray, Options.TimestepSpacing);

    private protected override bool HasStepState => _derivatives.Count > 0;

    private protected override float[] ComputeTimesteps(int numInferenceSteps)
    {
        SigmaSpacing spacing = SigmaSchedules.SpacingOf(Options);
        // diffusers' LMS takes Karras bounds from the interpolated sigmas only; exponential and beta read sigma_min/max.
        bool configuredBounds = spacing != SigmaSpacing.Karras;
        (float[] timesteps, double[] sigmas) = SigmaSchedules.KDiffusion(
            Noise, Options.TimestepSpacing, Options.StepsOffset, numInferenceSteps, spacing,
            configuredBounds ? Options.SigmaMin : null, configuredBounds ? Options.SigmaMax : null);
        SigmaArray = [.. sigmas.Select(s => (float)s), 0f];
        return timesteps;
    }

    private protected override void ResetState()
    {
        foreach (float[] derivative in _derivatives)
        {
            _free.Push(derivative);
        }

        _derivatives.Clear();
    }

    private protected override void ScaleModelInputCore(ReadOnlySpan<float> sample, float timestep, Span<float> destination) =>
        KDiffusionMath.ScaleModelInput(sample, SigmaArray[CurrentStepIndex(timestep)], destination);

    private protected override void StepCore(ReadOnlySpan<float> modelOutput, float timestep, ReadOnlySpan<float> sample, Span<float> prevSample, SchedulerStepOptions options, int batchSize)
    {
        int index = StepIndexForStep(timestep, SigmaArray.Length - 1);
        float sigma = SigmaArray[index];

        // The derivative (x − x₀)/σ joins the history of the last four.
        float[] derivative = _derivatives.Count == LmsOrder ? _derivatives[0] : _free.TryPop(out float[]? free) && free.Length == sample.Length ? free : new float[sample.Length];
        if (_derivatives.Count == LmsOrder)
        {
            _derivatives.RemoveAt(0);
        }

        if (Options.PredictionType == PredictionType.Epsilon)
        {
            Elementwise.Apply(new EpsilonDerivative(sigma), sample, modelOutput, derivative);
        }
        else
        {
            float[] originalSample = Buffer(ref _originalSample, sample.Length);
            Prediction.SigmaOriginalSample(Options.PredictionType, sigma, sigma, sample, modelOutput, originalSample);
            Elementwise.Apply(new Derivative(sigma), sample, originalSample, derivative);
        }

        _derivatives.Add(derivative);

        // x + Σ_k c_k·d_{−1−k}, the newest derivative first. The Lagrange basis spans min(index + 1, 4) sigmas, but
        // diffusers zips the coefficients with the derivatives it has, so a run that starts mid-schedule (image-to-image)
        // uses fewer terms than the basis has.
        int order = Math.Min(index + 1, LmsOrder);
        int n = _derivatives.Count;
        int terms = Math.Min(order, n);
        Span<float> coefficients = stackalloc float[LmsOrder];
        for (int k = 0; k < terms; k++)
        {
            coefficients[k] = (float)Coefficient(order, index, k);
        }

        switch (terms)
        {
            case 1:
                Elementwise.Apply(new Accumulate1(coefficients[0]), sample, _derivatives[n - 1], prevSample);
                break;
            case 2:
                Elementwise.Apply(new Accumulate2(coefficients[0], coefficients[1]), sample, _derivatives[n - 1], _derivatives[n - 2], prevSample);
                break;
            case 3:
                Elementwise.Apply(new Accumulate3(coefficients[0], coefficients[1], coefficients[2]), sample, _derivatives[n - 1], _derivatives[n - 2], _derivatives[n - 3], prevSample);
                break;
            default:
                Elementwise.Apply(new Accumulate4(coefficients[0], coefficients[1], coefficients[2], coefficients[3]), sample, _derivatives[n - 1], _derivatives[n - 2], _derivatives[n - 3], _derivatives[n - 4], prevSample);
                break;
        }

        AdvanceStepIndex();
    }

    private protected override void AddNoiseCore(ReadOnlySpan<float> originalSamples, ReadOnlySpan<float> noise, float timestep, Span<float> destination) =>
        AddNoiseAtSigma(SigmaArray, originalSamples, noise, timestep, destination);

    // ∫ from σ_t to σ_{t+1} of the Lagrange basis polynomial of node t − k over the nodes t, t − 1, …, t − order + 1.
    private double Coefficient(int order, int t, int k)
    {
        double from = SigmaArray[t];
        double to = SigmaArray[t + 1];
        double half = (to - from) / 2;
        double middle = (to + from) / 2;
        double integral = 0;
        for (int g = 0; g < GaussNodes.Length; g++)
        {
            double tau = middle + half * GaussNodes[g];
            double product = 1;
            for (int j = 0; j < order; j++)
            {
                if (j != k)
                {
                    product *= (tau - SigmaArray[t - j]) / ((double)SigmaArray[t - k] - SigmaArray[t - j]);
                }
            }

            integral += GaussWeights[g] * product;
        }

        return integral * half;
    }

    /// <summary>x₀ = x − σ·ε; (x − x₀)/σ, without storing x₀.</summary>
    private readonly struct EpsilonDerivative(float sigma) : IElementwiseOp2
    {
        public float Invoke(float x, float e) => (x - (x - sigma * e)) / sigma;

        public Vector<float> Invoke(Vector<float> x, Vector<float> e) => (x - (x - sigma * e)) / sigma;
    }

    private readonly struct Derivative(float sigma) : IElementwiseOp2
    {
        public float Invoke(float x, float x0) => (x - x0) / sigma;

        public Vector<float> Invoke(Vector<float> x, Vector<float> x0) => (x - x0) / sigma;
    }

    private readonly struct Accumulate1(float c0) : IElementwiseOp2
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float x, float d0) => x + c0 * d0;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> x, Vector<float> d0) => x + c0 * d0;
    }

    private readonly struct Accumulate2(float c0, float c1) : IElementwiseOp3
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float x, float d0, float d1) => x + (c0 * d0 + c1 * d1);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> x, Vector<float> d0, Vector<float> d1) => x + (c0 * d0 + c1 * d1);
    }

    private readonly struct Accumulate3(float c0, float c1, float c2) : IElementwiseOp4
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float x, float d0, float d1, float d2) => x + (c0 * d0 + c1 * d1 + c2 * d2);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> x, Vector<float> d0, Vector<float> d1, Vector<float> d2) => x + (c0 * d0 + c1 * d1 + c2 * d2);
    }

    private readonly struct Accumulate4(float c0, float c1, float c2, float c3) : IElementwiseOp5
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float x, float d0, float d1, float d2, float d3) => x + (c0 * d0 + c1 * d1 + c2 * d2 + c3 * d3);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> x, Vector<float> d0, Vector<float> d1, Vector<float> d2, Vector<float> d3) =>
            x + (c0 * d0 + c1 * d1 + c2 * d2 + c3 * d3);
    }
}
