using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Schedulers.Tests.Numerics;

public sealed class SigmaScheduleTests
{
    private static NoiseSchedule StableDiffusion =>
        NoiseSchedule.Create(new EulerDiscreteSchedulerOptions { BetaStart = 0.00085, BetaEnd = 0.012, BetaSchedule = BetaSchedule.ScaledLinear });

    [Fact]
    public void ScaledLinearTable_MatchesDiffusersKnownValues()
    {
        NoiseSchedule noise = StableDiffusion;

        Assert.Equal(0.99914998f, noise.AlphasCumprod[0], 1e-7f);
        Assert.Equal(0.0046600951f, noise.AlphasCumprod[999], 1e-9f);
        Assert.Equal(0.0291675f, noise.Sigmas[0], 1e-6f);
        Assert.Equal(14.614647f, noise.Sigmas[999], 1e-5f);
    }

    [Fact]
    [Trait("Category", "Parity")]
    [Trait("Area", "Schedulers")]
    public void SigmaTable_EqualsDiffusersFloat32TableAtIntegerTimesteps()
    {
        // Trailing and leading spacing sample the table at whole timesteps, so the reference holds its entries exactly.
        Reference.Published.Require();
        NoiseSchedule noise = StableDiffusion;
        foreach (var (name, first) in new[] { ("euler_trailing/10", 999), ("euler_leading/10", 901) })
        {
            float[] expected = Reference.Published.Array($"sched/{name}/sigmas").ToSingle();
            for (int i = 0; i < 10; i++)
            {
                Assert.Equal(expected[i], noise.Sigmas[first - 100 * i]);
            }
        }
    }

    [Fact]
    public void Karras_RunsFromSigmaMaxToSigmaMin()
    {
        double[] sigmas = SigmaSchedules.Karras(0.0291675, 14.614647, 10);

        Assert.Equal(14.614647, sigmas[0], 10);
        Assert.Equal(0.0291675, sigmas[^1], 10);
        Assert.Equal(9.10293674, sigmas[1], 6);
        Assert.True(sigmas.Zip(sigmas.Skip(1)).All(p => p.First > p.Second));
    }

    [Fact]
    public void Exponential_IsEvenlySpacedInLogSigma()
    {
        double[] sigmas = SigmaSchedules.Exponential(0.1, 10, 5);

        Assert.Equal([10, Math.Sqrt(10), 1, Math.Sqrt(0.1), 0.1], sigmas.Select(s => Math.Round(s, 10)), (x, y) => Math.Abs(x - y) < 1e-9);
    }

    [Fact]
    public void SigmaToTimestep_InvertsTheTable()
    {
        NoiseSchedule noise = StableDiffusion;

        foreach (int t in new[] { 0, 1, 250, 500, 998, 999 })
        {
            Assert.Equal(t, SigmaSchedules.SigmaToTimestep(noise.Sigmas[t], noise.LogSigmas), 3);
        }

        double between = Math.Exp(0.5 * (Math.Log(noise.Sigmas[400]) + Math.Log(noise.Sigmas[401])));
        Assert.Equal(400.5, SigmaSchedules.SigmaToTimestep(between, noise.LogSigmas), 2);
        Assert.Equal(0, SigmaSchedules.SigmaToTimestep(1e-6, noise.LogSigmas));
        Assert.Equal(999, SigmaSchedules.SigmaToTimestep(100, noise.LogSigmas));
    }

    [Fact]
    public void RescaledZeroSnr_EndsAtZeroSignal()
    {
        var options = new DdimSchedulerOptions { BetaStart = 0.00085, BetaEnd = 0.012, BetaSchedule = BetaSchedule.ScaledLinear };

        NoiseSchedule ddim = NoiseSchedule.Create(options, rescaleBetasZeroSnr: true);
        NoiseSchedule euler = NoiseSchedule.Create(options, rescaleBetasZeroSnr: true, finiteTerminalSigma: true);

        Assert.Equal(0f, ddim.AlphasCumprod[^1], 1e-12f);
        Assert.Equal(1f / (1 << 24), euler.AlphasCumprod[^1]);
        Assert.Equal(StableDiffusion.AlphasCumprod[0], ddim.AlphasCumprod[0], 1e-6f);
    }

    [Theory]
    [InlineData(BetaSchedule.Linear)]
    [InlineData(BetaSchedule.SquaredCosCapV2)]
    [InlineData(BetaSchedule.Exp)]
    [InlineData(BetaSchedule.Laplace)]
    [InlineData(BetaSchedule.Sigmoid)]
    public void EveryBetaSchedule_GivesADecreasingAlphaBar(BetaSchedule schedule)
    {
        var options = new DdpmSchedulerOptions { BetaSchedule = schedule };

        NoiseSchedule noise = NoiseSchedule.Create(options);

        Assert.All(noise.Betas, b => Assert.InRange(b, 0f, 0.999f));
        Assert.True(noise.AlphasCumprod.Zip(noise.AlphasCumprod.Skip(1)).All(p => p.Second <= p.First));
    }
}
