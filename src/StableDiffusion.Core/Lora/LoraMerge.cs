using System.Numerics.Tensors;

namespace StableDiffusion.Lora;

/// <summary>Adds a LoRA update to a weight in single precision: <c>W += factor · alpha / rank · Up · Down</c>.</summary>
internal static class LoraMerge
{
    /// <summary>
    /// Adds <paramref name="factor"/> times the update of <paramref name="entry"/> to <paramref name="weight"/>, whose
    /// elements are in <paramref name="target"/>'s stored order: [out, in·k] as PyTorch stores it, or [in, out] for an
    /// exporter's transposed MatMul weight. Rows are independent, so they are spread over the cores.
    /// </summary>
    public static void Add(float[] weight, LoraTarget target, LoraEntry entry, float factor)
    {
        int rank = entry.Rank;
        int outFeatures = checked((int)entry.OutFeatures);
        int inFeatures = checked((int)entry.InFeatures);
        float scale = factor * entry.Scale;
        float[] up = entry.Up;     // [out, rank]
        float[] down = entry.Down; // [rank, in]
        if (!target.Transposed)
        {
            // Row o of the update: Σ_r up[o, r] · down[r, :].
            Parallel.For(0, outFeatures, o =>
            {
                Span<float> row = weight.AsSpan(o * inFeatures, inFeatures);
                for (int r = 0; r < rank; r++)
                {
                    TensorPrimitives.MultiplyAdd(down.AsSpan(r * inFeatures, inFeatures), scale * up[o * rank + r], row, row);
                }
            });
            return;
        }

        // Row j of the transposed update: Σ_r down[r, j] · up[:, r].
        var upColumns = new float[rank * outFeatures];
        for (int o = 0; o < outFeatures; o++)
        {
            for (int r = 0; r < rank; r++)
            {
                upColumns[r * outFeatures + o] = up[o * rank + r];
            }
        }

        Parallel.For(0, inFeatures, j =>
        {
            Span<float> row = weight.AsSpan(j * outFeatures, outFeatures);
            for (int r = 0; r < rank; r++)
            {
                TensorPrimitives.MultiplyAdd(upColumns.AsSpan(r * outFeatures, outFeatures), scale * down[r * inFeatures + j], row, row);
            }
        });
    }
}
