using System.Numerics;
using System.Runtime.CompilerServices;

namespace StableDiffusion.Schedulers;

/// <summary>
/// The interleaved schedule of the two KDPM2 schedulers: base sigmas s₀…s_N (s_N = 0), midpoint sigmas, and for the
/// ancestral variant the up and down sigmas of each step, each repeated as diffusers' <c>repeat_interleave</c> lays them out.
/// </summary>
internal sealed class KDpm2Schedule
{
    private KDpm2Schedule(float[] timesteps, float[] sigmas, float[] sigmasInterpol, float[] sigmasUp, float[] sigmasDown, bool ancestral, float initNoiseSigma)
    {
        Ancestral = ancestral;
        InitNoiseSigma = initNoiseSigma;
        Timesteps = timesteps;
        Sigmas = sigmas;
        SigmasInterpol = sigmasInterpol;
        SigmasUp = sigmasUp;
        SigmasDown = sigmasDown;
    }

    /// <summary>Whether this is the ancestral variant's schedule.</summary>
    public bool Ancestral { get; }

    /// <summary>The scale of the initial noise (<see cref="KDiffusionMath.InitNoiseSigma"/>).</summary>
    public float InitNoiseSigma { get; }

    /// <summary>The 2N − 1 timesteps: t₀, then a midpoint timestep and a base timestep per further step.</summary>
    public float[] Timesteps { get; }

    /// <summary>[s₀, s₁, s₁, …, s_N, s_N, s_N] (2N + 2 entries).</summary>
    public float[] Sigmas { get; }

    /// <summary>The midpoint sigmas, laid out like <see cref="Sigmas"/>.</summary>
    public float[] SigmasInterpol { get; }

    /// <summary>The ancestral noise added per step (ancestral variant only; empty otherwise).</summary>
    public float[] SigmasUp { get; }

    /// <summary>The noise level each ancestral step descends to before adding noise (ancestral variant only).</summary>
    public float[] SigmasDown { get; }

    /// <summary>
    /// The sigma of the midpoint evaluation of the step whose first evaluation is at <paramref name="index"/>: the one the
    /// first evaluation steps to and the second is scaled and measured at (the two layouts keep it one entry apart).
    /// </summary>
    public float Midpoint(int index) => SigmasInterpol[Ancestral ? index : index + 1];

    /// <summary>Builds the schedule as diffusers' <c>set_timesteps</c> of KDPM2 (or KDPM2 ancestral) does, in float32.</summary>
    /// <param name="noise">The training noise schedule.</param>
    /// <param name="options">The timestep and sigma spacing.</param>
    /// <param name="steps">The number of steps.</param>
    /// <param name="ancestral">Whether it is the ancestral variant's.</param>
    /// <param name="respaced">Whether the sigma spacing applies (false: the training sigmas interpolated).</param>
    public static KDpm2Schedule Create(NoiseSchedule noise, KDpm2SchedulerOptions options, int steps, bool ancestral, bool respaced = true)
    {
        // Karras timesteps are rounded here, unlike Euler's.
        SigmaSpacing sigmaSpacing = respaced ? SigmaSchedules.SpacingOf(options) : SigmaSpacing.Interpolated;
        (float[] baseTimesteps, double[] baseSigmas) = SigmaSchedules.KDiffusion(
            noise, options.TimestepSpacing, options.StepsOffset, steps, sigmaSpacing, options.SigmaMin, options.SigmaMax,
            roundRespacedTimesteps: sigmaSpacing == SigmaSpacing.Karras);

        int n = baseSigmas.Length;
        float[] sigmas = [.. baseSigmas.Select(s => (float)s), 0f];
        var interpol = new float[n + 1];
        var up = Array.Empty<float>();
        var down = Array.Empty<float>();
        if (ancestral)
        {
            up = new float[n + 1];
            down = new float[n + 1];
            for (int k = 0; k <= n; k++)
            {
                float s = sigmas[k];
                float next = k < n ? sigmas[k + 1] : 0f;
                // At k = N this is 0·0/0, NaN, as in diffusers; that entry is never used.
                up[k] = MathF.Sqrt(next * next * (s * s - next * next) / (s * s));
                down[k] = k < n ? MathF.Sqrt(next * next - up[k] * up[k]) : 0f;
                interpol[k] = k < n - 1 ? GeometricMidpoint(s, down[k]) : 0f;
            }
        }
        else
        {
            for (int k = 0; k <= n; k++)
            {
                // k = 0 pairs s₀ with the rolled-in final zero: NaN, as in diffusers, and never used.
                interpol[k] = GeometricMidpoint(sigmas[k], sigmas[(k + n) % (n + 1)]);
            }
        }

        // Midpoint timesteps come from the midpoint sigmas; the ancestral variant uses i₀…i_{N−2}, the other i₁…i_{N−1}.
        int firstMidpoint = ancestral ? 0 : 1;
        var timesteps = new float[2 * n - 1];
        timesteps[0] = baseTimesteps[0];
        for (int k = 1; k < n; k++)
        {
            timesteps[2 * k - 1] = (float)SigmaSchedules.SigmaToTimestep(interpol[k - 1 + firstMidpoint], noise.LogSigmas);
            timesteps[2 * k] = baseTimesteps[k];
        }

        float[] repeatedSigmas = Repeat(sigmas);
        return new KDpm2Schedule(
            timesteps, repeatedSigmas, Repeat(interpol), ancestral ? Repeat(up) : [], ancestral ? Repeat(down) : [], ancestral,
            KDiffusionMath.InitNoiseSigma(repeatedSigmas, options.TimestepSpacing));
    }

    // torch: log(a).lerp(log(b), 0.5).exp(), in float32; lerp at weight 0.5 measures from the end point.
    private static float GeometricMidpoint(float a, float b)
    {
        float logA = MathF.Log(a);
        float logB = MathF.Log(b);
        return MathF.Exp(logB - (logB - logA) * 0.5f);
    }

    // cat([x[:1], x[1:].repeat_interleave(2), x[-1:]]).
    private static float[] Repeat(float[] values) => [.. KDiffusionMath.RepeatAfterFirst(values), values[^1]];

    /// <summary>d = (x − x₀)/σ_interpol; x_first + d·dt.</summary>
    internal readonly struct SecondOrderStep(float sigmaInterpol, float dt) : IElementwiseOp3
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float first, float x, float x0) => first + (x - x0) / sigmaInterpol * dt;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> first, Vector<float> x, Vector<float> x0) => first + (x - x0) / sigmaInterpol * dt;
    }

    /// <summary>d = (x − x₀)/σ_interpol; (x_first + d·dt) + z·σ_up.</summary>
    internal readonly struct AncestralSecondOrderStep(float sigmaInterpol, float dt, float sigmaUp) : IElementwiseOp4
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float first, float x, float x0, float z) => first + (x - x0) / sigmaInterpol * dt + z * sigmaUp;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Invoke(Vector<float> first, Vector<float> x, Vector<float> x0, Vector<float> z) =>
            first + (x - x0) / sigmaInterpol * dt + z * sigmaUp;
    }
}
