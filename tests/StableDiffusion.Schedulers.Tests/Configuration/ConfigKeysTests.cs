using Xunit;

namespace StableDiffusion.Schedulers.Tests.Configuration;

/// <summary>
/// Each class reads exactly diffusers' keys (its <c>__init__</c> arguments that this package reads), found on its options
/// record by name: a property's snake-case name is its key.
/// </summary>
public sealed class ConfigKeysTests
{
    private static readonly string[] SharedKeys = ["num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas", "prediction_type"];

    // Keys several classes share.
    private static readonly string[] Spacing = ["timestep_spacing", "steps_offset"];
    private static readonly string[] Sigmas = ["use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "sigma_min", "sigma_max"];
    private static readonly string[] Thresholding = ["thresholding", "dynamic_thresholding_ratio", "sample_max_value"];
    private static readonly string[] Clipping = ["clip_sample", "clip_sample_range"];
    private static readonly string[] FlowMatching = ["use_flow_sigmas", "use_dynamic_shifting"];

    // The keys each class reads besides the shared ones, as diffusers names them.
    private static readonly Dictionary<string, string[]> ClassKeys = new()
    {
        ["PNDMScheduler"] = [.. Spacing, "skip_prk_steps", "set_alpha_to_one"],
        ["DDIMScheduler"] = [.. Spacing, .. Clipping, .. Thresholding, "set_alpha_to_one", "rescale_betas_zero_snr"],
        ["DDPMScheduler"] = [.. Spacing, .. Clipping, .. Thresholding, "variance_type", "rescale_betas_zero_snr"],
        ["EulerDiscreteScheduler"] =
            [.. Spacing, .. Sigmas, "interpolation_type", "timestep_type", "rescale_betas_zero_snr", "final_sigmas_type"],
        ["EulerAncestralDiscreteScheduler"] = [.. Spacing, "rescale_betas_zero_snr"],
        ["LMSDiscreteScheduler"] = [.. Spacing, .. Sigmas],
        ["HeunDiscreteScheduler"] = [.. Spacing, .. Sigmas, .. Clipping],
        ["KDPM2DiscreteScheduler"] = [.. Spacing, .. Sigmas],
        ["KDPM2AncestralDiscreteScheduler"] = [.. Spacing, .. Sigmas],
        ["DPMSolverMultistepScheduler"] =
        [
            .. Spacing, .. Sigmas, .. Thresholding, .. FlowMatching, "solver_order", "algorithm_type", "solver_type",
            "lower_order_final", "euler_at_final", "use_lu_lambdas", "final_sigmas_type", "lambda_min_clipped",
            "variance_type", "rescale_betas_zero_snr",
        ],
        ["DPMSolverSinglestepScheduler"] =
        [
            .. Sigmas, .. Thresholding, .. FlowMatching, "solver_order", "algorithm_type", "solver_type", "lower_order_final",
            "final_sigmas_type", "lambda_min_clipped", "variance_type",
        ],
        ["UniPCMultistepScheduler"] =
        [
            .. Spacing, .. Sigmas, .. Thresholding, .. FlowMatching, "solver_order", "predict_x0", "solver_type",
            "lower_order_final", "disable_corrector", "solver_p", "final_sigmas_type", "rescale_betas_zero_snr",
            "shift_terminal",
        ],
        ["DEISMultistepScheduler"] =
            [.. Spacing, .. Sigmas, .. Thresholding, .. FlowMatching, "solver_order", "algorithm_type", "solver_type", "lower_order_final"],
        ["LCMScheduler"] =
        [
            .. Spacing, .. Clipping, .. Thresholding, "original_inference_steps", "set_alpha_to_one", "timestep_scaling",
            "rescale_betas_zero_snr",
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

    [Fact]
    public void With_AValueThatIsNotJsonData_IsRefusedNamingTheKey()
    {
        var ex = Assert.Throws<ArgumentException>(() => TestConfigs.StableDiffusion15.With("beta_start", new Uri("https://example.com")));

        Assert.Contains("\"beta_start\" is a Uri", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(TestConfigs.UiNames), MemberType = typeof(TestConfigs))]
    public void KeysOfOtherClasses_AreIgnored(string name)
    {
        DiffusionScheduler scheduler = SchedulerFactory.Create(name, TestConfigs.StableDiffusion15);
        string[] known = [.. SharedKeys, .. ClassKeys[scheduler.ClassName]];
        SchedulerConfig config = ClassKeys.Values.SelectMany(k => k).Except(known).Distinct()
            .Aggregate(scheduler.Config, (c, key) => c.With(key, new Dictionary<string, object?> { ["not"] = "valid" }));

        DiffusionScheduler rebuilt = SchedulerFactory.FromConfig(config);

        Assert.Equal(scheduler.ClassName, rebuilt.ClassName);
    }
}
