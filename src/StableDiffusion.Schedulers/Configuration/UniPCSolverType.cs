namespace StableDiffusion.Schedulers;

/// <summary>The B(h) function of UniPC (diffusers' <c>solver_type</c> of UniPCMultistepScheduler).</summary>
public enum UniPCSolverType
{
    /// <summary><c>"bh1"</c>: B(h) = h, recommended for unconditional sampling with few steps.</summary>
    Bh1,

    /// <summary><c>"bh2"</c>: B(h) = e^h − 1, recommended for guided sampling.</summary>
    Bh2,
}
