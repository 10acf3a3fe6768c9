namespace StableDiffusion.Schedulers;

/// <summary>The few torch float32 routines diffusers builds its noise tables with, reproduced to their rounding.</summary>
internal static class TorchCompat
{
    /// <summary>
    /// <c>torch.linspace(start, end, steps, dtype=torch.float32)</c> on the CPU: the step is computed in float32 and each
    /// half of the range is measured from its own end point, with one rounding per element (torch's compiled kernel
    /// fuses the multiply-add; this reproduces diffusers' Stable Diffusion tables bit for bit).
    /// </summary>
    public static float[] LinspaceFloat32(double start, double end, int steps)
    {
        var result = new float[steps];
        float first = (float)start;
        if (steps == 1)
        {
            result[0] = first;
            return result;
        }

        float last = (float)end;
        float step = (last - first) / (steps - 1);
        int halfway = steps / 2;
        for (int i = 0; i < steps; i++)
        {
            result[i] = i < halfway ? MathF.FusedMultiplyAdd(step, i, first) : MathF.FusedMultiplyAdd(-step, steps - i - 1, last);
        }

        return result;
    }

    /// <summary><c>torch.cumprod</c> of a float32 tensor on the CPU, which accumulates in double precision.</summary>
    public static float[] CumulativeProduct(ReadOnlySpan<float> values)
    {
        var result = new float[values.Length];
        double product = 1;
        for (int i = 0; i < values.Length; i++)
        {
            product *= values[i];
            result[i] = (float)product;
        }

        return result;
    }
}
