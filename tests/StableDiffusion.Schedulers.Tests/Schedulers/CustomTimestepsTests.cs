using System.Numerics.Tensors;
using StableDiffusion.Testing;
using Xunit;

namespace StableDiffusion.Schedulers.Tests.Schedulers;

/// <summary>
/// Custom timesteps and sigmas (diffusers' set_timesteps(timesteps=…) and (sigmas=…)): the schedule a step count gives,
/// passed back as a list, must give the same trajectory, as diffusers' own test_custom_timesteps checks.
/// </summary>
public sealed class CustomTimestepsTests
{
    private static readonly nint[] Shape = [1, 4, 8, 8];

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (string prediction in new[] { "epsilon", "sample", "v_prediction" })
        {
            foreach (string interpolation in new[] { "linear", "log_linear" })
            {
                foreach (string final in new[] { "sigma_min", "zero" })
                {
                    data.Add("EulerDiscreteScheduler", $$"""{ "prediction_type": "{{prediction}}", "interpolation_type": "{{interpolation}}", "final_sigmas_type": "{{final}}" }""");
                }
            }

            foreach (string spacing in new[] { "linspace", "leading" })
            {
                data.Add("HeunDiscreteScheduler", $$"""{ "prediction_type": "{{prediction}}", "timestep_spacing": "{{spacing}}" }""");
            }

            foreach (string final in new[] { "sigma_min", "zero" })
            {
                foreach (string algorithm in new[] { "dpmsolver++", "sde-dpmsolver++" })
                {
                    data.Add("DPMSolverMultistepScheduler", $$"""{ "algorithm_type": "{{algorithm}}", "prediction_type": "{{prediction}}", "final_sigmas_type": "{{final}}" }""");
                }

                foreach (bool lowerOrderFinal in new[] { true, false })
                {
                    data.Add("DPMSolverSinglestepScheduler", $$"""{ "prediction_type": "{{prediction}}", "lower_order_final": {{(lowerOrderFinal ? "true" : "false")}}, "final_sigmas_type": "{{final}}" }""");
                }
            }

            data.Add("DDPMScheduler", $$"""{ "prediction_type": "{{prediction}}" }""");
            data.Add("LCMScheduler", $$"""{ "prediction_type": "{{prediction}}" }""");
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TimestepsOfAStepCount_GiveTheSameTrajectory(string className, string overrides)
    {
        DiffusionScheduler fromCount = Build(className, overrides);
        fromCount.SetTimesteps(10);
        // Second-order schedulers take one timestep per step: the first, then every other one.
        float[] perStep = fromCount.Order == 2 ? [fromCount.Timesteps[0], .. fromCount.Timesteps.Where((_, i) => i % 2 == 1)] : [.. fromCount.Timesteps];

        var fromList = (ICustomTimestepsScheduler)Build(className, overrides);
        fromList.SetTimesteps(perStep);

        Assert.Equal(fromCount.Timesteps, fromList.Timesteps);
        Assert.Equal(fromCount.NumInferenceSteps, fromList.NumInferenceSteps);
        AssertSameTrajectory(fromCount, fromList);
    }

    [Theory]
    [InlineData("epsilon", "sigma_min")]
    [InlineData("epsilon", "zero")]
    [InlineData("sample", "zero")]
    [InlineData("v_prediction", "sigma_min")]
    public void EulerSigmasOfAStepCount_GiveTheSameTrajectory(string prediction, string final)
    {
        string overrides = $$"""{ "prediction_type": "{{prediction}}", "final_sigmas_type": "{{final}}" }""";
        DiffusionScheduler fromCount = Build("EulerDiscreteScheduler", overrides);
        fromCount.SetTimesteps(10);

        var fromSigmas = (EulerDiscreteScheduler)Build("EulerDiscreteScheduler", overrides);
        fromSigmas.SetSigmas([.. fromCount.Sigmas]);

        Assert.Equal(fromCount.Sigmas, fromSigmas.Sigmas);
        ArrayAssert.Close([.. fromCount.Timesteps], [.. fromSigmas.Timesteps], 1e-3, "timesteps");
        AssertSameTrajectory(fromCount, fromSigmas);
    }

    [Fact]
    public void Ddpm_StepsToTheNextCustomTimestep()
    {
        var ddpm = (DdpmScheduler)Build("DDPMScheduler", "{}");
        ddpm.SetTimesteps([100f, 87, 50, 1, 0]);
        var reference = (DdpmScheduler)Build("DDPMScheduler", "{}");
        reference.SetTimesteps([87f, 50]);
        float[] sample = Enumerable.Range(0, 256).Select(i => i / 256f).ToArray();
        float[] output = sample.Select(v => v * 0.3f).ToArray();
        float[] viaList = new float[256], viaPair = new float[256];

        // At 87 the previous timestep is 50 in both schedules; t = 87 draws the same noise from equal generators.
        ddpm.Step(Span(output), 87, Span(sample), new TensorSpan<float>(viaList, Shape), new SchedulerStepOptions(new CountingGenerator()));
        reference.Step(Span(output), 87, Span(sample), new TensorSpan<float>(viaPair, Shape), new SchedulerStepOptions(new CountingGenerator()));

        Assert.Equal(viaPair, viaList);
        Assert.Equal(5, ddpm.NumInferenceSteps);
    }

    [Theory]
    [InlineData("DDPMScheduler", new[] { 100f, 87, 50, 51, 0 }, "descending")]
    [InlineData("DDPMScheduler", new[] { 1000f, 500 }, "timesteps")]
    [InlineData("LCMScheduler", new[] { 999f, 500.5f }, "timesteps")]
    [InlineData("LCMScheduler", new float[0], "timesteps")]
    [InlineData("DPMSolverMultistepScheduler", new[] { 999f, float.NaN }, "finite")]
    public void InvalidCustomTimesteps_Throw(string className, float[] timesteps, string expected)
    {
        var scheduler = (ICustomTimestepsScheduler)Build(className, "{}");

        var ex = Assert.ThrowsAny<ArgumentException>(() => scheduler.SetTimesteps(timesteps));

        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("EulerDiscreteScheduler", "use_karras_sigmas")]
    [InlineData("HeunDiscreteScheduler", "use_exponential_sigmas")]
    [InlineData("DPMSolverMultistepScheduler", "use_lu_lambdas")]
    [InlineData("DPMSolverSinglestepScheduler", "use_karras_sigmas")]
    public void CustomTimesteps_WithRespacedSigmas_Throw(string className, string key)
    {
        var scheduler = (ICustomTimestepsScheduler)SchedulerFactory.FromConfig(TestConfigs.StableDiffusion15.WithClassName(className).With(key, true));

        var ex = Assert.Throws<InvalidOperationException>(() => scheduler.SetTimesteps([999f, 500, 1]));

        Assert.Contains(key, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EulerSigmas_MustBeNonNegativeAndAtLeastTwo()
    {
        var euler = (EulerDiscreteScheduler)Build("EulerDiscreteScheduler", "{}");

        Assert.Throws<ArgumentException>(() => euler.SetSigmas([14.6f]));
        Assert.Throws<ArgumentException>(() => euler.SetSigmas([14.6f, -1f]));
    }

    private static DiffusionScheduler Build(string className, string overrides) =>
        SchedulerFactory.FromConfig(TestConfigs.StableDiffusion15With(className, overrides));

    private static void AssertSameTrajectory(IScheduler first, IScheduler second)
    {
        float[] a = Run(first), b = Run(second);
        double difference = a.Zip(b).Sum(p => Math.Abs((double)p.First - p.Second));
        Assert.True(difference < 1e-5, $"The trajectories differ by {difference} in sum |Δ|.");
    }

    private static float[] Run(IScheduler scheduler)
    {
        float[] sample = Enumerable.Range(0, 256).Select(i => (i % 13 - 6) / 6f * scheduler.InitNoiseSigma).ToArray();
        DummyModel.Denoise(scheduler, sample, Shape, new SchedulerStepOptions(new CountingGenerator()));
        return sample;
    }

    private static ReadOnlyTensorSpan<float> Span(float[] values) => new(values, Shape);
}
