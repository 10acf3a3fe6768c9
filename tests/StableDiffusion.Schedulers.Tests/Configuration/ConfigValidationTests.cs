using Xunit;

namespace StableDiffusion.Schedulers.Tests.Configuration;

/// <summary>Malformed and contradictory configurations fail with a SchedulerConfigException that names the key.</summary>
public sealed class ConfigValidationTests
{
    [Theory]
    [InlineData("EulerDiscreteScheduler", "num_train_timesteps", "\"1000\"", "an integer")]
    [InlineData("EulerDiscreteScheduler", "num_train_timesteps", "1000.5", "an integer")]
    [InlineData("DDIMScheduler", "beta_start", "\"small\"", "a number")]
    [InlineData("DDIMScheduler", "clip_sample", "1", "true or false")]
    [InlineData("DDIMScheduler", "beta_schedule", "\"cosine\"", "\"scaled_linear\"")]
    [InlineData("EulerDiscreteScheduler", "beta_schedule", "\"sigmoid\"", "\"squaredcos_cap_v2\"")]
    [InlineData("HeunDiscreteScheduler", "beta_schedule", "\"laplace\"", "\"exp\"")]
    [InlineData("EulerDiscreteScheduler", "timestep_spacing", "\"uniform\"", "\"trailing\"")]
    [InlineData("DDPMScheduler", "prediction_type", "\"noise\"", "\"v_prediction\"")]
    [InlineData("DPMSolverMultistepScheduler", "algorithm_type", "\"dpmsolver+++\"", "\"sde-dpmsolver++\"")]
    [InlineData("DPMSolverSinglestepScheduler", "algorithm_type", "\"sde-dpmsolver\"", "\"dpmsolver++\"")]
    [InlineData("UniPCMultistepScheduler", "solver_type", "\"bh3\"", "\"bh2\"")]
    [InlineData("DEISMultistepScheduler", "algorithm_type", "\"unipc\"", "\"deis\"")]
    [InlineData("EulerDiscreteScheduler", "trained_betas", "\"0.1, 0.2\"", "a list of numbers")]
    [InlineData("UniPCMultistepScheduler", "disable_corrector", "\"none\"", "a list of integers")]
    public void WrongValue_NamesTheKeyAndWhatIsExpected(string className, string key, string json, string expected)
    {
        SchedulerConfig config = SchedulerConfig.Parse($$"""{ "_class_name": "{{className}}", "{{key}}": {{json}} }""", "model/scheduler_config.json");

        var ex = Assert.Throws<SchedulerConfigException>(() => SchedulerFactory.FromConfig(config));

        Assert.Contains($"\"{key}\"", ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.Contains("model/scheduler_config.json", ex.Message, StringComparison.Ordinal);
        Assert.Contains(className, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{ "_class_name": "EulerDiscreteScheduler", "use_karras_sigmas": true, "use_exponential_sigmas": true }""", "use_karras_sigmas")]
    [InlineData("""{ "_class_name": "DPMSolverMultistepScheduler", "algorithm_type": "dpmsolver", "final_sigmas_type": "zero" }""", "final_sigmas_type")]
    [InlineData("""{ "_class_name": "DPMSolverMultistepScheduler", "algorithm_type": "sde-dpmsolver", "solver_order": 3, "final_sigmas_type": "sigma_min" }""", "sde-dpmsolver")]
    [InlineData("""{ "_class_name": "DPMSolverMultistepScheduler", "solver_order": 4 }""", "solver_order")]
    [InlineData("""{ "_class_name": "UniPCMultistepScheduler", "predict_x0": false }""", "final_sigmas_type")]
    [InlineData("""{ "_class_name": "EulerDiscreteScheduler", "num_train_timesteps": 1 }""", "num_train_timesteps")]
    [InlineData("""{ "_class_name": "EulerDiscreteScheduler", "num_train_timesteps": 3, "trained_betas": [0.1, 0.2] }""", "trained_betas")]
    [InlineData("""{ "_class_name": "DDIMScheduler", "num_train_timesteps": 2, "trained_betas": [0.1, 1.5] }""", "trained_betas")]
    [InlineData("""{ "_class_name": "DDIMScheduler", "beta_end": 1.5 }""", "beta_end")]
    [InlineData("""{ "_class_name": "DDIMScheduler", "thresholding": true, "dynamic_thresholding_ratio": 1.5 }""", "dynamic_thresholding_ratio")]
    [InlineData("""{ "_class_name": "LCMScheduler", "original_inference_steps": 2000 }""", "original_inference_steps")]
    public void ContradictoryConfig_NamesTheKeyAtFault(string json, string key)
    {
        var ex = Assert.Throws<SchedulerConfigException>(() => SchedulerFactory.FromConfig(SchedulerConfig.Parse(json)));

        Assert.Contains(key, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{ "_class_name": "DPMSolverMultistepScheduler", "use_flow_sigmas": true }""", "use_flow_sigmas")]
    [InlineData("""{ "_class_name": "DPMSolverMultistepScheduler", "variance_type": "learned_range" }""", "variance_type")]
    [InlineData("""{ "_class_name": "UniPCMultistepScheduler", "prediction_type": "flow_prediction" }""", "prediction_type")]
    [InlineData("""{ "_class_name": "DDPMScheduler", "variance_type": "learned" }""", "variance_type")]
    [InlineData("""{ "_class_name": "EulerAncestralDiscreteScheduler", "prediction_type": "sample" }""", "prediction_type")]
    public void FeatureOutsideTheScope_IsRejectedWithTheReason(string json, string key)
    {
        var ex = Assert.Throws<SchedulerConfigException>(() => SchedulerFactory.FromConfig(SchedulerConfig.Parse(json)));

        Assert.Contains($"\"{key}\"", ex.Message, StringComparison.Ordinal);
        Assert.Contains("not supported", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OptionsBuiltInCode_AreValidatedToo()
    {
        var ex = Assert.Throws<SchedulerConfigException>(() => new EulerDiscreteScheduler(new EulerDiscreteSchedulerOptions { UseKarrasSigmas = true, UseBetaSigmas = true }));

        Assert.Contains("EulerDiscreteScheduler", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BetaScheduleTheClassLacks_IsRejectedForOptionsBuiltInCode()
    {
        var ex = Assert.Throws<SchedulerConfigException>(() => new EulerDiscreteScheduler(new EulerDiscreteSchedulerOptions { BetaSchedule = BetaSchedule.Laplace }));

        Assert.Contains("beta_schedule", ex.Message, StringComparison.Ordinal);
    }
}
