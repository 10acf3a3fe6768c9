namespace StableDiffusion.Schedulers;

/// <summary>
/// The numpy routines diffusers builds its schedules with, reproduced operation for operation in double precision so that
/// timesteps and sigmas come out bit-identical (including numpy's rounding half to even and its arange length rule).
/// </summary>
internal static class NumpyCompat
{
    /// <summary><c>np.linspace(start, stop, num)</c> (endpoint included): <c>i·step + start</c>, the last element exactly <paramref name="stop"/>.</summary>
    public static double[] Linspace(double start, double stop, int num) => Linspace(start, stop, num, endpoint: true);

    /// <summary><c>np.linspace(start, stop, num, endpoint=endpoint)</c>.</summary>
    public static double[] Linspace(double start, double stop, int num, bool endpoint)
    {
        var result = new double[num];
        int div = endpoint ? num - 1 : num;
        double delta = stop - start;
        if (div > 0)
        {
            double step = delta / div;
            for (int i = 0; i < num; i++)
            {
                // numpy divides first when the step underflows to zero.
                result[i] = (step == 0 ? i / (double)div * delta : i * step) + start;
            }
        }
        else
        {
            for (int i = 0; i < num; i++)
            {
                result[i] = i * delta + start;
            }
        }

        if (endpoint && num > 1)
        {
            result[^1] = stop;
        }

        return result;
    }

    /// <summary>
    /// <c>np.arange(start, stop, step)</c> for floating-point arguments: <c>ceil((stop - start) / step)</c> elements, element i
    /// being <c>start + i·((start + step) - start)</c>, as numpy fills it.
    /// </summary>
    public static double[] Arange(double start, double stop, double step)
    {
        double count = System.Math.Ceiling((stop - start) / step);
        if (!(count > 0))
        {
            return [];
        }

        var result = new double[(int)count];
        result[0] = start;
        if (result.Length > 1)
        {
            result[1] = start + step;
            double delta = result[1] - start;
            for (int i = 2; i < result.Length; i++)
            {
                result[i] = start + i * delta;
            }
        }

        return result;
    }

    /// <summary><c>np.round</c>: to the nearest integer, halves to even.</summary>
    public static double Round(double value) => System.Math.Round(value, MidpointRounding.ToEven);

    /// <summary>
    /// <c>np.interp(x, arange(len(fp)), fp)</c>: piecewise-linear interpolation of <paramref name="table"/> at the fractional
    /// index <paramref name="x"/>, clamped to the first and last entries.
    /// </summary>
    public static double Interp(double x, ReadOnlySpan<float> table)
    {
        if (double.IsNaN(x))
        {
            return x;
        }

        int last = table.Length - 1;
        if (x <= 0)
        {
            return table[0];
        }

        if (x >= last)
        {
            return table[last];
        }

        int j = (int)System.Math.Floor(x);
        if (j == x)
        {
            return table[j];
        }

        // The abscissae are consecutive integers, so numpy's slope (dy / dx) has dx = 1.
        double slope = (double)table[j + 1] - table[j];
        double value = slope * (x - j) + table[j];
        return double.IsNaN(value) ? slope * (x - (j + 1)) + table[j + 1] : value;
    }
}
