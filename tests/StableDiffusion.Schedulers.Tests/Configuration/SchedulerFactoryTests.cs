using Xunit;

namespace StableDiffusion.Schedulers.Tests.Configuration;

public sealed class SchedulerFactoryTests
{
    [Theory]
    [InlineData("Euler", typeof(EulerDiscreteScheduler))]
    [InlineData("euler a", typeof(EulerAncestralDiscreteScheduler))]
    [InlineData("LMS Karras", typeof(LmsDiscreteScheduler))]
    [InlineData("Heun", typeof(HeunDiscreteScheduler))]
    [InlineData("DPM2", typeof(KDpm2DiscreteScheduler))]
    [InlineData("DPM2 a Karras", typeof(KDpm2AncestralDiscreteScheduler))]
    [InlineData("dpm++ 2m karras", typeof(DpmSolverMultistepScheduler))]
    [InlineData("DPM++ 2S", typeof(DpmSolverSinglestepScheduler))]
    [InlineData("DDIM", typeof(DdimScheduler))]
    [InlineData("DDPM", typeof(DdpmScheduler))]
    [InlineData("PLMS", typeof(PndmScheduler))]
    [InlineData("UniPC", typeof(UniPCMultistepScheduler))]
    [InlineData("DEIS", typeof(DeisMultistepScheduler))]
    [InlineData("LCM", typeof(LcmScheduler))]
    [InlineData("KDPM2AncestralDiscreteScheduler", typeof(KDpm2AncestralDiscreteScheduler))]
    [InlineData("KDpm2AncestralDiscreteScheduler", typeof(KDpm2AncestralDiscreteScheduler))]
    [InlineData("dpmsolvermultistepscheduler", typeof(DpmSolverMultistepScheduler))]
    [InlineData("  DPM++   2M  ", typeof(DpmSolverMultistepScheduler))]
    public void Create_ResolvesUiDiffusersAndDotNetNames(string name, Type expected)
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create(name, TestConfigs.StableDiffusion15);

        Assert.IsType(expected, scheduler);
    }

    [Fact]
    public void Create_AppliesTheNamesDefiningKeys()
    {
        var karras = Assert.IsType<DpmSolverMultistepScheduler>(SchedulerFactory.Create("DPM++ 2M SDE Karras", TestConfigs.StableDiffusion15));
        var plain = Assert.IsType<DpmSolverMultistepScheduler>(SchedulerFactory.Create("DPM++ 2M", karras.Config));

        Assert.True(karras.Options.UseKarrasSigmas);
        Assert.Equal(DpmSolverAlgorithmType.SdeDpmSolverPlusPlus, karras.Options.AlgorithmType);
        // The name is true whatever the base says: switching back turns Karras and SDE off again.
        Assert.False(plain.Options.UseKarrasSigmas);
        Assert.Equal(DpmSolverAlgorithmType.DpmSolverPlusPlus, plain.Options.AlgorithmType);
        // and the model's noise schedule carries over.
        Assert.Equal(0.00085, plain.Options.BetaStart);
        Assert.Equal(BetaSchedule.ScaledLinear, plain.Options.BetaSchedule);
    }

    [Fact]
    public void Create_WithAClassName_IsPlainFromConfig()
    {
        var viaFactory = Assert.IsType<EulerDiscreteScheduler>(SchedulerFactory.Create("EulerDiscreteScheduler", TestConfigs.StableDiffusion15));
        var direct = EulerDiscreteScheduler.FromConfig(TestConfigs.StableDiffusion15);

        Assert.Equal(direct.Options, viaFactory.Options);
    }

    [Fact]
    public void UnknownName_ListsTheKnownNames()
    {
        var ex = Assert.Throws<SchedulerConfigException>(() => SchedulerFactory.Create("Euler b", TestConfigs.StableDiffusion15));

        Assert.Contains("Unknown scheduler \"Euler b\"", ex.Message, StringComparison.Ordinal);
        foreach (string name in SchedulerFactory.KnownNames)
        {
            Assert.Contains($"\"{name}\"", ex.Message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("DPM++ SDE Karras", "DPM++ 2M SDE Karras")]
    [InlineData("DPM++ 2S a", "DPM++ 2S")]
    public void UnavailableName_SaysWhyAndWhatToUse(string name, string suggestion)
    {
        var ex = Assert.Throws<SchedulerConfigException>(() => SchedulerFactory.Create(name, TestConfigs.StableDiffusion15));

        Assert.Contains("not available", ex.Message, StringComparison.Ordinal);
        Assert.Contains(suggestion, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromConfig_UnknownClass_ListsTheKnownClasses()
    {
        SchedulerConfig config = SchedulerConfig.Parse("""{ "_class_name": "DPMSolverSDEScheduler" }""", "scheduler_config.json");

        var ex = Assert.Throws<SchedulerConfigException>(() => SchedulerFactory.FromConfig(config));

        Assert.Contains("DPMSolverSDEScheduler", ex.Message, StringComparison.Ordinal);
        Assert.Contains("scheduler_config.json", ex.Message, StringComparison.Ordinal);
        Assert.All(SchedulerFactory.ClassNames, name => Assert.Contains(name, ex.Message, StringComparison.Ordinal));
    }

    [Fact]
    public void KnownNames_CoverEveryClassAndUiName()
    {
        Assert.Equal(14, SchedulerFactory.ClassNames.Count);
        Assert.All(TestConfigs.UiNames, row => Assert.Contains(row.Data, SchedulerFactory.KnownNames));
        Assert.Equal(SchedulerFactory.KnownNames.Count, SchedulerFactory.KnownNames.Distinct(StringComparer.OrdinalIgnoreCase).Count());
    }
}
