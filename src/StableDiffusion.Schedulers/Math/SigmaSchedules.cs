namespace StableDiffusion.Schedulers;

/// <summary>How the inference sigmas are spaced between the largest and the smallest sigma.</summary>
internal enum SigmaSpacing
{
    /// <summary>The training sigmas interpolated at the inference timesteps.</summary>
    Interpolated,

    /// <summary>Karras et al. (2022), ρ = 7.</summary>
    Karras,

    /// <summary>Evenly spaced in log σ.</summary>
    Exponential,

    /// <summary>Along the quantiles of a Beta(0.6, 0.6) distribution (arXiv 2407.12173).</summary>
    Beta,
}

/// <summary>
/// The sigma conversions diffusers' schedulers share (their <c>_convert_to_karras</c>, <c>_convert_to_exponential</c>,
/// <c>_convert_to_beta</c>, <c>_convert_to_lu</c> and <c>_sigma_to_t</c>), in double precision as numpy computes them.
/// </summary>
internal static class SigmaSchedules
{
    private const double KarrasRho = 7.0;
    private const double BetaSigmasAlpha = 0.6;
    private const double BetaSigmasBeta = 0.6;

    /// <summary>Which spacing the three flags of a configuration select (at most one is set; validation checks that).</summary>
    public static SigmaSpacing SpacingOf(ISigmaSpacingOptions options) =>
        options.UseKarrasSigmas ? SigmaSpacing.Karras
        : options.UseExponentialSigmas ? SigmaSpacing.Exponential
        : options.UseBetaSigmas ? SigmaSpacing.Beta
        : SigmaSpacing.Interpolated;

    /// <summary>
    /// The timesteps and sigmas of the k-diffusion schedulers (Euler, Euler ancestral, LMS, Heun, KDPM2): timesteps from
    /// the spacing, sigmas interpolated from the training table, then optionally respaced (Karras, exponential, beta)
    /// with the timesteps mapped back from the new sigmas (narrowed to float32, as the schedulers hold them). The final
    /// sigma is not appended.
    /// </summary>
    /// <param name="noise">The training noise schedule.</param>
    /// <param name="spacing">The timestep spacing.</param>
    /// <param name="stepsOffset">The steps offset of leading spacing.</param>
    /// <param name="steps">The number of inference steps.</param>
    /// <param name="sigmaSpacing">The sigma spacing.</param>
    /// <param name="sigmaMin">The configured smallest sigma of respaced schedules, or null for the interpolated one.</param>
    /// <param name="sigmaMax">The configured largest sigma of respaced schedules, or null for the interpolated one.</param>
    /// <param name="roundRespacedTimesteps">Whether respaced timesteps are rounded (KDPM2 rounds its Karras timesteps).</param>
    public static (float[] Timesteps, double[] Sigmas) KDiffusion(
        NoiseSchedule noise, TimestepSpacing spacing, int stepsOffset, int steps, SigmaSpacing sigmaSpacing, double? sigmaMin, double? sigmaMax, bool roundRespacedTimesteps = false)
    {
        float[] timesteps = TimestepSchedules.Continuous(spacing, noise.Length, steps, stepsOffset);
        double[] sigmas = Interpolate(timesteps, noise.Sigmas);
        if (sigmaSpacing == SigmaSpacing.Interpolated)
        {
            return (timesteps, sigmas);
        }

        double[] spaced = Space(sigmaSpacing, sigmaMin ?? sigmas[^1], sigmaMax ?? sigmas[0], steps);
        return (ToTimesteps(spaced, noise.LogSigmas, roundRespacedTimesteps).Select(t => (float)t).ToArray(), spaced);
    }

    /// <summary>
    /// The sigmas of the multistep solvers (DPM-Solver, UniPC, DEIS) at their integer timesteps: the training sigmas
    /// interpolated there or, with a sigma spacing, <paramref name="steps"/> spaced sigmas between the configured bounds
    /// (else the training table's), the timesteps then mapped back from them and truncated to integers, or rounded for
    /// Karras spacing when <paramref name="roundKarras"/>. The final sigma is not appended.
    /// </summary>
    public static (float[] Timesteps, double[] Sigmas, bool Respaced) AtSolverTimesteps(
        NoiseSchedule noise, IEnumerable<long> timesteps, int steps, ISigmaSpacingOptions options, bool roundKarras = true)
    {
        SigmaSpacing spacing = SpacingOf(options);
        if (spacing == SigmaSpacing.Interpolated)
        {
            float[] given = timesteps.Select(t => (float)t).ToArray();
            return (given, Interpolate(given, noise.Sigmas), false);
        }

        double[] sigmas = Space(spacing, options.SigmaMin ?? noise.Sigmas[0], options.SigmaMax ?? noise.Sigmas[^1], steps);
        double[] mapped = ToTimesteps(sigmas, noise.LogSigmas, round: roundKarras && spacing == SigmaSpacing.Karras);
        return (mapped.Select(t => (float)(long)t).ToArray(), sigmas, true);
    }

