namespace StableDiffusion.Safety;

/// <summary>
/// The fixed-point taps of an antialiased 1-D resampling: for each output index, the first source index, the number of
/// taps and their integer weights, which sum (before rounding) to <c>1 &lt;&lt; Precision</c>.
/// </summary>
/// <remarks>
/// Pillow (<c>src/libImaging/Resample.c</c>: <c>precompute_coeffs</c>, <c>normalize_coeffs_8bpc</c>) and torch's uint8
/// antialiased interpolation (<c>aten/src/ATen/native/cpu/UpSampleKernel.cpp</c>:
/// <c>_compute_indices_min_size_weights_aa</c>, <c>_compute_index_ranges_int16_weights</c>) place and normalise the taps
/// the same way: the filter's support widens by the downscale factor, taps start at <c>int(center - support + 0.5)</c>.
/// They differ in the weights' precision (Pillow: always 22 bits; torch: the most bits that keep the largest weight in
/// an int16, usually 15) and in how the bicubic polynomial is evaluated.
/// </remarks>
internal sealed class ResampleAxis
{
    private const int PillowPrecision = 32 - 8 - 2;

    private ResampleAxis(int precision, int kernelSize, int[] start, int[] count, int[] weights)
    {
        Precision = precision;
        KernelSize = kernelSize;
        Start = start;
        Count = count;
        Weights = weights;
    }

    /// <summary>The weights' fixed-point precision in bits.</summary>
    public int Precision { get; }

    /// <summary>The number of weight slots per output index.</summary>
    public int KernelSize { get; }

    /// <summary>The first source index of each output index.</summary>
    public int[] Start { get; }

    /// <summary>The number of taps of each output index.</summary>
    public int[] Count { get; }

    /// <summary>Fixed-point weights, <see cref="KernelSize"/> slots per output index.</summary>
    public int[] Weights { get; }

    /// <summary>Pillow's taps for <paramref name="filter"/>, with 22-bit weights.</summary>
    public static ResampleAxis ForPillow(int inSize, int outSize, PilResampling filter)
    {
        (Func<double, double> kernel, double support) = filter switch
        {
            PilResampling.Box => ((Func<double, double>)PillowBox, 0.5),
            PilResampling.Bilinear => (PillowBilinear, 1.0),
            PilResampling.Hamming => (PillowHamming, 1.0),
            PilResampling.Bicubic => (PillowBicubic, 2.0),
            PilResampling.Lanczos => (PillowLanczos, 3.0),
            _ => throw new ArgumentOutOfRangeException(nameof(filter), filter, "Not a convolution filter."),
        };

        // Pillow passes the source box as floats: (in1 - in0) is a float difference widened to double.
        double scale = (double)(float)inSize / outSize;
        (int kernelSize, int[] start, int[] count, double[] weights, _) = Taps(inSize, outSize, scale, support, kernel, clampCount: false);
        return new ResampleAxis(PillowPrecision, kernelSize, start, count, ToFixedPoint(weights, PillowPrecision));
    }

    /// <summary>Torch's uint8 antialiased bicubic taps (<c>interpolate(mode="bicubic", antialias=True)</c>), with int16 weights.</summary>
    public static ResampleAxis ForTorchBicubic(int inSize, int outSize)
    {
        double scale = (double)inSize / outSize;
        (int kernelSize, int[] start, int[] count, double[] weights, double maxWeight) =
            Taps(inSize, outSize, scale, 2.0, TorchBicubic, clampCount: true);

        // The most bits that still keep the largest weight inside an int16.
        int precision;
        for (precision = 0; precision < 22; precision++)
        {
            int next = (int)(0.5 + (maxWeight * (1 << (precision + 1))));
            if (next >= 1 << 15)
            {
                break;
            }
        }

        return new ResampleAxis(precision, kernelSize, start, count, ToFixedPoint(weights, precision));
    }

    /// <summary>The source indices [first, end) that output indices [<paramref name="from"/>, <paramref name="to"/>) read.</summary>
    public (int First, int End) SourceRange(int from, int to)
    {
        int first = int.MaxValue, end = 0;
        for (int i = from; i < to; i++)
        {
            first = Math.Min(first, Start[i]);
            end = Math.Max(end, Start[i] + Count[i]);
        }

        return first <= end ? (first, end) : (0, 0);
    }

