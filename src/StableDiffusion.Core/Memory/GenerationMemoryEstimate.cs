namespace StableDiffusion.Memory;

/// <summary>The memory a generation is estimated to need, by part (<see cref="GenerationMemoryEstimator"/>).</summary>
/// <param name="UNetBytes">The UNet's peak: its highest-resolution attention scores.</param>
/// <param name="VaeBytes">The VAE decoder's peak: its attention at the latents' resolution and its full-resolution activations.</param>
/// <param name="BaseBytes">The fixed part (<see cref="MemoryEstimatorAssumptions.BaseBytes"/>).</param>
public sealed record GenerationMemoryEstimate(long UNetBytes, long VaeBytes, long BaseBytes)
{
    /// <summary>The whole estimate. The parts are added, not maximised: each model's arena keeps its peak until the end of the
    /// generation unless the arenas are shrunk.</summary>
    public long TotalBytes => (long)Math.Min((double)UNetBytes + VaeBytes + BaseBytes, long.MaxValue);
}