    /// <summary>The timesteps of sigmas (<see cref="SigmaToTimestep"/>), rounded half to even when asked.</summary>
    public static double[] ToTimesteps(IEnumerable<double> sigmas, ReadOnlySpan<float> logSigmas, bool round)
    {
        var result = new List<double>();
        foreach (double sigma in sigmas)
        {
            double t = SigmaToTimestep(sigma, logSigmas);
            result.Add(round ? NumpyCompat.Round(t) : t);
        }

        return [.. result];
    }

    /// <summary><c>np.interp(timesteps, arange(T), table)</c>: the training sigmas at (fractional) timesteps.</summary>
    public static double[] Interpolate(IReadOnlyList<float> timesteps, ReadOnlySpan<float> table)
    {
        var result = new double[timesteps.Count];
        for (int i = 0; i < result.Length; i++)
        {
            result[i] = NumpyCompat.Interp(timesteps[i], table);
        }

        return result;
    }

    /// <summary>
    /// <paramref name="count"/> sigmas from <paramref name="sigmaMax"/> down to <paramref name="sigmaMin"/> with the given
    /// spacing (Karras, exponential or beta).
    /// </summary>
    public static double[] Space(SigmaSpacing spacing, double sigmaMin, double sigmaMax, int count) => spacing switch
    {
        SigmaSpacing.Karras => Karras(sigmaMin, sigmaMax, count),
        SigmaSpacing.Exponential => Exponential(sigmaMin, sigmaMax, count),
        SigmaSpacing.Beta => Beta(sigmaMin, sigmaMax, count),
        _ => throw new ArgumentOutOfRangeException(nameof(spacing), spacing, "Interpolated sigmas are not spaced."),
    };

    /// <summary>Karras et al. (2022), eq. 5: evenly spaced in σ^(1/ρ), ρ = 7.</summary>
    public static double[] Karras(double sigmaMin, double sigmaMax, int count)
    {
        double[] ramp = NumpyCompat.Linspace(0, 1, count);
        double minInvRho = System.Math.Pow(sigmaMin, 1 / KarrasRho);
        double maxInvRho = System.Math.Pow(sigmaMax, 1 / KarrasRho);
        var sigmas = new double[count];
        for (int i = 0; i < count; i++)
        {
            sigmas[i] = System.Math.Pow(maxInvRho + ramp[i] * (minInvRho - maxInvRho), KarrasRho);
        }

        return sigmas;
    }

    /// <summary>Evenly spaced in log σ.</summary>
    public static double[] Exponential(double sigmaMin, double sigmaMax, int count) =>
        NumpyCompat.Linspace(System.Math.Log(sigmaMax), System.Math.Log(sigmaMin), count).Select(System.Math.Exp).ToArray();

    /// <summary>σ_min + ppf(1 − rᵢ)·(σ_max − σ_min) with rᵢ evenly spaced on [0, 1] and ppf the Beta(0.6, 0.6) quantile.</summary>
    public static double[] Beta(double sigmaMin, double sigmaMax, int count) =>
        NumpyCompat.Linspace(0, 1, count)
            .Select(r => sigmaMin + BetaDistribution.Quantile(1 - r, BetaSigmasAlpha, BetaSigmasBeta) * (sigmaMax - sigmaMin))
            .ToArray();

    /// <summary>
    /// DPM-Solver++'s "Lu lambdas": log σ evenly spaced from the largest to the smallest training log σ; returns the sigmas.
    /// </summary>
    public static double[] LuLambdas(ReadOnlySpan<float> logSigmas, int count)
    {
        double lambdaMin = logSigmas[0];
        double lambdaMax = logSigmas[^1];
        double[] ramp = NumpyCompat.Linspace(0, 1, count);
        return ramp.Select(r => System.Math.Exp(lambdaMax + r * (lambdaMin - lambdaMax))).ToArray();
    }

    /// <summary>
    /// diffusers' <c>_sigma_to_t</c>: the fractional training timestep whose sigma is <paramref name="sigma"/>, by linear
    /// interpolation in log σ between the two neighbouring training sigmas (clamped to the table).
    /// </summary>
    /// <param name="sigma">The sigma.</param>
    /// <param name="logSigmas">The float32 log sigma table, increasing with the timestep.</param>
    public static double SigmaToTimestep(double sigma, ReadOnlySpan<float> logSigmas)
    {
        double logSigma = System.Math.Log(double.IsNaN(sigma) ? sigma : System.Math.Max(sigma, 1e-10));
        int atOrBelow = 0;
        for (int i = 0; i < logSigmas.Length; i++)
        {
            if (logSigma - logSigmas[i] >= 0)
            {
                atOrBelow = i + 1;
            }
        }

        int low = System.Math.Min(System.Math.Max(atOrBelow - 1, 0), logSigmas.Length - 2);
        int high = low + 1;
        float lowLog = logSigmas[low];
        float highLog = logSigmas[high];
        // numpy subtracts the two float32 table entries in float32.
        double w = (lowLog - logSigma) / (float)(lowLog - highLog);
        w = double.IsNaN(w) ? w : System.Math.Clamp(w, 0, 1);
        return (1 - w) * low + w * high;
    }
}
