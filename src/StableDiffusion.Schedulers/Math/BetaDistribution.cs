namespace StableDiffusion.Schedulers;

/// <summary>
/// The quantile function of the Beta distribution, for diffusers' <c>use_beta_sigmas</c> (which calls
/// <c>scipy.stats.beta.ppf</c>). .NET has no regularised incomplete beta function, and this is the only use, so it is
/// written here: a continued fraction for the CDF and bisection refined by Newton steps for its inverse.
/// </summary>
internal static class BetaDistribution
{
    /// <summary>The x in [0, 1] with I_x(a, b) = <paramref name="p"/>.</summary>
    public static double Quantile(double p, double a, double b)
    {
        if (p <= 0)
        {
            return 0;
        }

        if (p >= 1)
        {
            return 1;
        }

        double logBeta = LogGamma(a) + LogGamma(b) - LogGamma(a + b);
        double lo = 0, hi = 1, x = 0.5;
        for (int i = 0; i < 200; i++)
        {
            double error = RegularizedIncompleteBeta(x, a, b, logBeta) - p;
            if (error == 0)
            {
                return x;
            }

            if (error > 0)
            {
                hi = x;
            }
            else
            {
                lo = x;
            }

            // A Newton step on the density, kept inside the bracket; bisection otherwise.
            double density = System.Math.Exp((a - 1) * System.Math.Log(x) + (b - 1) * System.Math.Log(1 - x) - logBeta);
            double next = x - error / density;
            x = next > lo && next < hi ? next : 0.5 * (lo + hi);
            if (hi - lo < 1e-17 || System.Math.Abs(error) < 1e-17)
            {
                break;
            }
        }

        return x;
    }

    /// <summary>The Beta(a, b) CDF I_x(a, b).</summary>
    public static double Cdf(double x, double a, double b) =>
        x <= 0 ? 0 : x >= 1 ? 1 : RegularizedIncompleteBeta(x, a, b, LogGamma(a) + LogGamma(b) - LogGamma(a + b));

    private static double RegularizedIncompleteBeta(double x, double a, double b, double logBeta)
    {
        double front = System.Math.Exp(a * System.Math.Log(x) + b * System.Math.Log(1 - x) - logBeta);
        // The continued fraction converges fast for x below the mean; use the symmetry I_x(a, b) = 1 − I_{1−x}(b, a) above it.
        return x < (a + 1) / (a + b + 2)
            ? front * ContinuedFraction(x, a, b) / a
            : 1 - front * ContinuedFraction(1 - x, b, a) / b;
    }

    // Lentz's method for the continued fraction of the incomplete beta function.
    private static double ContinuedFraction(double x, double a, double b)
    {
        const double Tiny = 1e-300;
        double c = 1;
        double d = 1 - (a + b) * x / (a + 1);
        d = 1 / (System.Math.Abs(d) < Tiny ? Tiny : d);
        double result = d;
        for (int m = 1; m <= 1000; m++)
        {
            int m2 = 2 * m;
            double even = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
            d = 1 + even * d;
            d = 1 / (System.Math.Abs(d) < Tiny ? Tiny : d);
            c = 1 + even / c;
            c = System.Math.Abs(c) < Tiny ? Tiny : c;
            result *= d * c;

            double odd = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
            d = 1 + odd * d;
            d = 1 / (System.Math.Abs(d) < Tiny ? Tiny : d);
            c = 1 + odd / c;
            c = System.Math.Abs(c) < Tiny ? Tiny : c;
            double delta = d * c;
            result *= delta;
            if (System.Math.Abs(delta - 1) < 1e-16)
            {
                break;
            }
        }

        return result;
    }

    // Lanczos approximation (g = 7, 9 coefficients), accurate to about 1e-15 for positive arguments.
    private static double LogGamma(double x)
    {
        ReadOnlySpan<double> coefficients =
        [
            0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
            12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
        ];
        if (x < 0.5)
        {
            return System.Math.Log(System.Math.PI / System.Math.Abs(System.Math.Sin(System.Math.PI * x))) - LogGamma(1 - x);
        }

        x -= 1;
        double sum = coefficients[0];
        for (int i = 1; i < coefficients.Length; i++)
        {
            sum += coefficients[i] / (x + i);
        }

        double t = x + 7.5;
        return 0.5 * System.Math.Log(2 * System.Math.PI) + (x + 0.5) * System.Math.Log(t) - t + System.Math.Log(sum);
    }
}
