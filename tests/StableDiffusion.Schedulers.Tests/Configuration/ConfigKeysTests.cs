using Xunit;

namespace StableDiffusion.Schedulers.Tests.Configuration;

/// <summary>
/// Each class reads exactly diffusers' keys (its <c>__init__</c> arguments that this package reads), found on its options
/// record by name: a property's snake-case name is its key.
/// </summary>
public sealed class ConfigKeysTests
{
    private static readonly string[] SharedKeys = ["num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas", "prediction_type"];

    // The keys each class reads besides the shared ones, as diffusers names them.
    private static readonly Dictionary<string, string[]> ClassKeys = new()
    {
        ["DDIMScheduler"] =
        [
            "clip_sample", "clip_sample_range", "set_alpha_to_one", "steps_offset", "thresholding",
            "dynamic_thresholding_ratio", "sample_max_value", "timestep_spacing", "rescale_betas_zero_snr",
        ],
        ["DDPMScheduler"] =
        [
            "variance_type", "clip_sample", "thresholding", "dynamic_thresholding_ratio", "clip_sample_range",
            "sample_max_value", "timestep_spacing", "steps_offset", "rescale_betas_zero_snr",
        ],
        ["DEISMultistepScheduler"] =
        [
            "solver_order", "thresholding", "dynamic_thresholding_ratio", "sample_max_value", "algorithm_type",
            "solver_type", "lower_order_final", "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas",
            "use_flow_sigmas", "timestep_spacing", "steps_offset", "use_dynamic_shifting", "sigma_min", "sigma_max",
        ],
        ["DPMSolverMultistepScheduler"] =
        [
            "solver_order", "thresholding", "dynamic_thresholding_ratio", "sample_max_value", "algorithm_type",
            "solver_type", "lower_order_final", "euler_at_final", "use_karras_sigmas", "use_exponential_sigmas",
            "use_beta_sigmas", "use_lu_lambdas", "use_flow_sigmas", "final_sigmas_type", "lambda_min_clipped",
            "variance_type", "timestep_spacing", "steps_offset", "rescale_betas_zero_snr", "use_dynamic_shifting",
            "sigma_min", "sigma_max",
        ],
        ["DPMSolverSinglestepScheduler"] =
        [
            "solver_order", "thresholding", "dynamic_thresholding_ratio", "sample_max_value", "algorithm_type",
            "solver_type", "lower_order_final", "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas",
            "use_flow_sigmas", "final_sigmas_type", "lambda_min_clipped", "variance_type", "use_dynamic_shifting",
            "sigma_min", "sigma_max",
        ],
        ["EulerAncestralDiscreteScheduler"] =
        [
            "timestep_spacing", "steps_offset", "rescale_betas_zero_snr",
        ],
        ["EulerDiscreteScheduler"] =
        [
            "interpolation_type", "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "sigma_min",
            "sigma_max", "timestep_spacing", "timestep_type", "steps_offset", "rescale_betas_zero_snr",
            "final_sigmas_type",
        ],
        ["HeunDiscreteScheduler"] =
        [
            "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "clip_sample", "clip_sample_range",
            "timestep_spacing", "steps_offset", "sigma_min", "sigma_max",
        ],
        ["KDPM2AncestralDiscreteScheduler"] =
        [
            "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "timestep_spacing", "steps_offset",
            "sigma_min", "sigma_max",
        ],
        ["KDPM2DiscreteScheduler"] =
        [
            "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "timestep_spacing", "steps_offset",
            "sigma_min", "sigma_max",
        ],
        ["LCMScheduler"] =
        [
            "original_inference_steps", "clip_sample", "clip_sample_range", "set_alpha_to_one", "steps_offset",
            "thresholding", "dynamic_thresholding_ratio", "sample_max_value", "timestep_spacing", "timestep_scaling",
            "rescale_betas_zero_snr",
        ],
        ["LMSDiscreteScheduler"] =
        [
            "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "timestep_spacing", "steps_offset",
            "sigma_min", "sigma_max",
        ],
        ["PNDMScheduler"] =
        [
            "skip_prk_steps", "set_alpha_to_one", "timestep_spacing", "steps_offset",
        ],
        ["UniPCMultistepScheduler"] =
        [
            "solver_order", "thresholding", "dynamic_thresholding_ratio", "sample_max_value", "predict_x0",
            "solver_type", "lower_order_final", "disable_corrector", "solver_p", "use_karras_sigmas",
            "use_exponential_sigmas", "use_beta_sigmas", "use_flow_sigmas", "timestep_spacing", "steps_offset",
            "final_sigmas_type", "rescale_betas_zero_snr", "use_dynamic_shifting", "sigma_min", "sigma_max",
            "shift_terminal",
        ],
    };

    public static TheoryData<string, string> Keys()
    {
        var data = new TheoryData<string, string>();
        foreach (var (className, keys) in ClassKeys)
        {
            foreach (string key in SharedKeys.Concat(keys))
            {
                data.Add(className, key);
            }
        }

        return data;
    }

    [Fact]
    public void EveryClassOfTheFactory_IsListed() => Assert.Equal(SchedulerFactory.ClassNames.Order(), ClassKeys.Keys.Order());

    [Theory]
    [MemberData(nameof(Keys))]
    public void EachKey_IsReadAndChecked(string className, string key)
    {
        // An object is a valid value for no key, so a key the class reads fails, naming itself.
        SchedulerConfig config = SchedulerConfig.Parse($$"""{ "_class_name": "{{className}}", "{{key}}": { "not": "valid" } }""");

        var ex = Assert.Throws<SchedulerConfigException>(() => SchedulerFactory.FromConfig(config));

        Assert.Contains($"\"{key}\"", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(TestConfigs.UiNames), MemberType = typeof(TestConfigs))]
    public void KeysOfOtherClasses_AreIgnored(string name)
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create(name, TestConfigs.StableDiffusion15);
        string[] known = [.. SharedKeys, .. ClassKeys[scheduler.ClassName]];
        SchedulerConfig config = ClassKeys.Values.SelectMany(k => k).Except(known).Distinct()
            .Aggregate(scheduler.Config, (c, key) => c.With(key, new { not = "valid" }));

        DiffusionScheduler rebuilt = SchedulerFactory.FromConfig(config);

        Assert.Equal(scheduler.ClassName, rebuilt.ClassName);
    }
}
