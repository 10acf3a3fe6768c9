namespace StableDiffusion.Schedulers;

/// <summary>The second-order update rule of the DPM-Solver schedulers (diffusers' <c>solver_type</c>).</summary>
public enum DpmSolverType
{
    /// <summary><c>"midpoint"</c>: the midpoint rule (recommended).</summary>
    Midpoint,

    /// <summary><c>"heun"</c>: Heun's rule.</summary>
    Heun,
}
