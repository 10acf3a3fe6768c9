using Xunit;

namespace StableDiffusion.Schedulers.Tests.Schedulers;

/// <summary>Timestep schedules for longer runs than the reference covers, against values diffusers gives.</summary>
public sealed class ScheduleTests
{
    [Fact]
    public void Pndm_50StepsOfStableDiffusion15_RepeatTheSecondTimestep()
    {
        var pndm = PndmScheduler.FromConfig(TestConfigs.StableDiffusion15);

        pndm.SetTimesteps(50);

        float[] expected = [981, 961, .. Enumerable.Range(0, 49).Select(i => 961f - 20 * i)];
        Assert.Equal(expected, pndm.Timesteps);
        Assert.Equal(51, pndm.Timesteps.Count);
        Assert.Equal(1f, pndm.Timesteps[^1]);
    }

    [Fact]
    public void Pndm_WithRungeKutta_MatchesDiffusersSchedule()
    {
        var pndm = PndmScheduler.FromConfig(TestConfigs.StableDiffusion15.With("skip_prk_steps", false));

        pndm.SetTimesteps(10);

        Assert.Equal([901f, 851, 851, 801, 801, 751, 751, 701, 701, 651, 651, 601, 601, 501, 401, 301, 201, 101, 1], pndm.Timesteps);
    }

    [Fact]
    public void Ddim_LeadingSpacing_50Steps()
    {
        var ddim = DdimScheduler.FromConfig(TestConfigs.StableDiffusion15);

        ddim.SetTimesteps(50);

        Assert.Equal(Enumerable.Range(0, 50).Select(i => 981f - 20 * i), ddim.Timesteps);
    }

    [Fact]
    public void Euler_LinspaceSpacing_50Steps_IsNotRounded()
    {
        var euler = EulerDiscreteScheduler.FromConfig(TestConfigs.StableDiffusion15);

        euler.SetTimesteps(50);

        Assert.Equal(999f, euler.Timesteps[0]);
        Assert.Equal(978.6122f, euler.Timesteps[1], 1e-3f);
        Assert.Equal(958.2245f, euler.Timesteps[2], 1e-3f);
        Assert.Equal(20.3878f, euler.Timesteps[48], 1e-3f);
        Assert.Equal(0f, euler.Timesteps[49]);
        Assert.Equal(51, euler.Sigmas.Count);
        Assert.Equal(14.614647f, euler.InitNoiseSigma, 1e-5f);
    }

    [Fact]
    public void Euler_LeadingSpacing_InitNoiseSigmaIncludesTheUnitVariance()
    {
        var euler = EulerDiscreteScheduler.FromConfig(TestConfigs.StableDiffusion15.With("timestep_spacing", "leading"));

        euler.SetTimesteps(50);

        Assert.Equal(981f, euler.Timesteps[0]);
        Assert.Equal(13.158469f, euler.InitNoiseSigma, 1e-5f);
    }

    [Fact]
    public void TrailingSpacing_50Steps()
    {
        var euler = EulerDiscreteScheduler.FromConfig(TestConfigs.StableDiffusion15.With("timestep_spacing", "trailing"));

        euler.SetTimesteps(50);

        Assert.Equal(Enumerable.Range(0, 50).Select(i => 999f - 20 * i), euler.Timesteps);
    }

    [Fact]
    public void DpmSolver_LinspaceSpacing_25Steps()
    {
        var dpm = DpmSolverMultistepScheduler.FromConfig(TestConfigs.StableDiffusion15);

        dpm.SetTimesteps(25);

        Assert.Equal(25, dpm.Timesteps.Count);
        Assert.Equal([999f, 959, 919], dpm.Timesteps.Take(3));
        Assert.Equal([80f, 40], dpm.Timesteps.TakeLast(2));
        Assert.Equal(1f, dpm.InitNoiseSigma);
    }

    [Fact]
    public void DpmSolverKarras_RoundsTimestepsButKeepsKarrasSigmas()
    {
        var dpm = (DpmSolverMultistepScheduler)SchedulerFactory.Create("DPM++ 2M Karras", TestConfigs.StableDiffusion15);

        dpm.SetTimesteps(10);

        Assert.Equal([999f, 916, 815, 687, 523, 327, 146, 41, 7, 0], dpm.Timesteps);
        Assert.Equal(14.614647f, dpm.Sigmas[0], 1e-5f);
        Assert.Equal(0.029167533f, dpm.Sigmas[9], 1e-7f);
        Assert.Equal(0f, dpm.Sigmas[10]);
    }

    [Fact]
    public void EulerKarras_KeepsFractionalTimesteps()
    {
        var euler = (EulerDiscreteScheduler)SchedulerFactory.Create("Euler Karras", TestConfigs.StableDiffusion15);

        euler.SetTimesteps(10);

        Assert.Equal(916.28406f, euler.Timesteps[1], 1e-3f);
        Assert.Equal(6.7324100f, euler.Timesteps[8], 1e-3f);
    }

    [Theory]
    [InlineData("Heun")]
    [InlineData("DPM2")]
    [InlineData("DPM2 a")]
    public void SecondOrderSchedulers_Take2NMinus1Evaluations(string name)
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create(name, TestConfigs.StableDiffusion15);

        scheduler.SetTimesteps(10);

        Assert.Equal(2, scheduler.Order);
        Assert.Equal(19, scheduler.Timesteps.Count);
        Assert.Equal(10, scheduler.NumInferenceSteps);
    }

    [Fact]
    public void TrailingSpacing_WithNumpysExtraElement_KeepsDiffusersTimestepMinusOne()
    {
        // numpy's arange(1000, 0, −1000/61) has 62 elements, the last rounding to 0, so diffusers' schedule ends at −1.
        var euler = EulerDiscreteScheduler.FromConfig(TestConfigs.StableDiffusion15.With("timestep_spacing", "trailing"));

        euler.SetTimesteps(61);

        Assert.Equal(62, euler.Timesteps.Count);
        Assert.Equal(-1f, euler.Timesteps[^1]);
        // np.interp clamps at the table's start: timestep −1 gets the smallest training sigma.
        Assert.Equal(0.029167533f, euler.Sigmas[^2], 1e-7f);
    }

    [Fact]
    public void Lcm_TakesItsStepsFromTheDistillationSchedule()
    {
        var lcm = LcmScheduler.FromConfig(TestConfigs.StableDiffusion15);

        lcm.SetTimesteps(4);
        Assert.Equal([999f, 759, 499, 259], lcm.Timesteps);

        lcm.SetTimesteps(4, originalInferenceSteps: null, strength: 0.5);
        Assert.Equal([499f, 379, 259, 139], lcm.Timesteps);
    }

    [Fact]
    public void DpmSolverSinglestep_LowerOrderFinal_IsForcedOnAsDiffusersDoes()
    {
        var dpm = DpmSolverSinglestepScheduler.FromConfig(TestConfigs.StableDiffusion15);

        dpm.SetTimesteps(10);

        Assert.Equal(10, dpm.Timesteps.Count);
        Assert.Equal(0f, dpm.Sigmas[^1]);
    }
}
