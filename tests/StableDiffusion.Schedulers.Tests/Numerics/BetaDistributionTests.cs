using Xunit;

namespace StableDiffusion.Schedulers.Tests.Numerics;

public sealed class BetaDistributionTests
{
    [Theory]
    [InlineData(0.6, 0.6)]
    [InlineData(2.0, 5.0)]
    [InlineData(0.5, 0.5)]
    public void Quantile_InvertsTheCdf(double a, double b)
    {
        foreach (double p in new[] { 1e-6, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1 - 1e-6 })
        {
            double x = BetaDistribution.Quantile(p, a, b);
            // Near 0 and 1 the density is large, so one ulp of x moves the CDF by more than 1e-12.
            Assert.Equal(p, BetaDistribution.Cdf(x, a, b), 9);
        }
    }

    [Fact]
    public void Cdf_MatchesClosedForms()
    {
        // Beta(1, 1) is uniform; Beta(2, 1) has CDF x²; Beta(0.5, 0.5) is the arcsine law (2/π)·asin(√x).
        Assert.Equal(0.3, BetaDistribution.Cdf(0.3, 1, 1), 13);
        Assert.Equal(0.09, BetaDistribution.Cdf(0.3, 2, 1), 13);
        Assert.Equal(2 / Math.PI * Math.Asin(Math.Sqrt(0.3)), BetaDistribution.Cdf(0.3, 0.5, 0.5), 12);
    }

    [Fact]
    public void SymmetricDistribution_HasSymmetricQuantiles()
    {
        Assert.Equal(0.5, BetaDistribution.Quantile(0.5, 0.6, 0.6), 14);
        Assert.Equal(1, BetaDistribution.Quantile(0.2, 0.6, 0.6) + BetaDistribution.Quantile(0.8, 0.6, 0.6), 13);
        Assert.Equal(0, BetaDistribution.Quantile(0, 0.6, 0.6));
        Assert.Equal(1, BetaDistribution.Quantile(1, 0.6, 0.6));
    }
}
