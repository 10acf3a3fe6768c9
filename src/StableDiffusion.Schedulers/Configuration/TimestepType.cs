namespace StableDiffusion.Schedulers;

/// <summary>What EulerDiscreteScheduler hands the model as the timestep (diffusers' <c>timestep_type</c>).</summary>
public enum TimestepType
{
    /// <summary><c>"discrete"</c>: the training timestep.</summary>
    Discrete,

    /// <summary><c>"continuous"</c>: <c>0.25·ln σ</c>, for v-prediction models trained with continuous timesteps.</summary>
    Continuous,
}
