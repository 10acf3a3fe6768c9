namespace StableDiffusion.Memory;

/// <summary>
/// Estimates, before a generation runs, how much memory it needs from its size and batch, so that a service can refuse a
/// request that would exhaust the machine (a 1024x1024 image on SD 1.x's attention layout needs about 20 GB on the CPU).
/// </summary>
/// <remarks>
/// <para>The estimate counts what grows with the request, under <see cref="MemoryEstimatorAssumptions"/>:</para>
/// <list type="bullet">
/// <item>the UNet's highest-resolution self-attention scores: rows × heads × tokens² × bytes, where tokens =
/// (height / 8) × (width / 8) and rows = images × 2 with classifier-free guidance (images without). This term dominates:
/// it grows with the fourth power of the side;</item>
/// <item>the VAE decoder: its mid-block attention at the latents' resolution (one head, images × tokens² × bytes) and its
/// full-resolution activations (images × channels × height × width × bytes × copies).</item>
/// </list>
/// <para>It does not count weights (add them as <see cref="MemoryEstimatorAssumptions.BaseBytes"/>), the text encoder or
/// safety checker (fixed sizes), or memory-efficient attention kernels (fused attention on CUDA, and MultiHeadAttention on the
/// CPU where <see cref="ExecutionProviders.SessionSettings.FuseAttention"/> is on, its default, need far less: the estimate is
/// then an upper bound).</para>
/// </remarks>
public static class GenerationMemoryEstimator
{
    /// <summary>Estimates the memory of one generation.</summary>
    /// <param name="width">The image width in pixels.</param>
    /// <param name="height">The image height in pixels.</param>
    /// <param name="images">Images generated together (prompts × images per prompt).</param>
    /// <param name="guided">Whether classifier-free guidance is on (guidance scale above 1), doubling the UNet's batch.</param>
    /// <param name="assumptions">The model and runtime; SD 1.x in float32 when null.</param>
    public static GenerationMemoryEstimate Estimate(int width, int height, int images = 1, bool guided = true, MemoryEstimatorAssumptions? assumptions = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(images, 1);
        assumptions ??= new MemoryEstimatorAssumptions();
        int scale = assumptions.VaeScaleFactor;
        double tokens = (double)(height / scale) * (width / scale);
        double rows = images * (guided ? 2 : 1);
        double bytes = assumptions.ElementBytes;
        double unet = rows * assumptions.AttentionHeads * tokens * tokens * bytes * assumptions.AttentionCopies;
        double vae = (images * tokens * tokens * bytes) + (images * (double)assumptions.VaeChannels * height * width * bytes * assumptions.VaeActivationCopies);
        return new GenerationMemoryEstimate(Saturate(unet), Saturate(vae), assumptions.BaseBytes);
    }

    /// <summary>The largest square side, a multiple of <paramref name="multiple"/>, whose estimate fits in <paramref name="budgetBytes"/>; 0 when none does.</summary>
    /// <param name="budgetBytes">The memory allowed.</param>
    /// <param name="images">Images generated together.</param>
    /// <param name="guided">Whether classifier-free guidance is on.</param>
    /// <param name="assumptions">The model and runtime; SD 1.x in float32 when null.</param>
    /// <param name="multiple">The step of the sides tried (8: what the pipelines take).</param>
    public static int LargestSquareSide(long budgetBytes, int images = 1, bool guided = true, MemoryEstimatorAssumptions? assumptions = null, int multiple = 8)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(multiple, 1);
        // The estimate grows with the side, so the largest fitting side is found by bisection over multiples, up to 32768 pixels.
        int low = 0, high = 32768 / multiple;
        while (low < high)
        {
            int middle = (low + high + 1) / 2;
            if (Estimate(middle * multiple, middle * multiple, images, guided, assumptions).TotalBytes <= budgetBytes)
            {
                low = middle;
            }
            else
            {
                high = middle - 1;
            }
        }

        return low * multiple;
    }

    private static long Saturate(double bytes) => bytes >= long.MaxValue ? long.MaxValue : (long)Math.Ceiling(bytes);
}
