namespace StableDiffusion.Schedulers;

/// <summary>The configuration of <see cref="KDpm2AncestralDiscreteScheduler"/> (diffusers' <c>KDPM2AncestralDiscreteScheduler</c>), with diffusers' defaults.</summary>
public sealed record KDpm2AncestralDiscreteSchedulerOptions : KDpm2SchedulerOptions
{
    /// <summary>Creates the options with the class defaults (diffusers' KDPM2 defaults to Stable Diffusion's beta range).</summary>
    public KDpm2AncestralDiscreteSchedulerOptions()
    {
    }

    internal override void DescribeKeys(ConfigKeyRules keys) =>
        keys.Names(nameof(PredictionType), ConfigNames.PredictionTypesWithoutSample(KDpm2AncestralDiscreteScheduler.DiffusersName));
}
