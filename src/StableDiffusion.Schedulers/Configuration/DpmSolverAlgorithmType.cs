namespace StableDiffusion.Schedulers;

/// <summary>The DPM-Solver variant (diffusers' <c>algorithm_type</c>).</summary>
public enum DpmSolverAlgorithmType
{
    /// <summary><c>"dpmsolver"</c>: DPM-Solver on the noise prediction (deprecated in diffusers).</summary>
    DpmSolver,

    /// <summary><c>"dpmsolver++"</c>: DPM-Solver++ on the data prediction, the usual choice ("DPM++ 2M").</summary>
    DpmSolverPlusPlus,

    /// <summary><c>"sde-dpmsolver"</c>: the stochastic DPM-Solver (deprecated in diffusers; multistep only).</summary>
    SdeDpmSolver,

    /// <summary><c>"sde-dpmsolver++"</c>: the stochastic DPM-Solver++ ("DPM++ 2M SDE"); draws noise every step.</summary>
    SdeDpmSolverPlusPlus,
}
