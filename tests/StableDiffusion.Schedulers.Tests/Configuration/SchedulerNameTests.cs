using StableDiffusion.Schedulers;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Schedulers.Tests.Configuration;

/// <summary>SchedulerFactory.NameOf: the web UI name of a scheduler (what PNG parameters record).</summary>
[Trait("Area", "Schedulers")]
public sealed class SchedulerNameTests
{
    private static readonly SchedulerConfig StableDiffusion15 = SchedulerConfig.Parse(SchedulerConfigJson.StableDiffusion15);

    public static TheoryData<string> UiNames => [.. SchedulerFactory.KnownNames.Except(SchedulerFactory.ClassNames).Except(["PNDM"])];

    [Fact]
    public void TheModelsOwnScheduler_IsPlms()
    {
        Assert.Equal("PLMS", SchedulerFactory.NameOf(SchedulerFactory.FromConfig(StableDiffusion15)));
    }

    [Theory]
    [MemberData(nameof(UiNames))]
    public void EveryUiName_ComesBack(string name)
    {
        Assert.Equal(name, SchedulerFactory.NameOf(SchedulerFactory.Create(name, StableDiffusion15)));
    }

    [Theory]
    [InlineData("EulerDiscreteScheduler", "Euler")]
    [InlineData("euler a", "Euler a")]
    [InlineData("DPMSolverMultistepScheduler", "DPM++ 2M")]
    [InlineData("dpm++_2m_karras", "DPM++ 2M Karras")]
    public void ClassNamesAndOtherSpellings_GetTheUiName(string asked, string written)
    {
        Assert.Equal(written, SchedulerFactory.NameOf(SchedulerFactory.Create(asked, StableDiffusion15)));
    }

    [Fact]
    public void ACustomConfiguration_KeepsTheClassName()
    {
        // Third-order DPM-Solver has no web UI name.
        SchedulerConfig config = StableDiffusion15.WithClassName("DPMSolverMultistepScheduler").With("solver_order", 3);

        Assert.Equal("DPMSolverMultistepScheduler", SchedulerFactory.NameOf(SchedulerFactory.FromConfig(config)));
    }
}
