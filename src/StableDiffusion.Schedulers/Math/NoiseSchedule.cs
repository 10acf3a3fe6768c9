namespace StableDiffusion.Schedulers;

/// <summary>
/// A scheduler's training noise schedule: the betas, <c>alphas_cumprod</c> and the sigma table
/// <c>sqrt((1 − ᾱ) / ᾱ)</c>, all float32 as diffusers holds them in torch tensors.
/// </summary>
internal sealed class NoiseSchedule
{
    private float[]? _sigmas;
    private float[]? _logSigmas;

    private NoiseSchedule(float[] betas, float[] alphasCumprod)
    {
        Betas = betas;
        AlphasCumprod = alphasCumprod;
    }

    /// <summary>The number of training timesteps.</summary>
    public int Length => AlphasCumprod.Length;

    /// <summary>The betas, one per training timestep.</summary>
    public float[] Betas { get; }

    /// <summary>ᾱ, the cumulative products of <c>1 − β</c>.</summary>
    public float[] AlphasCumprod { get; }

    /// <summary>The training sigmas <c>sqrt((1 − ᾱ) / ᾱ)</c>, increasing with the timestep.</summary>
    public float[] Sigmas => _sigmas ??= AlphasCumprod.Select(a => MathF.Sqrt((1f - a) / a)).ToArray();

    /// <summary>The natural logarithms of <see cref="Sigmas"/>, in float32 as numpy computes them.</summary>
    public float[] LogSigmas => _logSigmas ??= Sigmas.Select(s => (float)System.Math.Log(s)).ToArray();

    /// <summary>
    /// The ᾱ of the step after the last timestep (<c>final_alpha_cumprod</c>): 1 with <c>set_alpha_to_one</c>, else the
    /// ᾱ of timestep 0.
    /// </summary>
    public float FinalAlphaCumprod(bool setAlphaToOne) => setAlphaToOne ? 1f : AlphasCumprod[0];

    /// <summary>The sigma the last step ends at: 0, or the smallest training sigma (<c>final_sigmas_type</c>).</summary>
    public float FinalSigma(FinalSigmasType type) => type == FinalSigmasType.SigmaMin ? Sigmas[0] : 0f;

    /// <summary>
    /// How many training timesteps at the noisy end have a log-SNR below <paramref name="lambdaMinClipped"/>, which the
    /// DPM-Solvers leave out of their schedule (diffusers' <c>searchsorted</c> on the flipped λ table).
    /// </summary>
    public int ClippedTimesteps(double lambdaMinClipped)
    {
        int clipped = 0;
        foreach (float alphaProd in AlphasCumprod)
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
    /// Builds the schedule from the shared options.
    /// </summary>
    /// <param name="options">The scheduler's options.</param>
    /// <param name="rescaleBetasZeroSnr">Whether to rescale to zero terminal SNR (for the classes that have the key).</param>
    /// <param name="finiteTerminalSigma">
    /// Whether a rescaled schedule sets the last ᾱ to 2⁻²⁴ so that the last sigma stays finite, as the sigma-based
    /// schedulers do.
    /// </param>
    public static NoiseSchedule Create(SchedulerOptions options, bool rescaleBetasZeroSnr = false, bool finiteTerminalSigma = false)
    {
        float[] betas = options.TrainedBetas is { } trained ? [.. trained] : ComputeBetas(options);
        if (rescaleBetasZeroSnr)
        {
            betas = RescaleZeroTerminalSnr(betas);
        }

        float[] alphasCumprod = TorchCompat.CumulativeProduct(betas.Select(b => 1f - b).ToArray());
        if (rescaleBetasZeroSnr && finiteTerminalSigma)
        {
            alphasCumprod[^1] = 1f / (1 << 24);
        }

        return new NoiseSchedule(betas, alphasCumprod);
    }

    private static float[] ComputeBetas(SchedulerOptions options)
    {
        int count = options.NumTrainTimesteps;
        switch (options.BetaSchedule)
        {
            case BetaSchedule.Linear:
                return TorchCompat.LinspaceFloat32(options.BetaStart, options.BetaEnd, count);
            case BetaSchedule.ScaledLinear:
                return TorchCompat.LinspaceFloat32(System.Math.Sqrt(options.BetaStart), System.Math.Sqrt(options.BetaEnd), count)
                    .Select(b => b * b).ToArray();
            case BetaSchedule.SquaredCosCapV2:
                return BetasForAlphaBar(count, t =>
                {
                    double c = System.Math.Cos((t + 0.008) / 1.008 * System.Math.PI / 2);
                    return c * c;
                });
            case BetaSchedule.Exp:
                return BetasForAlphaBar(count, t => System.Math.Exp(t * -12.0));
            case BetaSchedule.Laplace:
                return BetasForAlphaBar(count, t =>
                {
                    double lambda = -0.5 * System.Math.CopySign(1, 0.5 - t) * System.Math.Log(1 - 2 * System.Math.Abs(0.5 - t) + 1e-6);
                    double snr = System.Math.Exp(lambda);
                    return System.Math.Sqrt(snr / (1 + snr));
                });
            case BetaSchedule.Sigmoid:
                float scale = (float)(options.BetaEnd - options.BetaStart);
                float offset = (float)options.BetaStart;
                return TorchCompat.LinspaceFloat32(-6, 6, count).Select(x => 1f / (1f + MathF.Exp(-x)) * scale + offset).ToArray();
            default:
                throw new ArgumentOutOfRangeException(nameof(options), options.BetaSchedule, "Unknown beta schedule.");
        }
    }

    /// <summary>diffusers' <c>betas_for_alpha_bar</c>: betas that discretise ᾱ(t) on [0, 1], capped at 0.999, in double precision.</summary>
    private static float[] BetasForAlphaBar(int count, Func<double, double> alphaBar)
    {
        var betas = new float[count];
        for (int i = 0; i < count; i++)
        {
            double t1 = (double)i / count;
            double t2 = (double)(i + 1) / count;
            betas[i] = (float)System.Math.Min(1 - alphaBar(t2) / alphaBar(t1), 0.999);
        }

        return betas;
    }

    /// <summary>Rescales betas to zero terminal SNR (arXiv 2305.08891, algorithm 1), in float32 as diffusers does.</summary>
    private static float[] RescaleZeroTerminalSnr(float[] betas)
    {
        float[] alphasCumprod = TorchCompat.CumulativeProduct(betas.Select(b => 1f - b).ToArray());
        float[] sqrtAlphasCumprod = alphasCumprod.Select(MathF.Sqrt).ToArray();
        float first = sqrtAlphasCumprod[0];
        float last = sqrtAlphasCumprod[^1];
        float scale = first / (first - last);
        float[] rescaled = sqrtAlphasCumprod.Select(s => (s - last) * scale).Select(s => s * s).ToArray();

        var result = new float[betas.Length];
        result[0] = 1f - rescaled[0];
        for (int i = 1; i < result.Length; i++)
        {
            result[i] = 1f - rescaled[i] / rescaled[i - 1];
        }

        return result;
    }
}
