namespace StableDiffusion.Schedulers;

/// <summary>The configuration of <see cref="KDpm2DiscreteScheduler"/> (diffusers' <c>KDPM2DiscreteScheduler</c>), with diffusers' defaults.</summary>
public sealed record KDpm2DiscreteSchedulerOptions : KDpm2SchedulerOptions
{
    /// <summary>Creates the options with the class defaults (diffusers' KDPM2 defaults to Stable Diffusion's beta range).</summary>
    public KDpm2DiscreteSchedulerOptions()
    {
    }

    internal override void DescribeKeys(ConfigKeyRules keys) =>
        keys.Names(nameof(PredictionType), ConfigNames.PredictionTypesWithoutSample(KDpm2DiscreteScheduler.DiffusersName));
}
