using System.Numerics.Tensors;
using Xunit;

namespace StableDiffusion.Schedulers.Tests.Schedulers;

/// <summary>Bad calls fail early with a specific exception that says what was wrong and what to do.</summary>
public sealed class ValidationTests
{
    private static readonly nint[] Shape = [1, 4, 8, 8];

    [Theory]
    [MemberData(nameof(TestConfigs.UiNames), MemberType = typeof(TestConfigs))]
    public void SetTimesteps_BelowOne_Throws(string name)
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create(name, TestConfigs.StableDiffusion15);

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => scheduler.SetTimesteps(0));

        Assert.Equal("numInferenceSteps", ex.ParamName);
    }

    [Theory]
    [MemberData(nameof(TestConfigs.UiNames), MemberType = typeof(TestConfigs))]
    public void SetTimesteps_AboveTrainingTimesteps_Throws(string name)
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create(name, TestConfigs.StableDiffusion15);

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => scheduler.SetTimesteps(1001));

        Assert.Contains("num_train_timesteps", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(TestConfigs.UiNames), MemberType = typeof(TestConfigs))]
    public void Step_BeforeSetTimesteps_Throws(string name)
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create(name, TestConfigs.StableDiffusion15);
        var sample = new float[256];

        var ex = Assert.Throws<InvalidOperationException>(() => scheduler.Step(Span(sample), 999, Span(sample), Tensor(sample)));
        Assert.Contains("SetTimesteps", ex.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => scheduler.ScaleModelInput(Span(sample), 999, Tensor(sample)));
        Assert.Throws<InvalidOperationException>(() => scheduler.SetBeginIndex(0));
    }

    [Theory]
    [InlineData("DDPM", null, null)]
    [InlineData("Euler a", null, null)]
    [InlineData("DPM++ 2M SDE", null, null)]
    [InlineData("DPM++ 2M SDE Karras", null, null)]
    [InlineData("DPM++ 2S", "algorithm_type", "sde-dpmsolver++")]
    [InlineData("LCM", null, null)]
    [InlineData("DDIM", "eta", null)]
    [InlineData("Euler", "s_churn", null)]
    public void StochasticStep_WithoutGenerator_NamesTheOption(string name, string? key, string? value)
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create(name, TestConfigs.StableDiffusion15);
        if (value is not null)
        {
            scheduler = SchedulerFactory.FromConfig(scheduler.Config.With(key!, value));
        }

        scheduler.SetTimesteps(10);
        var options = new SchedulerStepOptions(Eta: key == "eta" ? 1f : 0f, SChurn: key == "s_churn" ? 1f : 0f);
        var sample = new float[256];

        var ex = Assert.Throws<InvalidOperationException>(() => scheduler.Step(Span(sample), scheduler.Timesteps[0], Span(sample), Tensor(sample), options));

        Assert.Contains("SchedulerStepOptions.Generator", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void KDpm2Ancestral_NeedsTheGeneratorAtItsSecondEvaluation()
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create("DPM2 a", TestConfigs.StableDiffusion15);
        scheduler.SetTimesteps(10);
        var sample = new float[256];

        scheduler.Step(Span(sample), scheduler.Timesteps[0], Span(sample), Tensor(sample));

        Assert.Throws<InvalidOperationException>(() => scheduler.Step(Span(sample), scheduler.Timesteps[1], Span(sample), Tensor(sample)));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void PndmWithRungeKutta_BelowFourSteps_ThrowsClearly(int steps)
    {
        var pndm = PndmScheduler.FromConfig(TestConfigs.StableDiffusion15.With("skip_prk_steps", false));

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => pndm.SetTimesteps(steps));

        Assert.Contains("skip_prk_steps", ex.Message, StringComparison.Ordinal);
        Assert.Contains("at least 4", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    public void Plms_WorksFromOneStep(int steps)
    {
        var pndm = PndmScheduler.FromConfig(TestConfigs.StableDiffusion15);
        pndm.SetTimesteps(steps);
        var sample = Enumerable.Range(0, 256).Select(i => i / 256f).ToArray();

        foreach (float t in pndm.Timesteps)
        {
            pndm.Step(Span(sample), t, Span(sample), Tensor(sample));
        }

        Assert.All(sample, v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void Step_ModelOutputOfAnotherShape_NamesIt()
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create("Euler", TestConfigs.StableDiffusion15);
        scheduler.SetTimesteps(10);
        var sample = new float[256];
        var output = new float[512];

        var ex = Assert.Throws<ArgumentException>(() =>
            scheduler.Step(new ReadOnlyTensorSpan<float>(output, [2, 4, 8, 8]), scheduler.Timesteps[0], Span(sample), Tensor(sample)));

        Assert.Equal("modelOutput", ex.ParamName);
        Assert.Contains("[2, 4, 8, 8]", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Step_DestinationOfAnotherShape_NamesIt()
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create("DDIM", TestConfigs.StableDiffusion15);
        scheduler.SetTimesteps(10);
        var sample = new float[256];

        var ex = Assert.Throws<ArgumentException>(() =>
            scheduler.Step(Span(sample), scheduler.Timesteps[0], Span(sample), new TensorSpan<float>(sample, [1, 4, 64])));

        Assert.Equal("prevSample", ex.ParamName);
    }

    [Fact]
    public void ScaleModelInput_DestinationOfAnotherShape_Throws()
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create("Euler", TestConfigs.StableDiffusion15);
        scheduler.SetTimesteps(10);

        Assert.Throws<ArgumentException>(() => scheduler.ScaleModelInput(Span(new float[256]), 999, new TensorSpan<float>(new float[128], [1, 2, 8, 8])));
    }

    [Fact]
    public void AddNoise_NoiseOfAnotherShape_Throws()
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create("DDIM", TestConfigs.StableDiffusion15);

        var ex = Assert.Throws<ArgumentException>(() =>
            scheduler.AddNoise(Span(new float[256]), new ReadOnlyTensorSpan<float>(new float[255], [255]), 500, Tensor(new float[256])));

        Assert.Equal("noise", ex.ParamName);
    }

    [Fact]
    public void MultistepSolver_SampleShapeChangingMidRun_Throws()
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create("DPM++ 2M", TestConfigs.StableDiffusion15);
        scheduler.SetTimesteps(10);
        var sample = new float[256];
        scheduler.Step(Span(sample), scheduler.Timesteps[0], Span(sample), Tensor(sample));
        var larger = new float[512];
        nint[] shape = [2, 4, 8, 8];

        var ex = Assert.Throws<ArgumentException>(() =>
            scheduler.Step(new ReadOnlyTensorSpan<float>(larger, shape), scheduler.Timesteps[1], new ReadOnlyTensorSpan<float>(larger, shape), new TensorSpan<float>(larger, shape)));

        Assert.Contains("SetTimesteps", ex.Message, StringComparison.Ordinal);
    }

    // DDIM and DDPM step by timestep value rather than by position (see the next test).
    public static TheoryData<string> PositionalUiNames => [.. TestConfigs.UiNames.Select(row => row.Data).Except(["DDIM", "DDPM"])];

    [Theory]
    [MemberData(nameof(PositionalUiNames))]
    public void Step_PastTheLastTimestep_Throws(string name)
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create(name, TestConfigs.StableDiffusion15);
        scheduler.SetTimesteps(4);
        var sample = new float[256];
        var options = new SchedulerStepOptions(new CountingGenerator());
        foreach (float t in scheduler.Timesteps)
        {
            scheduler.Step(Span(sample), t, Span(sample), Tensor(sample), options);
        }

        var ex = Assert.Throws<InvalidOperationException>(() => scheduler.Step(Span(sample), scheduler.Timesteps[^1], Span(sample), Tensor(sample), options));
        Assert.Contains("SetTimesteps", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("DDIM")]
    [InlineData("DDPM")]
    public void Step_PastTheLastTimestep_RepeatsTheLastStep_ForSchedulersSteppingByTimestep(string name)
    {
        // These step by timestep, not by position, as diffusers' do: a further step at a timestep of the schedule is
        // allowed and, with the same input and noise, gives what that step gave before.
        DiffusionScheduler scheduler = SchedulerFactory.Create(name, TestConfigs.StableDiffusion15);
        scheduler.SetTimesteps(4);
        float[] sample = Enumerable.Range(0, 256).Select(i => i / 256f).ToArray();
        float[] output = sample.Select(v => v * 0.3f).ToArray();
        var last = new float[256];
        foreach (float t in scheduler.Timesteps)
        {
            scheduler.Step(Span(output), t, Span(sample), Tensor(last), new SchedulerStepOptions(new CountingGenerator()));
        }

        var extra = new float[256];
        scheduler.Step(Span(output), scheduler.Timesteps[^1], Span(sample), Tensor(extra), new SchedulerStepOptions(new CountingGenerator()));

        Assert.Equal(last, extra);
    }

    [Fact]
    public void KDiffusionScheduler_TimestepNotInTheSchedule_Throws()
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create("Euler", TestConfigs.StableDiffusion15);
        scheduler.SetTimesteps(10);
        var sample = new float[256];

        var ex = Assert.Throws<ArgumentException>(() => scheduler.Step(Span(sample), 500f, Span(sample), Tensor(sample)));

        Assert.Contains("SetBeginIndex", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(500.5f)]
    [InlineData(-1f)]
    [InlineData(1000f)]
    public void Ddim_TimestepOutsideTheTrainingTable_Throws(float timestep)
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create("DDIM", TestConfigs.StableDiffusion15);
        scheduler.SetTimesteps(10);
        var sample = new float[256];

        Assert.Throws<ArgumentOutOfRangeException>(() => scheduler.Step(Span(sample), timestep, Span(sample), Tensor(sample)));
        Assert.Throws<ArgumentOutOfRangeException>(() => scheduler.AddNoise(Span(sample), Span(sample), timestep, Tensor(sample)));
    }

    [Fact]
    public void Ddim_TrailingSpacingThatReachesTimestepMinusOne_ThrowsAtSetTimesteps()
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create("DDIM", TestConfigs.StableDiffusion15.With("timestep_spacing", "trailing"));

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => scheduler.SetTimesteps(61));

        Assert.Contains("timestep -1", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Ddim_LeadingOffsetBeyondTheTable_ThrowsAtSetTimesteps()
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create("DDIM", TestConfigs.StableDiffusion15);

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => scheduler.SetTimesteps(1000));

        Assert.Contains("steps_offset", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(-0.5f)]
    [InlineData(float.NaN)]
    [InlineData(50f)]
    public void Ddim_BadEta_Throws(float eta)
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create("DDIM", TestConfigs.StableDiffusion15);
        scheduler.SetTimesteps(10);
        var sample = new float[256];
        var options = new SchedulerStepOptions(new CountingGenerator(), Eta: eta);

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => scheduler.Step(Span(sample), scheduler.Timesteps[0], Span(sample), Tensor(sample), options));

        Assert.Contains("Eta", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Lcm_MoreStepsThanItsDistillationSchedule_Throws()
    {
        var lcm = LcmScheduler.FromConfig(TestConfigs.StableDiffusion15);

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => lcm.SetTimesteps(51));

        Assert.Contains("original_inference_steps", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SetBeginIndex_OutOfRange_Throws()
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create("Euler", TestConfigs.StableDiffusion15);
        scheduler.SetTimesteps(10);

        Assert.Throws<ArgumentOutOfRangeException>(() => scheduler.SetBeginIndex(10));
        Assert.Throws<ArgumentOutOfRangeException>(() => scheduler.SetBeginIndex(-1));
    }

    private static ReadOnlyTensorSpan<float> Span(float[] values) => new(values, Shape);

    private static TensorSpan<float> Tensor(float[] values) => new(values, Shape);
}
