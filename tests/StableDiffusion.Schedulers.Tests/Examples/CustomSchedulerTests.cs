using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Schedulers.Tests.Examples;

/// <summary>A scheduler written against IScheduler runs in the same loop as the built-in ones.</summary>
public sealed class CustomSchedulerTests
{
    [Fact]
    public void CustomEuler_MatchesTheBuiltInEulerWhereTheirSchedulesCoincide()
    {
        // 10 linspace steps over 1000 training timesteps land on whole timesteps (999, 888, …, 0), so both agree.
        IScheduler custom = new MyEulerScheduler(TestConfigs.StableDiffusion15);
        IScheduler builtIn = SchedulerFactory.Create("Euler", TestConfigs.StableDiffusion15);

        ArrayAssert.Close(Denoise(builtIn), Denoise(custom), 1e-5, "latents");

        // Denoise works on clones, so compare the schedules the templates give themselves.
        builtIn.SetTimesteps(10);
        custom.SetTimesteps(10);
        Assert.Equal(builtIn.Timesteps, custom.Timesteps);
        Assert.Equal(10, custom.Timesteps.Count);
    }

    // A pipeline's loop (DummyModel.Denoise is written against the interface only).
    private static float[] Denoise(IScheduler template)
    {
        IScheduler scheduler = template.Clone();
        scheduler.SetTimesteps(10);
        var random = new Random(3);
        float[] latents = Enumerable.Range(0, 256).Select(_ => (float)(random.NextDouble() - 0.5) * scheduler.InitNoiseSigma).ToArray();
        DummyModel.Denoise(scheduler, latents, [1, 4, 8, 8]);
        return latents;
    }
}