    /// <summary>The normalised floating-point taps shared by Pillow and torch, and the largest weight.</summary>
    private static (int KernelSize, int[] Start, int[] Count, double[] Weights, double MaxWeight) Taps(
        int inSize, int outSize, double scale, double filterSupport, Func<double, double> kernel, bool clampCount)
    {
        double filterScale = scale < 1.0 ? 1.0 : scale;
        double support = filterSupport * filterScale;
        int kernelSize = ((int)Math.Ceiling(support) * 2) + 1;
        double inverseFilterScale = 1.0 / filterScale;

        var start = new int[outSize];
        var count = new int[outSize];
        var weights = new double[outSize * kernelSize];
        double maxWeight = 0.0;
        for (int i = 0; i < outSize; i++)
        {
            double center = (i + 0.5) * scale;
            int min = Math.Max((int)(center - support + 0.5), 0);
            int n = Math.Min((int)(center + support + 0.5), inSize) - min;
            if (clampCount)
            {
                // torch clips a count that rounding pushed one past the kernel size.
                n = Math.Clamp(n, 0, kernelSize);
            }

            Span<double> taps = weights.AsSpan(i * kernelSize, n);
            double sum = 0.0;
            for (int t = 0; t < n; t++)
            {
                double w = kernel((t + min - center + 0.5) * inverseFilterScale);
                taps[t] = w;
                sum += w;
            }

            if (sum != 0.0)
            {
                for (int t = 0; t < n; t++)
                {
                    taps[t] /= sum;
                    maxWeight = Math.Max(maxWeight, taps[t]);
                }
            }

            start[i] = min;
            count[i] = n;
        }

        return (kernelSize, start, count, weights, maxWeight);
    }

    private static int[] ToFixedPoint(double[] weights, int precision)
    {
        var result = new int[weights.Length];
        double one = 1 << precision;
        for (int i = 0; i < weights.Length; i++)
        {
            double v = weights[i] * one;
            result[i] = v < 0 ? (int)(-0.5 + v) : (int)(0.5 + v);
        }

        return result;
    }

    // The filters, each in its source's order of operations: the values feed fixed-point rounding, so they must match.
    private static double PillowBox(double x) => x > -0.5 && x <= 0.5 ? 1.0 : 0.0;

    private static double PillowBilinear(double x)
    {
        x = Math.Abs(x);
        return x < 1.0 ? 1.0 - x : 0.0;
    }

    private static double PillowHamming(double x)
    {
        x = Math.Abs(x);
        if (x == 0.0)
        {
            return 1.0;
        }

        if (x >= 1.0)
        {
            return 0.0;
        }

        x *= Math.PI;

        // Pillow writes the window's constants as C floats (0.54f, 0.46f), widened to double.
        return Math.Sin(x) / x * ((double)0.54f + ((double)0.46f * Math.Cos(x)));
    }

    private static double PillowBicubic(double x)
    {
        const double a = -0.5;
        x = Math.Abs(x);
        if (x < 1.0)
        {
            return ((((a + 2.0) * x) - (a + 3.0)) * x * x) + 1;
        }

        if (x < 2.0)
        {
            return ((((((x - 5) * x) + 8) * x) - 4) * a);
        }

        return 0.0;
    }

    private static double PillowLanczos(double x) => x >= -3.0 && x < 3.0 ? Sinc(x) * Sinc(x / 3) : 0.0;

    private static double Sinc(double x)
    {
        if (x == 0.0)
        {
            return 1.0;
        }

        x *= Math.PI;
        return Math.Sin(x) / x;
    }

    /// <summary>Torch's <c>HelperInterpCubic::aa_filter</c>: Keys' cubic with a = -0.5 (<c>cubic_convolution1/2</c>).</summary>
    private static double TorchBicubic(double x)
    {
        const double a = -0.5;
        x = Math.Abs(x);
        if (x < 1.0)
        {
            return ((((a + 2) * x) - (a + 3)) * x * x) + 1;
        }

        if (x < 2.0)
        {
            return ((((((a * x) - (5 * a)) * x) + (8 * a)) * x) - (4 * a));
        }

        return 0.0;
    }
}
