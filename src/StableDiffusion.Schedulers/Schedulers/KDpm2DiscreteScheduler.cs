namespace StableDiffusion.Schedulers;

/// <summary>
/// The second-order DPM-Solver-2 sampler of k-diffusion ("DPM2"; "DPM2 Karras" with
/// <see cref="KDpm2SchedulerOptions.UseKarrasSigmas"/>): each step evaluates the model again at the geometric
/// midpoint of the two noise levels. Port of diffusers' <c>KDPM2DiscreteScheduler</c>.
/// </summary>
/// <remarks>
/// <see cref="KDpm2Scheduler{TSelf, TOptions}.Order"/> is 2: N steps take 2N − 1 model evaluations, the midpoint
/// timesteps being fractional.
/// </remarks>
public sealed class KDpm2DiscreteScheduler : KDpm2Scheduler<KDpm2DiscreteScheduler, KDpm2DiscreteSchedulerOptions>
{
    /// <summary>The diffusers class name.</summary>
    public const string DiffusersName = "KDPM2DiscreteScheduler";

    /// <summary>Creates the scheduler from options (diffusers' defaults when null).</summary>
    /// <param name="options">The options.</param>
    /// <exception cref="SchedulerConfigException">The options contradict each other.</exception>
    public KDpm2DiscreteScheduler(KDpm2DiscreteSchedulerOptions? options = null)
        : base(options, ancestral: false)
    {
    }
}
