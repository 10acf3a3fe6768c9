using Xunit;

namespace StableDiffusion.Schedulers.Tests.Configuration;

/// <summary>diffusers' from_config rules: absent keys take the target class's defaults; unknown keys are ignored and carried.</summary>
public sealed class FromConfigTests
{
    [Fact]
    public void SchedulersBuiltFromStableDiffusion15_UseTheirOwnDefaultSpacing()
    {
        SchedulerConfig sd15 = TestConfigs.StableDiffusion15;

        var euler = EulerDiscreteScheduler.FromConfig(sd15);
        var ddim = DdimScheduler.FromConfig(sd15);
        var dpm = DpmSolverMultistepScheduler.FromConfig(sd15);

        // SD 1.5's file has no timestep_spacing: Euler and DPM-Solver take "linspace", DDIM keeps "leading" + steps_offset.
        Assert.Equal(TimestepSpacing.Linspace, euler.Options.TimestepSpacing);
        Assert.Equal(TimestepSpacing.Leading, ddim.Options.TimestepSpacing);
        Assert.Equal(TimestepSpacing.Linspace, dpm.Options.TimestepSpacing);
        euler.SetTimesteps(10);
        ddim.SetTimesteps(10);
        Assert.Equal([999f, 888f, 777f, 666f, 555f, 444f, 333f, 222f, 111f, 0f], euler.Timesteps);
        Assert.Equal([901f, 801f, 701f, 601f, 501f, 401f, 301f, 201f, 101f, 1f], ddim.Timesteps);
    }

    [Fact]
    public void KeysFromTheFile_OverrideClassDefaults()
    {
        var ddim = DdimScheduler.FromConfig(TestConfigs.StableDiffusion15);

        // DDIM's own defaults are clip_sample = true, set_alpha_to_one = true, beta linear 0.0001..0.02.
        Assert.False(ddim.Options.ClipSample);
        Assert.False(ddim.Options.SetAlphaToOne);
        Assert.Equal(BetaSchedule.ScaledLinear, ddim.Options.BetaSchedule);
        Assert.Equal(0.00085, ddim.Options.BetaStart);
        Assert.Equal(1, ddim.Options.StepsOffset);
    }

    [Fact]
    public void UseDefaultValues_KeysCountAsAbsentForTheNextClass()
    {
        // An Euler config saved by diffusers: timestep_spacing was Euler's default, so DDIM must not inherit "linspace".
        SchedulerConfig saved = SchedulerConfig.Parse("""
            { "_class_name": "EulerDiscreteScheduler", "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
              "timestep_spacing": "linspace", "steps_offset": 1, "_use_default_values": ["timestep_spacing"] }
            """);

        var ddim = DdimScheduler.FromConfig(saved);

        Assert.Equal(TimestepSpacing.Leading, ddim.Options.TimestepSpacing);
        Assert.Equal(1, ddim.Options.StepsOffset);
    }

    [Fact]
    public void UnknownKeys_AreIgnoredAndCarriedToTheNextScheduler()
    {
        var euler = EulerDiscreteScheduler.FromConfig(TestConfigs.StableDiffusion15);

        // skip_prk_steps means nothing to Euler, but diffusers keeps it in the config, so PNDM built back from it gets it.
        Assert.True(euler.Config.Contains("skip_prk_steps"));
        Assert.Equal("EulerDiscreteScheduler", euler.Config.ClassName);
        var pndm = PndmScheduler.FromConfig(euler.Config);
        Assert.True(pndm.Options.SkipPrkSteps);
    }

    [Fact]
    public void KeysTheClassDoesNotKnow_AreNotValidated()
    {
        SchedulerConfig config = TestConfigs.StableDiffusion15.With("variance_type", "learned_range").With("solver_order", "three");

        var euler = EulerDiscreteScheduler.FromConfig(config);

        // Kept as given for a scheduler that does read them.
        Assert.True(euler.Config.TryGetValue("variance_type", out var varianceType));
        Assert.Equal("learned_range", varianceType!.GetValue<string>());
        Assert.True(euler.Config.TryGetValue("solver_order", out var solverOrder));
        Assert.Equal("three", solverOrder!.GetValue<string>());
    }

    [Fact]
    public void AliasesDiffusersRewrites_AreRewrittenInTheConfig()
    {
        SchedulerConfig unipc = SchedulerConfig.Parse("""{ "_class_name": "UniPCMultistepScheduler", "solver_type": "bh1" }""");

        var dpm = DpmSolverMultistepScheduler.FromConfig(unipc);
        var back = UniPCMultistepScheduler.FromConfig(dpm.Config);

        // DPM-Solver maps bh1 to midpoint and records it; UniPC then maps midpoint to bh2, as diffusers does.
        Assert.Equal(DpmSolverType.Midpoint, dpm.Options.SolverType);
        Assert.True(dpm.Config.TryGetValue("solver_type", out var solverType));
        Assert.Equal("midpoint", solverType!.GetValue<string>());
        Assert.Equal(UniPCSolverType.Bh2, back.Options.SolverType);
    }

    [Fact]
    public void DeisAlgorithmName_MeansDpmSolverPlusPlus()
    {
        var dpm = DpmSolverMultistepScheduler.FromConfig(SchedulerConfig.Parse("""{ "_class_name": "DEISMultistepScheduler", "algorithm_type": "deis" }"""));

        Assert.Equal(DpmSolverAlgorithmType.DpmSolverPlusPlus, dpm.Options.AlgorithmType);
    }

    [Fact]
    public void PythonInfinityLiteral_IsReadAsANumber()
    {
        var dpm = DpmSolverMultistepScheduler.FromConfig(SchedulerConfig.Parse("""{ "_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": -Infinity }"""));

        Assert.Equal(double.NegativeInfinity, dpm.Options.LambdaMinClipped);
    }

    [Fact]
    public void OptionsBuiltInCode_WriteOnlyTheKeysThatDifferFromTheDefaults()
    {
        var euler = new EulerDiscreteScheduler(new EulerDiscreteSchedulerOptions { UseKarrasSigmas = true, BetaStart = 0.00085 });

        Assert.Equal(["beta_start", "use_karras_sigmas"], euler.Config.Keys.Order());
        var again = EulerDiscreteScheduler.FromConfig(euler.Config);
        Assert.Equal(euler.Options, again.Options);
    }

    [Fact]
    public void ConfigRoundTrip_KeepsEveryOption()
    {
        var options = new DpmSolverMultistepSchedulerOptions
        {
            BetaSchedule = BetaSchedule.ScaledLinear,
            AlgorithmType = DpmSolverAlgorithmType.SdeDpmSolverPlusPlus,
            SolverOrder = 3,
            FinalSigmasType = FinalSigmasType.SigmaMin,
            LambdaMinClipped = -5.1,
            TrainedBetas = Enumerable.Repeat(0.01f, 1000).ToArray(),
        };

        var scheduler = new DpmSolverMultistepScheduler(options);
        var parsed = DpmSolverMultistepScheduler.FromConfig(SchedulerConfig.Parse(scheduler.Config.ToJson()));

        Assert.Equal(options with { TrainedBetas = null }, parsed.Options with { TrainedBetas = null });
        Assert.Equal(options.TrainedBetas, parsed.Options.TrainedBetas);
    }

    [Fact]
    public void Clone_KeepsTheConfigurationItWasBuiltFrom()
    {
        var euler = EulerDiscreteScheduler.FromConfig(TestConfigs.StableDiffusion15);

        var clone = euler.Clone();

        Assert.Equal(euler.Config.ToJson(), clone.Config.ToJson());
        Assert.Equal(euler.Options, clone.Options);
    }
}
