using System.Numerics.Tensors;

namespace StableDiffusion.Schedulers;

/// <summary>
/// The two ways diffusers keeps a predicted x₀ in range: static clipping (<c>clip_sample</c>) and Imagen's dynamic
/// thresholding (<c>thresholding</c>), whose threshold is a per-sample quantile of |x₀|.
/// </summary>
internal static class SampleClipping
{
    /// <summary>Clamps to ±<paramref name="range"/>.</summary>
    public static void Clip(Span<float> values, float range) => TensorPrimitives.Clamp(values, -range, range, values);

    /// <summary>
    /// Dynamic thresholding: per batch item, s = clamp(quantile(|x₀|, ratio), 1, maxValue), then x₀ = clamp(x₀, −s, s) / s,
    /// with torch.quantile's linear interpolation.
    /// </summary>
    /// <param name="values">x₀, batch-major.</param>
    /// <param name="batchSize">The size of the first dimension.</param>
    /// <param name="ratio">The quantile (<c>dynamic_thresholding_ratio</c>).</param>
    /// <param name="maxValue">The largest threshold (<c>sample_max_value</c>).</param>
    /// <param name="scratch">A buffer at least as long as one batch item.</param>
    public static void Threshold(Span<float> values, int batchSize, double ratio, double maxValue, Span<float> scratch)
    {
        int itemLength = values.Length / batchSize;
        for (int b = 0; b < batchSize; b++)
        {
            Span<float> item = values.Slice(b * itemLength, itemLength);
            Span<float> sorted = scratch[..itemLength];
            TensorPrimitives.Abs(item, sorted);
            sorted.Sort();

            // torch.quantile: rank = q·(n − 1) in the input's precision, then lerp between the neighbouring order statistics.
            float rank = (float)ratio * (itemLength - 1);
            int below = (int)rank;
            int above = System.Math.Min(below + 1, itemLength - 1);
            float weight = rank - below;
            float quantile = sorted[below] + weight * (sorted[above] - sorted[below]);

            // torch.clamp(s, min=1, max=maxValue) applies the minimum first, so a maxValue below 1 wins.
            float threshold = System.Math.Min(System.Math.Max(quantile, 1f), (float)maxValue);
            TensorPrimitives.Clamp(item, -threshold, threshold, item);
            TensorPrimitives.Divide(item, threshold, item);
        }
    }
}
