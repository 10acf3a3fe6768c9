namespace StableDiffusion.Schedulers;

/// <summary>The noise level the last step ends at (diffusers' <c>final_sigmas_type</c>).</summary>
public enum FinalSigmasType
{
    /// <summary><c>"zero"</c>: the last step removes all noise.</summary>
    Zero,

    /// <summary><c>"sigma_min"</c>: the last step ends at the smallest training sigma.</summary>
    SigmaMin,
}
