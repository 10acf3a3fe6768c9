namespace StableDiffusion.Schedulers;

/// <summary>
/// DPM-Solver-2 with ancestral sampling ("DPM2 a"; "DPM2 a Karras" with
/// <see cref="KDpm2SchedulerOptions.UseKarrasSigmas"/>): the second-order step descends below the next
/// noise level and adds fresh noise back up to it. Port of diffusers' <c>KDPM2AncestralDiscreteScheduler</c>.
/// </summary>
/// <remarks>
/// <see cref="KDpm2Scheduler{TSelf, TOptions}.Order"/> is 2. The second evaluation of each step draws noise, so a
/// generator is required.
/// </remarks>
public sealed class KDpm2AncestralDiscreteScheduler : KDpm2Scheduler<KDpm2AncestralDiscreteScheduler, KDpm2AncestralDiscreteSchedulerOptions>
{
    /// <summary>The diffusers class name.</summary>
    public const string DiffusersName = "KDPM2AncestralDiscreteScheduler";

    /// <summary>Creates the scheduler from options (diffusers' defaults when null).</summary>
    /// <param name="options">The options.</param>
    /// <exception cref="SchedulerConfigException">The options contradict each other.</exception>
    public KDpm2AncestralDiscreteScheduler(KDpm2AncestralDiscreteSchedulerOptions? options = null)
        : base(options, ancestral: true)
    {
    }
}
